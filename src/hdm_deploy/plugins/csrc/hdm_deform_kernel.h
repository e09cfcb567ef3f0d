// SPDX-License-Identifier: Apache-2.0
// hdm_deform_kernel.h - modulated deformable convolution (DCNv2 / ONNX DeformConv), written once for
// the CUDA kernel and its CPU twin.
//
// Numerics: sampling coordinates, bilinear weights, the modulation mask and all accumulation are FP32
// whatever the tensor type; FP16 tensors only round the sampled values and weights that feed the
// GEMM (exactly what a tensor core consumes) and the output.
// Bilinear rule (torchvision / ONNX DeformConv): a sample at (y, x) reads zero when y <= -1, y >= H,
// x <= -1 or x >= W; otherwise each of its four neighbours contributes when it lies inside the image,
// so samples in (-1, 0) and (H-1, H) blend with zero padding.
//
// Structure: the work of one thread block is a "block program" - a sequence of phases separated by
// barriers - over one tile of kTileP output pixels x kTileO output channels:
//   for each kernel tap k, for each chunk of <= kTileK input channels (one offset group):
//     [corners]  per pixel: FP32 coordinates -> 4 neighbour indices + 4 weights (mask folded in)
//     [sample]   per (channel, pixel): bilinear sample -> shared tile col[r][p]
//     [weights]  W[o, c, k] -> shared tile w[o][r]
//     [gemm]     acc[o][p] += w[o][:] . col[:][p]         (FP32 accumulate)
//   [store] acc -> shared stage, [epilogue] + bias -> Y   (32 output channels per pass)
// No global workspace at all: shared memory is fixed (18 KB FP16, 29 KB FP32 per block) whatever the
// image size.
// The block program is written against an `Exec` (how "all threads" and "each warp" run a phase and
// what a barrier is) and an `Mma` (the GEMM step). On the GPU, Exec runs the phase body once per
// hardware thread and `sync` is __syncthreads; the CPU twin (CpuExec) runs each phase for all 256
// virtual threads in turn, so the CPU build executes the same indexing, tiling and shared-memory
// layout as the GPU kernel. FP16 on the GPU uses tensor cores (WMMA 16x16x16, FP32 accumulate); the
// CPU twin runs the same WMMA calls through an emulation with the same fragment semantics.
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hdm_plugin_core.h"

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#include <mma.h>
#define HDM_HD __host__ __device__ __forceinline__
#define HDM_UNROLL _Pragma("unroll")
#else
#define HDM_HD inline
#define HDM_UNROLL
#endif

