// SPDX-License-Identifier: Apache-2.0
// trt_plugin_common.h - what the two TensorRT adapters share (HdmDeformConv, version "1", namespace
// "hdm_deploy"; inputs X, W, offset[, B[, mask]]; the ONNX DeformConv attributes as plugin fields).
//
//   trt_plugin_v2.cpp  TensorRT 8.5 / 8.6 (JetPack 5.1 / 6.0): IPluginV2DynamicExt + IPluginCreator,
//                      exports getPluginCreators.
//   trt_plugin_v3.cpp  TensorRT >= 10 (V2 is deprecated in 10 and removed in 11): IPluginV3 with the
//                      OneCore/OneBuild/OneRuntime capabilities + IPluginCreatorV3One, exports getCreators.
//   trt_plugin_common.cpp  logging, type translation, and registration (every loading route).
// CMake compiles exactly one adapter, chosen from NV_TENSORRT_MAJOR in NvInferVersion.h. Every plugin
// decision (fields, shapes, formats, serialization) is a call into hdm_plugin_core.h; the adapters only
// translate TensorRT types.
#pragma once

#include <cstdint>

#include <NvInfer.h>
#include <NvInferRuntime.h>
#include <NvInferVersion.h>

#include "hdm_plugin_core.h"

#define HDM_STR2_(x) #x
#define HDM_STR_(x) HDM_STR2_(x)
// The soname suffix of the libnvinfer this library was compiled for ("8", "10", "11").
#define HDM_TRT_SOVERSION HDM_STR_(NV_TENSORRT_MAJOR)
// ILoggerFinder / setLoggerFinder (plugin libraries loaded by TensorRT itself) exist from 8.6 on.
#define HDM_TRT_HAS_LOGGER_FINDER (NV_TENSORRT_MAJOR > 8 || (NV_TENSORRT_MAJOR == 8 && NV_TENSORRT_MINOR >= 6))

namespace hdm {
namespace trt {

// ---- logging -------------------------------------------------------------------------------------
// To the logger given to initHdmDeployPlugins, else the one TensorRT's loader handed over through
// setLoggerFinder, else stderr.
void log_error(char const* what, char const* msg);
void set_logger(nvinfer1::ILogger* logger);

// ---- TensorRT type translation -------------------------------------------------------------------
int32_t dtype_code(nvinfer1::DataType t);
int32_t format_code(nvinfer1::TensorFormat f);

template <class D>
Shape shape_of(D const& dims)
{
    Shape s{};
    s.rank = dims.nbDims > 4 ? 5 : static_cast<int32_t>(dims.nbDims);  // rank 5 fails validation
    for (int i = 0; i < 4 && i < dims.nbDims; ++i)
        s.d[i] = static_cast<int64_t>(dims.d[i]);
    return s;
}

Status parse_collection(nvinfer1::PluginFieldCollection const* fc, DeformAttrs* a, Error* e);

// The creator's advertised fields (what the ONNX parser forwards): the ONNX DeformConv attributes.
nvinfer1::PluginFieldCollection const* advertised_fields();

// Output [N, O, Ho, Wo] from X, W and the attributes (symbolic; kernel from W when not given).
bool output_dims(DeformAttrs const& a, nvinfer1::DimsExprs const* in, int32_t nb_inputs, nvinfer1::IExprBuilder& b,
    nvinfer1::DimsExprs& out);

bool format_ok_codes(int32_t pos, nvinfer1::PluginTensorDesc const* const* io, int32_t nb_in, int32_t nb_out);

// supportsFormatCombination for any descriptor type (`get` maps it to a PluginTensorDesc).
template <class Desc, class Get>
bool format_ok(int32_t pos, Desc const* io, int32_t nb_in, int32_t nb_out, Get get)
{
    if (io == nullptr || nb_in < 3 || nb_in > 5 || nb_out != 1 || pos < 0 || pos >= nb_in + nb_out)
        return false;
    nvinfer1::PluginTensorDesc const* descs[6];
    for (int32_t i = 0; i <= pos; ++i)
        descs[i] = &get(io[i]);
    return format_ok_codes(pos, descs, nb_in, nb_out);
}

// enqueue: validate the shapes and launch the CUDA kernel (hdm_cuda_launch.h). 0 on success.
int32_t run(DeformAttrs const& a, int32_t nb_inputs, nvinfer1::PluginTensorDesc const* in, void const* const* inputs,
    void* const* outputs, cudaStream_t stream);

// ---- registration ----------------------------------------------------------------------------------
// Implemented by the adapter (trt_plugin_v2.cpp / trt_plugin_v3.cpp): the registry calls that differ
// between IPluginCreator (V2) and IPluginCreatorInterface (V3).
bool registry_has_creator(nvinfer1::IPluginRegistry& reg);
bool registry_add_creator(nvinfer1::IPluginRegistry& reg);
bool registry_remove_creator(nvinfer1::IPluginRegistry& reg);

// Called by getCreators / getPluginCreators (IPluginRegistry::loadLibrary) before they hand the
// creator to TensorRT: withdraws a load-time registration, if one happened, so that TensorRT does not
// refuse the library as a duplicate (see trt_plugin_common.cpp).
void prepare_for_tensorrt_loader();

} // namespace trt
} // namespace hdm
