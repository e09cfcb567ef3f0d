// SPDX-License-Identifier: Apache-2.0
// cuda_kernels.cu - thin CUDA launch of the block program in hdm_deform_kernel.h.
//   FP32 tensors: SIMT GEMM step.  FP16 tensors: tensor-core (WMMA) GEMM step, FP32 accumulate.
//   Offset/mask may be FP32 or FP16 independently of the data type; coordinates are FP32 always.
#include <cuda_runtime.h>

#include "hdm_c_api.h"
#include "hdm_c_helpers.h"
#include "hdm_cuda_launch.h"
#include "hdm_deform_kernel.h"

namespace hdm {
namespace kern {
namespace {

template <class Mma, class T, class U>
__global__ void __launch_bounds__(kThreads, 3) deform_conv_kernel(Args<T, U> a, int n_base)
{
    __shared__ __align__(128) unsigned char smem[SmemLayout<T>::kBytes];
    GpuExec ex;
    typename Mma::State st;
    deform_conv_block<GpuExec, Mma>(ex, smem, st, a, static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.y),
        n_base + static_cast<int>(blockIdx.z));
}

template <class Mma, class T, class U>
cudaError_t launch(DeformProblem const& pb, void const* const* in, void* out, cudaStream_t stream)
{
    Args<T, U> const a = make_args<T, U>(pb, in, out);
    int64_t const P = static_cast<int64_t>(pb.Ho) * pb.Wo;
    int64_t const gx = (P + kTileP - 1) / kTileP;
    int64_t const gy = static_cast<int64_t>(pb.group) * out_channel_tiles(pb);
    if (pb.N == 0 || gx == 0)
        return cudaSuccess;
    if (gy > 65535 || gx > 0x7FFFFFFF)
        return cudaErrorInvalidConfiguration;
    for (int n0 = 0; n0 < pb.N; n0 += 65535)
    {
        unsigned const gz = static_cast<unsigned>(pb.N - n0 < 65535 ? pb.N - n0 : 65535);
        deform_conv_kernel<Mma, T, U>
            <<<dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), gz), kThreads, 0, stream>>>(a, n0);
    }
    return cudaGetLastError();
}

using SimtF32 = SimtMma<GpuExec, float>;
using WmmaF16 = WmmaMma<GpuExec, CudaWmmaHalf>;

} // namespace
} // namespace kern

int32_t cuda_deform_conv(DeformProblem const& pb, int32_t x_dtype, int32_t coord_dtype, void const* const* inputs,
    void* output, void* stream, Error* e)
{
    int32_t dt[5] = {x_dtype, x_dtype, coord_dtype, x_dtype, coord_dtype};
    Status s = check_types(dt, 3 + pb.has_bias + pb.has_mask, e);
    if (s != kOk)
        return s;
    auto const st = static_cast<cudaStream_t>(stream);
    bool const xh = x_dtype == kF16;
    bool const ch = coord_dtype == kF16;
    cudaError_t r;
    using namespace kern;
    if (!xh && !ch)
        r = launch<SimtF32, float, float>(pb, inputs, output, st);
    else if (!xh && ch)
        r = launch<SimtF32, float, __half>(pb, inputs, output, st);
    else if (xh && !ch)
        r = launch<WmmaF16, __half, float>(pb, inputs, output, st);
    else
        r = launch<WmmaF16, __half, __half>(pb, inputs, output, st);
    if (r != cudaSuccess)
        return fail(e, kErrRuntime, "HdmDeformConv CUDA launch failed: %s", cudaGetErrorString(r));
    return kOk;
}

} // namespace hdm

extern "C" HDM_EXPORT int32_t hdm_deform_conv_cuda(int32_t const* attrs, int32_t nb_inputs, int64_t const* shapes,
    int32_t x_dtype, int32_t coord_dtype, void const* const* inputs, void* output, void* stream, char* err,
    int32_t err_len)
{
    hdm::Error e{};
    hdm::DeformProblem pb{};
    hdm::Status s = hdm::problem_from_c(attrs, nb_inputs, shapes, &pb, &e);
    if (s == hdm::kOk && (inputs == nullptr || output == nullptr))
        s = hdm::fail(&e, hdm::kErrValue, "null tensor pointer");
    for (int32_t i = 0; s == hdm::kOk && i < nb_inputs; ++i)
        if (inputs[i] == nullptr)
            s = hdm::fail(&e, hdm::kErrValue, "input %s is a null pointer", hdm::input_name(i));
    if (s == hdm::kOk)
        s = static_cast<hdm::Status>(hdm::cuda_deform_conv(pb, x_dtype, coord_dtype, inputs, output, stream, &e));
    if (s != hdm::kOk)
        hdm::copy_error(e, err, err_len);
    return s;
}