namespace hdm {
namespace kern {

// ---- tile geometry ---------------------------------------------------------------------------
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kTileP = 128;  // output pixels per block (flattened Ho*Wo index)
constexpr int kTileO = 64;   // output channels per block
constexpr int kTileK = 32;   // reduction rows (input channels of one tap) per GEMM step
constexpr int kLdStage = kTileP + 4;
constexpr int kStageRows = 32;  // the epilogue stages 32 output channels at a time

HDM_HD int imin(int a, int b) { return a < b ? a : b; }

// ---- scalar types ----------------------------------------------------------------------------
// IEEE binary16 bit pattern for host code (the CPU twin); the GPU uses __half.
struct HostHalf {
    uint16_t bits;
};

HDM_HD float half_bits_to_float(uint16_t h)
{
    uint32_t const sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t const e = (h >> 10) & 0x1Fu;
    uint32_t const m = h & 0x3FFu;
    uint32_t bits;
    if (e == 0)
    {
        float const v = static_cast<float>(m) * 5.9604644775390625e-08f;  // m * 2^-24, exact
        return sign ? -v : v;
    }
    if (e == 31)
        bits = sign | 0x7F800000u | (m << 13);
    else
        bits = sign | ((e + 112u) << 23) | (m << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

// Round to nearest even, overflow to infinity, NaN stays NaN.
HDM_HD uint16_t float_to_half_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t const sign = (x >> 16) & 0x8000u;
    uint32_t const ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u)  // inf / nan
        return static_cast<uint16_t>(sign | 0x7C00u | (ax > 0x7F800000u ? (0x200u | ((ax >> 13) & 0x3FFu)) : 0u));
    if (ax >= 0x477FF000u)  // >= 65520 rounds to infinity
        return static_cast<uint16_t>(sign | 0x7C00u);
    if (ax < 0x38800000u)  // below 2^-14: subnormal half (or zero)
    {
        float a;
        memcpy(&a, &ax, 4);
        float const m = rintf(a * 16777216.0f);  // a * 2^24 is exact; rintf rounds half to even
        return static_cast<uint16_t>(sign | static_cast<uint32_t>(m));
    }
    uint32_t const e = (ax >> 23) - 112u;
    uint32_t const mant = ax & 0x7FFFFFu;
    uint32_t h = (e << 10) | (mant >> 13);
    uint32_t const rem = mant & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h += 1u;
    return static_cast<uint16_t>(sign | h);
}

template <class T>
struct Num;

template <>
struct Num<float> {
    HDM_HD static float load(float const* p, int64_t i) { return p[i]; }
    HDM_HD static float from(float v) { return v; }
};

template <>
struct Num<HostHalf> {
    HDM_HD static float load(HostHalf const* p, int64_t i) { return half_bits_to_float(p[i].bits); }
    HDM_HD static HostHalf from(float v) { return HostHalf{float_to_half_bits(v)}; }
};

#if defined(__CUDACC__)
template <>
struct Num<__half> {
    HDM_HD static float load(__half const* p, int64_t i) { return __half2float(p[i]); }
    HDM_HD static __half from(float v) { return __float2half_rn(v); }
};
#define HDM_FMA(a, b, c) fmaf((a), (b), (c))
#else
#define HDM_FMA(a, b, c) ((a) * (b) + (c))
#endif

// ---- per-element functions -------------------------------------------------------------------

// Sampling coordinate of kernel tap index `kidx` for output position `out`: the integer grid
// position, then + offset, in FP32 (a single rounding, as torchvision does in FP32).
HDM_HD float tap_coord(int out, int stride, int pad, int kidx, int dil, float offset)
{
    return static_cast<float>(out * stride - pad + kidx * dil) + offset;
}

// The four neighbours of a bilinear sample: plane index (-1 = outside, contributes nothing) and
// weight with the modulation mask folded in.
struct Taps {
    int32_t idx[4];
    float wt[4];
};

HDM_HD Taps bilinear_taps(float y, float x, int H, int W, float m)
{
    Taps t;
    for (int q = 0; q < 4; ++q)
    {
        t.idx[q] = -1;
        t.wt[q] = 0.0f;
    }
    // torchvision: zero when y <= -1 || y >= H || x <= -1 || x >= W (written so NaN is zero too).
    if (!(y > -1.0f && y < static_cast<float>(H) && x > -1.0f && x < static_cast<float>(W)))
        return t;
    float const yf = floorf(y);
    float const xf = floorf(x);
    int const y0 = static_cast<int>(yf);
    int const x0 = static_cast<int>(xf);
    int const y1 = y0 + 1;
    int const x1 = x0 + 1;
    float const ly = y - yf;
    float const lx = x - xf;
    float const hy = 1.0f - ly;
    float const hx = 1.0f - lx;
    if (y0 >= 0 && x0 >= 0)
    {
        t.idx[0] = y0 * W + x0;
        t.wt[0] = hy * hx * m;
    }
    if (y0 >= 0 && x1 <= W - 1)
    {
        t.idx[1] = y0 * W + x1;
        t.wt[1] = hy * lx * m;
    }
    if (y1 <= H - 1 && x0 >= 0)
    {
        t.idx[2] = y1 * W + x0;
        t.wt[2] = ly * hx * m;
    }
    if (y1 <= H - 1 && x1 <= W - 1)
    {
        t.idx[3] = y1 * W + x1;
        t.wt[3] = ly * lx * m;
    }
    return t;
}

// Taps of output pixel p (flattened), kernel tap k, offset group og, batch item n.
// Offset layout (torchvision / ONNX): channel (og*K + k)*2 is the y shift, +1 the x shift.
template <class U>
HDM_HD Taps pixel_taps(DeformProblem const& pb, U const* off_n, U const* mask_n, int og, int k, int p)
{
    int const K = pb.kh * pb.kw;
    int64_t const P = static_cast<int64_t>(pb.Ho) * pb.Wo;
    int const oy = p / pb.Wo;
    int const ox = p - oy * pb.Wo;
    int const ki = k / pb.kw;
    int const kj = k - ki * pb.kw;
    int64_t const ob = static_cast<int64_t>(og * K + k) * 2 * P + p;
    float const dy = Num<U>::load(off_n, ob);
    float const dx = Num<U>::load(off_n, ob + P);
    float const m = mask_n != nullptr ? Num<U>::load(mask_n, static_cast<int64_t>(og * K + k) * P + p) : 1.0f;
    float const y = tap_coord(oy, pb.stride_h, pb.pad_top, ki, pb.dil_h, dy);
    float const x = tap_coord(ox, pb.stride_w, pb.pad_left, kj, pb.dil_w, dx);
    return bilinear_taps(y, x, pb.H, pb.W, m);
}

// ---- shared-memory layout --------------------------------------------------------------------
template <class T>
struct SmemLayout {
    // Leading dimensions: for 2-byte types a multiple of 8 elements (WMMA requirement) plus a bank
    // shift; for FP32 (SIMT path) odd strides that keep the GEMM reads conflict-free.
    static constexpr int kLdW = sizeof(T) == 2 ? kTileK + 8 : kTileK + 1;
    static constexpr int kLdCol = sizeof(T) == 2 ? kTileP + 8 : kTileP;
    static constexpr size_t align(size_t v) { return (v + 127) & ~static_cast<size_t>(127); }
    static constexpr size_t kOffW = 0;
    static constexpr size_t kOffCol = align(kOffW + sizeof(T) * kTileO * kLdW);
    static constexpr size_t kOffIdx = align(kOffCol + sizeof(T) * kTileK * kLdCol);
    static constexpr size_t kOffWt = kOffIdx + sizeof(int32_t) * 4 * kTileP;
    static constexpr size_t kMainBytes = kOffWt + sizeof(float) * 4 * kTileP;
    static constexpr size_t kStageBytes = sizeof(float) * kStageRows * kLdStage;  // aliases the main tiles
    static constexpr size_t kBytes = kMainBytes > kStageBytes ? kMainBytes : kStageBytes;
};

template <class T, class U>
struct Args {
    DeformProblem pb;
    T const* x;
    T const* w;
    U const* offset;
    T const* bias;  // nullptr: no bias
    U const* mask;  // nullptr: no modulation
    T* y;
};

// Kernel arguments from the plugin's input/output pointers (order X, W, offset[, B[, mask]]); host
// code of both the CUDA launch and the CPU twin builds them here.
template <class T, class U>
inline Args<T, U> make_args(DeformProblem const& pb, void const* const* in, void* out)
{
    Args<T, U> a{};
    a.pb = pb;
    a.x = static_cast<T const*>(in[0]);
    a.w = static_cast<T const*>(in[1]);
    a.offset = static_cast<U const*>(in[2]);
    a.bias = pb.has_bias ? static_cast<T const*>(in[3]) : nullptr;
    a.mask = pb.has_mask ? static_cast<U const*>(in[4]) : nullptr;
    a.y = static_cast<T*>(out);
    return a;
}

// ---- execution models ------------------------------------------------------------------------
#if defined(__CUDACC__)
// One CUDA block: a phase body runs once per hardware thread; warps() once per warp (all 32 lanes
// call it together, as WMMA requires).
struct GpuExec {
    static constexpr int kThreadSlots = 1;
    static constexpr int kWarpSlots = 1;
    HDM_HD static int tslot(int) { return 0; }
    HDM_HD static int wslot(int) { return 0; }
    template <class F>
    HDM_HD void threads(F&& f)
    {
#if defined(__CUDA_ARCH__)
        f(static_cast<int>(threadIdx.x));
#endif
    }
    template <class F>
    HDM_HD void warps(F&& f)
    {
#if defined(__CUDA_ARCH__)
        f(static_cast<int>(threadIdx.x >> 5));
#endif
    }
    HDM_HD void sync()
    {
#if defined(__CUDA_ARCH__)
        __syncthreads();
#endif
    }
};
#endif

// The CPU twin of one block: phases run for all virtual threads in order, so barriers are implicit.
struct CpuExec {
    static constexpr int kThreadSlots = kThreads;
    static constexpr int kWarpSlots = kWarps;
    static int tslot(int t) { return t; }
    static int wslot(int w) { return w; }
    template <class F>
    void threads(F&& f)
    {
        for (int t = 0; t < kThreads; ++t)
            f(t);
    }
    template <class F>
    void warps(F&& f)
    {
        for (int w = 0; w < kWarps; ++w)
            f(w);
    }
    void sync() {}
};

// ---- GEMM steps ------------------------------------------------------------------------------
// SIMT (FP32 tensors): thread t owns 4 output channels x 8 pixels: o = (t/16)*4 + i, p = t%16 + 16*j.
template <class Exec, class T>
struct SimtMma {
    using L = SmemLayout<T>;
    struct State {
        float acc[Exec::kThreadSlots][4][8];
    };
    HDM_HD static int rows(int k_len) { return k_len; }

