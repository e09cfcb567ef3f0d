// SPDX-License-Identifier: Apache-2.0
// hdm_cuda_launch.h - the C++ entry the TensorRT adapters call (no CUDA headers needed to include it).
#pragma once

#include <cstdint>

#include "hdm_plugin_core.h"

namespace hdm {

// Launch HdmDeformConv on `stream` (a cudaStream_t). inputs: X, W, offset[, B[, mask]] as device
// pointers (count given by pb.has_bias / pb.has_mask); x_dtype / coord_dtype: kF32 or kF16.
// No workspace. Returns kOk or an error code with `e` filled.
int32_t cuda_deform_conv(DeformProblem const& pb, int32_t x_dtype, int32_t coord_dtype, void const* const* inputs,
    void* output, void* stream, Error* e);

} // namespace hdm
