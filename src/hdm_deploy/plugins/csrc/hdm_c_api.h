// SPDX-License-Identifier: Apache-2.0
// hdm_c_api.h - the C entry points of libhdm_deploy_cpu.so (CPU twin) and libhdm_deploy_plugins.so
// (CUDA kernels + TensorRT creators). Plain C types only, so Python reaches them through ctypes.
//
// Conventions
//   attrs   int32[12]: kernel_h kernel_w stride_h stride_w pad_top pad_left pad_bottom pad_right
//           dil_h dil_w group offset_group (kernel 0 0 = take it from W), i.e. the ONNX DeformConv
//           attributes.
//   shapes  int64[nb_inputs * 5]: per input (X, W, offset[, B[, mask]]) its rank then up to 4 dims.
//   dtypes  0 = FP32, 1 = FP16 (TensorRT DataType codes). x_dtype is the type of X, W, B and Y;
//           coord_dtype the type of offset and mask.
//   inputs  pointers in input order; nb_inputs = 3 (no bias, no mask), 4 (bias) or 5 (bias + mask).
//   err     optional buffer receiving a one-line message when a call fails.
//   Return  0 on success, otherwise an hdm::Status code (1 field, 2 value, 3 shape, 4 buffer,
//           5 type, 6 runtime).
#pragma once

#include <stdint.h>

#if defined(_WIN32)
#define HDM_EXPORT __declspec(dllexport)
#else
#define HDM_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

// Version string: "hdm_deploy_plugins <abi> kernels=<cpu|cuda> tensorrt=<x.y.z|none> plugin=<V2|V3|none>".
HDM_EXPORT char const* hdm_deploy_plugin_info(void);
HDM_EXPORT int32_t hdm_deploy_abi_version(void);

// ---- pure plugin decisions (both libraries) ----
HDM_EXPORT int32_t hdm_core_parse_fields(int32_t nb_fields, char const* const* names, int32_t const* types,
    void const* const* data, int32_t const* lengths, int32_t* attrs_out, char* err, int32_t err_len);
HDM_EXPORT int32_t hdm_core_validate_attrs(int32_t const* attrs, char* err, int32_t err_len);
HDM_EXPORT int32_t hdm_core_fields_roundtrip(int32_t const* attrs, int32_t* attrs_out, int32_t* nb_fields_out);
HDM_EXPORT int64_t hdm_core_out_extent(int64_t in, int64_t k, int32_t stride, int32_t pad_sum, int32_t dil);
// Validates all inputs (make_problem) and writes the output shape int64[4].
HDM_EXPORT int32_t hdm_core_output_shape(int32_t const* attrs, int32_t nb_inputs, int64_t const* shapes,
    int64_t* out_shape, char* err, int32_t err_len);
HDM_EXPORT int64_t hdm_core_serialized_size(void);
HDM_EXPORT int64_t hdm_core_serialize(int32_t const* attrs, int32_t nb_inputs, void* buf, int64_t cap);
HDM_EXPORT int32_t hdm_core_deserialize(
    void const* buf, int64_t len, int32_t* attrs_out, int32_t* nb_inputs_out, char* err, int32_t err_len);
HDM_EXPORT int32_t hdm_core_supports_format(
    int32_t pos, int32_t const* dtypes, int32_t const* formats, int32_t nb_inputs, int32_t nb_outputs);
// Runs the built-in checks of the decisions above; writes a report; returns the number of failures.
HDM_EXPORT int32_t hdm_deploy_plugin_selftest(char* report, int32_t report_len);

// ---- CPU twin (libhdm_deploy_cpu.so) ----
HDM_EXPORT int32_t hdm_deform_conv_cpu(int32_t const* attrs, int32_t nb_inputs, int64_t const* shapes,
    int32_t x_dtype, int32_t coord_dtype, void const* const* inputs, void* output, int32_t num_threads, char* err,
    int32_t err_len);
HDM_EXPORT void hdm_half_from_float(float const* in, uint16_t* out, int64_t n);
HDM_EXPORT void hdm_half_to_float(uint16_t const* in, float* out, int64_t n);

// ---- CUDA kernels (libhdm_deploy_plugins.so); device pointers, `stream` is a cudaStream_t ----
HDM_EXPORT int32_t hdm_deform_conv_cuda(int32_t const* attrs, int32_t nb_inputs, int64_t const* shapes,
    int32_t x_dtype, int32_t coord_dtype, void const* const* inputs, void* output, void* stream, char* err,
    int32_t err_len);

// ---- TensorRT registration (libhdm_deploy_plugins.so built with TensorRT headers) ----
// Registers the HdmDeformConv creator (name "HdmDeformConv", version "1", namespace "hdm_deploy")
// with the process's TensorRT plugin registry. `logger` is an nvinfer1::ILogger* or NULL; `ns` must be
// NULL, "" or "hdm_deploy". Idempotent; returns true when the creator is registered.
HDM_EXPORT bool initHdmDeployPlugins(void* logger, char const* ns);
// What the load-time registration decided ("registered: ...", "deferred: ...", "withdrawn: ...",
// "none: ..."; see trt_plugin_common.cpp). HDM_DEPLOY_PLUGIN_DEBUG=1 prints it when the library loads.
HDM_EXPORT char const* hdm_deploy_plugin_registration(void);

#ifdef __cplusplus
}
#endif