    HDM_HD static void zero(Exec& ex, State& st)
    {
        ex.threads([&](int t) {
            float(&A)[4][8] = st.acc[Exec::tslot(t)];
HDM_UNROLL
            for (int i = 0; i < 4; ++i)
HDM_UNROLL
                for (int j = 0; j < 8; ++j)
                    A[i][j] = 0.0f;
        });
    }

    HDM_HD static void step(Exec& ex, State& st, T const* sw, T const* scol, int k_rows, int o_len)
    {
        ex.threads([&](int t) {
            int const to = t >> 4;
            int const tp = t & 15;
            if (to * 4 >= o_len)
                return;
            float(&A)[4][8] = st.acc[Exec::tslot(t)];
            for (int r = 0; r < k_rows; ++r)
            {
                float wv[4];
                float cv[8];
HDM_UNROLL
                for (int i = 0; i < 4; ++i)
                    wv[i] = Num<T>::load(sw, (to * 4 + i) * L::kLdW + r);
HDM_UNROLL
                for (int j = 0; j < 8; ++j)
                    cv[j] = Num<T>::load(scol, r * L::kLdCol + tp + 16 * j);
HDM_UNROLL
                for (int i = 0; i < 4; ++i)
HDM_UNROLL
                    for (int j = 0; j < 8; ++j)
                        A[i][j] = HDM_FMA(wv[i], cv[j], A[i][j]);
            }
        });
    }

