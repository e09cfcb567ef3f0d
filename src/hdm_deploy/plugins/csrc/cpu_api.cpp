// SPDX-License-Identifier: Apache-2.0
// cpu_api.cpp - the CPU twin: runs the block program of hdm_deform_kernel.h for every block of the
// CUDA grid, with 256 virtual threads per block (CpuExec) and std::thread over blocks.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "hdm_c_api.h"
#include "hdm_c_helpers.h"
#include "hdm_deform_kernel.h"

namespace {

using hdm::kern::Args;
using hdm::kern::CpuExec;
using hdm::kern::HostHalf;
using hdm::kern::make_args;

template <class Mma, class T, class U>
void run_grid(Args<T, U> const& a, int32_t num_threads)
{
    using L = hdm::kern::SmemLayout<T>;
    hdm::DeformProblem const& pb = a.pb;
    int64_t const P = static_cast<int64_t>(pb.Ho) * pb.Wo;
    int64_t const gx = (P + hdm::kern::kTileP - 1) / hdm::kern::kTileP;
    int64_t const gy = static_cast<int64_t>(pb.group) * hdm::kern::out_channel_tiles(pb);
    int64_t const gz = pb.N;
    int64_t const total = gx * gy * gz;
    if (total == 0)
        return;
    int64_t workers = num_threads > 0 ? num_threads : static_cast<int64_t>(std::thread::hardware_concurrency());
    workers = std::max<int64_t>(1, std::min<int64_t>(workers, total));

    auto work = [&](int64_t begin, int64_t end) {
        std::vector<unsigned char> smem(L::kBytes + 128);
        auto* base = reinterpret_cast<unsigned char*>(
            (reinterpret_cast<uintptr_t>(smem.data()) + 127) & ~static_cast<uintptr_t>(127));
        auto state = std::make_unique<typename Mma::State>();
        CpuExec ex;
        for (int64_t b = begin; b < end; ++b)
        {
            int64_t const n = b / (gx * gy);
            int64_t const rem = b - n * gx * gy;
            int64_t const ty = rem / gx;
            int64_t const tx = rem - ty * gx;
            hdm::kern::deform_conv_block<CpuExec, Mma>(
                ex, base, *state, a, static_cast<int>(tx), static_cast<int>(ty), static_cast<int>(n));
        }
    };
    if (workers == 1)
    {
        work(0, total);
        return;
    }
    std::vector<std::thread> pool;
    int64_t const per = (total + workers - 1) / workers;
    for (int64_t w = 0; w < workers; ++w)
    {
        int64_t const b0 = w * per;
        int64_t const b1 = std::min(total, b0 + per);
        if (b0 < b1)
            pool.emplace_back(work, b0, b1);
    }
    for (auto& t : pool)
        t.join();
}

using SimtF32 = hdm::kern::SimtMma<CpuExec, float>;
using WmmaF16 = hdm::kern::WmmaMma<CpuExec, hdm::kern::EmuWmmaHalf>;

} // namespace

extern "C" {

HDM_EXPORT int32_t hdm_deform_conv_cpu(int32_t const* attrs, int32_t nb_inputs, int64_t const* shapes,
    int32_t x_dtype, int32_t coord_dtype, void const* const* inputs, void* output, int32_t num_threads, char* err,
    int32_t err_len)
{
    hdm::Error e{};
    hdm::DeformProblem pb{};
    hdm::Status s = hdm::problem_from_c(attrs, nb_inputs, shapes, &pb, &e);
    if (s == hdm::kOk)
    {
        int32_t dt[5] = {x_dtype, x_dtype, coord_dtype, x_dtype, coord_dtype};
        s = hdm::check_types(dt, nb_inputs, &e);
    }
    if (s == hdm::kOk && (inputs == nullptr || output == nullptr))
        s = hdm::fail(&e, hdm::kErrValue, "null tensor pointer");
    for (int32_t i = 0; s == hdm::kOk && i < nb_inputs; ++i)
        if (inputs[i] == nullptr)
            s = hdm::fail(&e, hdm::kErrValue, "input %s is a null pointer", hdm::input_name(i));
    if (s != hdm::kOk)
    {
        hdm::copy_error(e, err, err_len);
        return s;
    }
    bool const xh = x_dtype == hdm::kF16;
    bool const ch = coord_dtype == hdm::kF16;
    if (!xh && !ch)
        run_grid<SimtF32>(make_args<float, float>(pb, inputs, output), num_threads);
    else if (!xh && ch)
        run_grid<SimtF32>(make_args<float, HostHalf>(pb, inputs, output), num_threads);
    else if (xh && !ch)
        run_grid<WmmaF16>(make_args<HostHalf, float>(pb, inputs, output), num_threads);
    else
        run_grid<WmmaF16>(make_args<HostHalf, HostHalf>(pb, inputs, output), num_threads);
    return hdm::kOk;
}

HDM_EXPORT void hdm_half_from_float(float const* in, uint16_t* out, int64_t n)
{
    for (int64_t i = 0; i < n; ++i)
        out[i] = hdm::kern::float_to_half_bits(in[i]);
}

HDM_EXPORT void hdm_half_to_float(uint16_t const* in, float* out, int64_t n)
{
    for (int64_t i = 0; i < n; ++i)
        out[i] = hdm::kern::half_bits_to_float(in[i]);
}

} // extern "C"