    // Rows [o_base, o_base + kStageRows) of the accumulators -> stage.
    HDM_HD static void store(Exec& ex, State& st, float* stage, int o_len, int o_base)
    {
        ex.threads([&](int t) {
            int const to = t >> 4;
            int const tp = t & 15;
            float(&A)[4][8] = st.acc[Exec::tslot(t)];
HDM_UNROLL
            for (int i = 0; i < 4; ++i)
            {
                int const o = to * 4 + i;
                if (o >= o_len || o < o_base || o >= o_base + kStageRows)
                    continue;
HDM_UNROLL
                for (int j = 0; j < 8; ++j)
                    stage[(o - o_base) * kLdStage + tp + 16 * j] = A[i][j];
            }
        });
    }
};

// Tensor-core step (2-byte tensors): warp w owns the 16 output channels 16*(w%4).. and the 64 pixels
// 64*(w/4).. as four 16x16 FP32 accumulator fragments. `Api` is real WMMA on the GPU and an
// emulation with identical fragment semantics in the CPU twin.
template <class Exec, class Api>
struct WmmaMma {
    using T = typename Api::Elem;
    using L = SmemLayout<T>;
    struct State {
        typename Api::FragC acc[Exec::kWarpSlots][4];
    };
    HDM_HD static int rows(int k_len) { return (k_len + 15) & ~15; }

    HDM_HD static void zero(Exec& ex, State& st)
    {
        ex.warps([&](int w) {
            for (int f = 0; f < 4; ++f)
                Api::zero(st.acc[Exec::wslot(w)][f]);
        });
    }

    HDM_HD static void step(Exec& ex, State& st, T const* sw, T const* scol, int k_rows, int o_len)
    {
        ex.warps([&](int w) {
            int const wo = w & 3;
            int const wp = w >> 2;
            if (wo * 16 >= o_len)  // warp-uniform: rows beyond the valid channels are all zero
                return;
            typename Api::FragC* C = st.acc[Exec::wslot(w)];
            for (int r0 = 0; r0 < k_rows; r0 += 16)
            {
                typename Api::FragA a;
                Api::load_a(a, sw + wo * 16 * L::kLdW + r0, L::kLdW);
HDM_UNROLL
                for (int f = 0; f < 4; ++f)
                {
                    typename Api::FragB b;
                    Api::load_b(b, scol + r0 * L::kLdCol + (wp * 4 + f) * 16, L::kLdCol);
                    Api::mma(C[f], a, b);
                }
            }
        });
    }

    // Rows [o_base, o_base + kStageRows) of the accumulators -> stage (warp-uniform selection).
    HDM_HD static void store(Exec& ex, State& st, float* stage, int o_len, int o_base)
    {
        ex.warps([&](int w) {
            int const wo = w & 3;
            int const wp = w >> 2;
            if (wo * 16 >= o_len || wo * 16 < o_base || wo * 16 >= o_base + kStageRows)
                return;
            for (int f = 0; f < 4; ++f)
                Api::store(
                    stage + (wo * 16 - o_base) * kLdStage + (wp * 4 + f) * 16, st.acc[Exec::wslot(w)][f], kLdStage);
        });
    }
};

// WMMA emulation for the CPU twin: 16x16x16, row-major A (o x r) and B (r x p), FP32 accumulate.
struct EmuWmmaHalf {
    using Elem = HostHalf;
    struct FragA {
        float v[16][16];
    };
    struct FragB {
        float v[16][16];
    };
    struct FragC {
        float v[16][16];
    };
    static void zero(FragC& c) { memset(c.v, 0, sizeof(c.v)); }
    static void load_a(FragA& a, HostHalf const* p, int ld)
    {
        for (int i = 0; i < 16; ++i)
            for (int k = 0; k < 16; ++k)
                a.v[i][k] = half_bits_to_float(p[i * ld + k].bits);
    }
    static void load_b(FragB& b, HostHalf const* p, int ld)
    {
        for (int k = 0; k < 16; ++k)
            for (int j = 0; j < 16; ++j)
                b.v[k][j] = half_bits_to_float(p[k * ld + j].bits);
    }
    static void mma(FragC& c, FragA const& a, FragB const& b)
    {
        for (int i = 0; i < 16; ++i)
            for (int k = 0; k < 16; ++k)
            {
                float const av = a.v[i][k];
                for (int j = 0; j < 16; ++j)
                    c.v[i][j] += av * b.v[k][j];
            }
    }
    static void store(float* p, FragC const& c, int ld)
    {
        for (int i = 0; i < 16; ++i)
            for (int j = 0; j < 16; ++j)
                p[i * ld + j] = c.v[i][j];
    }
};

#if defined(__CUDACC__)
struct CudaWmmaHalf {
    using Elem = __half;
    using FragA = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __half, nvcuda::wmma::row_major>;
    using FragB = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __half, nvcuda::wmma::row_major>;
    using FragC = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>;
    HDM_HD static void zero(FragC& c)
    {
#if defined(__CUDA_ARCH__)
        nvcuda::wmma::fill_fragment(c, 0.0f);
#endif
    }
    HDM_HD static void load_a(FragA& a, __half const* p, int ld)
    {
#if defined(__CUDA_ARCH__)
        nvcuda::wmma::load_matrix_sync(a, p, static_cast<unsigned>(ld));
#endif
    }
    HDM_HD static void load_b(FragB& b, __half const* p, int ld)
    {
#if defined(__CUDA_ARCH__)
        nvcuda::wmma::load_matrix_sync(b, p, static_cast<unsigned>(ld));
#endif
    }
    HDM_HD static void mma(FragC& c, FragA const& a, FragB const& b)
    {
#if defined(__CUDA_ARCH__)
        nvcuda::wmma::mma_sync(c, a, b, c);
#endif
    }
    HDM_HD static void store(float* p, FragC const& c, int ld)
    {
#if defined(__CUDA_ARCH__)
        nvcuda::wmma::store_matrix_sync(p, c, static_cast<unsigned>(ld), nvcuda::wmma::mem_row_major);
#endif
    }
};
#endif

// ---- the block program -----------------------------------------------------------------------
// Grid: x = pixel tiles (ceil(Ho*Wo / kTileP)), y = group * output-channel tiles, z = batch.
HDM_HD int out_channel_tiles(DeformProblem const& pb)
{
    return (pb.O / pb.group + kTileO - 1) / kTileO;
}

template <class Exec, class Mma, class T, class U>
HDM_HD void deform_conv_block(
    Exec& ex, unsigned char* smem, typename Mma::State& st, Args<T, U> const& a, int tile_p, int tile_go, int n)
{
    using L = SmemLayout<T>;
    DeformProblem const& pb = a.pb;
    int const P = pb.Ho * pb.Wo;
    int const K = pb.kh * pb.kw;
    int const Cg = pb.C / pb.group;
    int const Og = pb.O / pb.group;
    int const Cog = pb.C / pb.offset_group;
    int const o_tiles = out_channel_tiles(pb);
    int const g = tile_go / o_tiles;
    int const o0 = (tile_go - g * o_tiles) * kTileO;
    int const o_len = imin(kTileO, Og - o0);
    int const p0 = tile_p * kTileP;
    int64_t const HW = static_cast<int64_t>(pb.H) * pb.W;
    T const* x_n = a.x + static_cast<int64_t>(n) * pb.C * HW;
    U const* off_n = a.offset + static_cast<int64_t>(n) * 2 * pb.offset_group * K * P;
    U const* mask_n = a.mask != nullptr ? a.mask + static_cast<int64_t>(n) * pb.offset_group * K * P : nullptr;

    T* sw = reinterpret_cast<T*>(smem + L::kOffW);
    T* scol = reinterpret_cast<T*>(smem + L::kOffCol);
    int32_t* sidx = reinterpret_cast<int32_t*>(smem + L::kOffIdx);
    float* swt = reinterpret_cast<float*>(smem + L::kOffWt);
    float* stage = reinterpret_cast<float*>(smem);  // aliases the tiles after the last GEMM step

    Mma::zero(ex, st);
    for (int k = 0; k < K; ++k)
    {
        int cur_og = -1;
        int const c_begin = g * Cg;
        int const c_stop = c_begin + Cg;
        for (int c = c_begin; c < c_stop;)
        {
            // A chunk never straddles an offset group, so one set of taps serves all its channels.
            int const og = c / Cog;
            int const c_end = imin(imin(c_stop, (og + 1) * Cog), c + kTileK);
            int const k_len = c_end - c;
            int const k_rows = Mma::rows(k_len);
            if (og != cur_og)
            {
                cur_og = og;
                ex.threads([&](int t) {
                    for (int pp = t; pp < kTileP; pp += kThreads)
                    {
                        int const p = p0 + pp;
                        Taps tp;
                        if (p < P)
                            tp = pixel_taps(pb, off_n, mask_n, og, k, p);
                        else
                            tp = bilinear_taps(-2.0f, -2.0f, 1, 1, 0.0f);  // empty
HDM_UNROLL
                        for (int q = 0; q < 4; ++q)
                        {
                            sidx[q * kTileP + pp] = tp.idx[q];
                            swt[q * kTileP + pp] = tp.wt[q];
                        }
                    }
                });
                ex.sync();
            }
            ex.threads([&](int t) {
                // sample: col[r][p] = sum_q wt_q * X[c + r][idx_q]
                for (int e = t; e < k_rows * kTileP; e += kThreads)
                {
                    int const r = e / kTileP;
                    int const pp = e - r * kTileP;
                    float v = 0.0f;
                    if (r < k_len)
                    {
                        T const* plane = x_n + static_cast<int64_t>(c + r) * HW;
HDM_UNROLL
                        for (int q = 0; q < 4; ++q)
                        {
                            int const id = sidx[q * kTileP + pp];
                            if (id >= 0)
                                v = HDM_FMA(swt[q * kTileP + pp], Num<T>::load(plane, id), v);
                        }
                    }
                    scol[r * L::kLdCol + pp] = Num<T>::from(v);
                }
                // weights: w[o][r] = W[g*Og + o0 + o, c - c_begin + r, tap k]
                for (int e = t; e < kTileO * k_rows; e += kThreads)
                {
                    int const o = e / k_rows;
                    int const r = e - o * k_rows;
                    T v = Num<T>::from(0.0f);
                    if (o < o_len && r < k_len)
                        v = a.w[(static_cast<int64_t>(g * Og + o0 + o) * Cg + (c - c_begin + r)) * K + k];
                    sw[o * L::kLdW + r] = v;
                }
            });
            ex.sync();
            Mma::step(ex, st, sw, scol, k_rows, o_len);
            ex.sync();
            c = c_end;
        }
    }
    // Epilogue in passes of kStageRows output channels (keeps shared memory at ~18 KB for FP16).
    for (int o_base = 0; o_base < o_len; o_base += kStageRows)
    {
        if (o_base > 0)
            ex.sync();  // the previous pass has read the stage
        Mma::store(ex, st, stage, o_len, o_base);
        ex.sync();
        int const rows = imin(kStageRows, o_len - o_base);
        ex.threads([&](int t) {
            for (int e = t; e < rows * kTileP; e += kThreads)
            {
                int const r = e / kTileP;
                int const pp = e - r * kTileP;
                int const p = p0 + pp;
                if (p >= P)
                    continue;
                int const oc = g * Og + o0 + o_base + r;
                float v = stage[r * kLdStage + pp];
                if (a.bias != nullptr)
                    v += Num<T>::load(a.bias, oc);
                a.y[(static_cast<int64_t>(n) * pb.O + oc) * P + p] = Num<T>::from(v);
            }
        });
    }
}

} // namespace kern
} // namespace hdm
