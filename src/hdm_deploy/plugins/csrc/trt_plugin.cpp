// SPDX-License-Identifier: Apache-2.0
// trt_plugin.cpp - TensorRT adapters for HdmDeformConv (name "HdmDeformConv", version "1", namespace
// "hdm_deploy"; inputs X, W, offset[, B[, mask]]; the ONNX DeformConv attributes as plugin fields).
//
//   TensorRT 8.5 / 8.6 (JetPack 5.1 / 6.0): IPluginV2DynamicExt + IPluginCreator.
//   TensorRT >= 10 (V2 removed in 11):      IPluginV3 (OneCore/OneBuild/OneRuntime) + IPluginCreatorV3One.
// The choice is made at compile time from NV_TENSORRT_MAJOR. Every decision (fields, shapes, formats,
// serialization) is a call into hdm_plugin_core.h; this file only translates TensorRT types.
//
// Registration. The library does not link libnvinfer: it finds getPluginRegistry() in the libnvinfer
// already loaded by the process (dlsym), so the same .so also loads where only the kernels are wanted.
//   * On load (dlopen / ctypes.CDLL / trtexec --plugins / polygraphy --plugins) the creator registers
//     itself when libnvinfer is already loaded; set HDM_DEPLOY_PLUGIN_NO_AUTOREGISTER=1 to disable.
//   * initHdmDeployPlugins(logger, ns) registers explicitly (idempotent).
//   * IPluginRegistry::loadLibrary / trtexec --dynamicPlugins / plugins serialized into version-
//     compatible engines use the exported getCreators (V3) or getPluginCreators (V2) and
//     setLoggerFinder; getCreators first withdraws the load-time registration so TensorRT can own it.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include <NvInfer.h>
#include <NvInferRuntime.h>
#include <NvInferVersion.h>

#include "hdm_c_api.h"
#include "hdm_cuda_launch.h"
#include "hdm_plugin_core.h"

#define HDM_TRT_V3 (NV_TENSORRT_MAJOR >= 10)
#define HDM_STR2_(x) #x
#define HDM_STR_(x) HDM_STR2_(x)
#define HDM_TRT_SOVERSION HDM_STR_(NV_TENSORRT_MAJOR)
#define HDM_TRT_HAS_LOGGER_FINDER (NV_TENSORRT_MAJOR > 8 || (NV_TENSORRT_MAJOR == 8 && NV_TENSORRT_MINOR >= 6))

namespace hdm {
namespace trt {
namespace {

using nvinfer1::DataType;
using nvinfer1::DimsExprs;
using nvinfer1::IDimensionExpr;
using nvinfer1::IExprBuilder;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginTensorDesc;

// ---- logging ---------------------------------------------------------------------------------
nvinfer1::ILogger* g_logger = nullptr;
#if HDM_TRT_HAS_LOGGER_FINDER
nvinfer1::ILoggerFinder* g_logger_finder = nullptr;
#endif

void log_error(char const* what, char const* msg)
{
    std::string const text = std::string("[hdm_deploy] HdmDeformConv ") + what + ": " + msg;
    nvinfer1::ILogger* logger = g_logger;
#if HDM_TRT_HAS_LOGGER_FINDER
    if (logger == nullptr && g_logger_finder != nullptr)
        logger = g_logger_finder->findLogger();
#endif
    if (logger != nullptr)
        logger->log(nvinfer1::ILogger::Severity::kERROR, text.c_str());
    else
        std::fprintf(stderr, "%s\n", text.c_str());
}

// ---- TensorRT type translation -----------------------------------------------------------------
int32_t dtype_code(DataType t)
{
    if (t == DataType::kFLOAT)
        return kF32;
    if (t == DataType::kHALF)
        return kF16;
    return kOtherType;
}

int32_t format_code(nvinfer1::TensorFormat f)
{
    return f == nvinfer1::TensorFormat::kLINEAR ? kLinear : 1 + static_cast<int32_t>(f);
}

template <class D>
Shape shape_of(D const& dims)
{
    Shape s{};
    s.rank = dims.nbDims > 4 ? 5 : static_cast<int32_t>(dims.nbDims);  // rank 5 fails validation
    for (int i = 0; i < 4 && i < dims.nbDims; ++i)
        s.d[i] = static_cast<int64_t>(dims.d[i]);
    return s;
}

Status parse_collection(PluginFieldCollection const* fc, DeformAttrs* a, Error* e)
{
    if (fc == nullptr)
        return parse_fields(nullptr, 0, a, e);
    if (fc->nbFields < 0 || fc->nbFields > 64 || (fc->nbFields > 0 && fc->fields == nullptr))
        return fail(e, kErrField, "invalid PluginFieldCollection");
    FieldView views[64];
    for (int32_t i = 0; i < fc->nbFields; ++i)
    {
        PluginField const& f = fc->fields[i];
        views[i] = FieldView{f.name, static_cast<int32_t>(f.type), f.data, f.length};
    }
    return parse_fields(views, fc->nbFields, a, e);
}

// The creator's advertised fields (what the ONNX parser forwards): ONNX DeformConv attributes.
struct FieldNames {
    PluginField fields[kNumFieldSpecs];
    PluginFieldCollection fc;
    FieldNames()
    {
        for (int i = 0; i < kNumFieldSpecs; ++i)
            fields[i] = PluginField(kFieldSpecs[i].name, nullptr, nvinfer1::PluginFieldType::kINT32, kFieldSpecs[i].length);
        fc.nbFields = kNumFieldSpecs;
        fc.fields = fields;
    }
};

FieldNames& field_names()
{
    static FieldNames names;
    return names;
}

// IDimensionExpr arithmetic for conv_out_extent.
struct ExprOps {
    using Value = IDimensionExpr const*;
    IExprBuilder& b;
    Value constant(int64_t v) const { return b.constant(static_cast<int32_t>(v)); }
    Value add(Value x, Value y) const { return b.operation(nvinfer1::DimensionOperation::kSUM, *x, *y); }
    Value sub(Value x, Value y) const { return b.operation(nvinfer1::DimensionOperation::kSUB, *x, *y); }
    Value mul(Value x, Value y) const { return b.operation(nvinfer1::DimensionOperation::kPROD, *x, *y); }
    Value floor_div(Value x, Value y) const { return b.operation(nvinfer1::DimensionOperation::kFLOOR_DIV, *x, *y); }
};

// Output [N, O, Ho, Wo] from X, W and the attributes (symbolic; kernel from W when not given).
bool output_dims(DeformAttrs const& a, DimsExprs const* in, int32_t nb_inputs, IExprBuilder& b, DimsExprs& out)
{
    if (in == nullptr || nb_inputs < 3 || nb_inputs > 5 || in[0].nbDims != 4 || in[1].nbDims != 4)
        return false;
    ExprOps ops{b};
    IDimensionExpr const* kh = a.kernel[0] != 0 ? ops.constant(a.kernel[0]) : in[1].d[2];
    IDimensionExpr const* kw = a.kernel[1] != 0 ? ops.constant(a.kernel[1]) : in[1].d[3];
    out.nbDims = 4;
    out.d[0] = in[0].d[0];
    out.d[1] = in[1].d[0];
    out.d[2] = conv_out_extent(ops, in[0].d[2], kh, a.strides[0], a.pads[0] + a.pads[2], a.dilations[0]);
    out.d[3] = conv_out_extent(ops, in[0].d[3], kw, a.strides[1], a.pads[1] + a.pads[3], a.dilations[1]);
    return out.d[2] != nullptr && out.d[3] != nullptr;
}

template <class Desc, class Get>
bool format_ok(int32_t pos, Desc const* io, int32_t nb_in, int32_t nb_out, Get get)
{
    if (io == nullptr || nb_in < 3 || nb_in > 5 || nb_out != 1 || pos < 0 || pos >= nb_in + nb_out)
        return false;
    int32_t dt[6];
    int32_t fm[6];
    for (int32_t i = 0; i <= pos; ++i)
    {
        PluginTensorDesc const& d = get(io[i]);
        dt[i] = dtype_code(d.type);
        fm[i] = format_code(d.format);
    }
    return supports_format(pos, dt, fm, nb_in, nb_out);
}

int32_t run(DeformAttrs const& a, int32_t nb_inputs, PluginTensorDesc const* in, void const* const* inputs,
    void* const* outputs, cudaStream_t stream)
{
    Error e{};
    if (nb_inputs < 3 || nb_inputs > 5)
    {
        log_error("enqueue", "the input count is unknown (plugin was not configured)");
        return 1;
    }
    Shape s[5];
    for (int32_t i = 0; i < nb_inputs; ++i)
        s[i] = shape_of(in[i].dims);
    DeformProblem pb{};
    Status st = make_problem(a, nb_inputs, s, &pb, &e);
    if (st == kOk)
        st = static_cast<Status>(cuda_deform_conv(
            pb, dtype_code(in[0].type), dtype_code(in[2].type), inputs, outputs[0], static_cast<void*>(stream), &e));
    if (st != kOk)
    {
        log_error("enqueue", e.msg);
        return 1;
    }
    return 0;
}

#if !HDM_TRT_V3
// =============================================================================================
// TensorRT 8.5 / 8.6: IPluginV2DynamicExt
// =============================================================================================
class DeformConvPluginV2 final : public nvinfer1::IPluginV2DynamicExt
{
public:
    DeformConvPluginV2(DeformAttrs const& a, int32_t nb_inputs)
        : mAttrs(a)
        , mNbInputs(nb_inputs)
    {
    }

    // IPluginV2
    char const* getPluginType() const noexcept override { return kPluginName; }
    char const* getPluginVersion() const noexcept override { return kPluginVersion; }
    int32_t getNbOutputs() const noexcept override { return 1; }
    int32_t initialize() noexcept override { return 0; }
    void terminate() noexcept override {}
    size_t getSerializationSize() const noexcept override { return kSerialBytes; }
    void serialize(void* buffer) const noexcept override { hdm::serialize(mAttrs, mNbInputs, buffer, kSerialBytes); }
    void destroy() noexcept override { delete this; }
    void setPluginNamespace(char const* ns) noexcept override { mNamespace = ns != nullptr ? ns : ""; }
    char const* getPluginNamespace() const noexcept override { return mNamespace.c_str(); }

    // IPluginV2Ext
    DataType getOutputDataType(int32_t index, DataType const* inputTypes, int32_t nbInputs) const noexcept override
    {
        return (index == 0 && inputTypes != nullptr && nbInputs > 0) ? inputTypes[0] : DataType::kFLOAT;
    }

    // IPluginV2DynamicExt
    nvinfer1::IPluginV2DynamicExt* clone() const noexcept override
    {
        auto* p = new (std::nothrow) DeformConvPluginV2(mAttrs, mNbInputs);
        if (p != nullptr)
            p->mNamespace = mNamespace;
        return p;
    }

    DimsExprs getOutputDimensions(
        int32_t outputIndex, DimsExprs const* inputs, int32_t nbInputs, IExprBuilder& exprBuilder) noexcept override
    {
        DimsExprs out{};
        if (outputIndex != 0 || !output_dims(mAttrs, inputs, nbInputs, exprBuilder, out))
        {
            log_error("getOutputDimensions", "expects inputs X, W, offset[, B[, mask]] of rank 4, 4, 4, 1, 4");
            out.nbDims = -1;
        }
        return out;
    }

    bool supportsFormatCombination(
        int32_t pos, PluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept override
    {
        return format_ok(pos, inOut, nbInputs, nbOutputs, [](PluginTensorDesc const& d) -> PluginTensorDesc const& { return d; });
    }

    void configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override
    {
        (void) out;
        if (nbInputs < 3 || nbInputs > 5 || nbOutputs != 1 || in == nullptr)
        {
            log_error("configurePlugin", "expects 3 to 5 inputs and one output");
            return;
        }
        mNbInputs = nbInputs;
    }

    size_t getWorkspaceSize(PluginTensorDesc const*, int32_t, PluginTensorDesc const*, int32_t) const noexcept override
    {
        return 0;  // tiles live in shared memory
    }

    int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc, void const* const* inputs,
        void* const* outputs, void* workspace, cudaStream_t stream) noexcept override
    {
        (void) outputDesc;
        (void) workspace;
        return run(mAttrs, mNbInputs, inputDesc, inputs, outputs, stream);
    }

private:
    DeformAttrs mAttrs;
    int32_t mNbInputs;  // 0 until configured; serialized
    std::string mNamespace{kPluginNamespace};
};

class DeformConvCreatorV2 final : public nvinfer1::IPluginCreator
{
public:
    char const* getPluginName() const noexcept override { return kPluginName; }
    char const* getPluginVersion() const noexcept override { return kPluginVersion; }
    PluginFieldCollection const* getFieldNames() noexcept override { return &field_names().fc; }

    nvinfer1::IPluginV2* createPlugin(char const* name, PluginFieldCollection const* fc) noexcept override
    {
        Error e{};
        DeformAttrs a{};
        if (parse_collection(fc, &a, &e) != kOk)
        {
            log_error(name != nullptr ? name : "createPlugin", e.msg);
            return nullptr;
        }
        auto* p = new (std::nothrow) DeformConvPluginV2(a, 0);
        if (p != nullptr)
            p->setPluginNamespace(mNamespace.c_str());
        return p;
    }

    nvinfer1::IPluginV2* deserializePlugin(char const* name, void const* data, size_t length) noexcept override
    {
        Error e{};
        DeformAttrs a{};
        int32_t nb = 0;
        if (hdm::deserialize(data, length, &a, &nb, &e) != kOk)
        {
            log_error(name != nullptr ? name : "deserializePlugin", e.msg);
            return nullptr;
        }
        auto* p = new (std::nothrow) DeformConvPluginV2(a, nb);
        if (p != nullptr)
            p->setPluginNamespace(mNamespace.c_str());
        return p;
    }

    void setPluginNamespace(char const* ns) noexcept override { mNamespace = ns != nullptr ? ns : ""; }
    char const* getPluginNamespace() const noexcept override { return mNamespace.c_str(); }

private:
    std::string mNamespace{kPluginNamespace};
};

using Creator = DeformConvCreatorV2;
using CreatorBase = nvinfer1::IPluginCreator;

#else
// =============================================================================================
// TensorRT >= 10: IPluginV3 with the OneCore / OneBuild / OneRuntime capabilities
// =============================================================================================
class DeformConvPluginV3 final : public nvinfer1::IPluginV3,
                                 public nvinfer1::IPluginV3OneCore,
                                 public nvinfer1::IPluginV3OneBuild,
                                 public nvinfer1::IPluginV3OneRuntime
{
public:
    explicit DeformConvPluginV3(DeformAttrs const& a)
        : mAttrs(a)
    {
    }

    DeformConvPluginV3(DeformConvPluginV3 const& o)
        : nvinfer1::IPluginV3()
        , nvinfer1::IPluginV3OneCore()
        , nvinfer1::IPluginV3OneBuild()
        , nvinfer1::IPluginV3OneRuntime()
        , mAttrs(o.mAttrs)
        , mNbInputs(o.mNbInputs)
    {
    }

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override
    {
        switch (type)
        {
        case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
        case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
        case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
        }
        return nullptr;
    }

    nvinfer1::IPluginV3* clone() noexcept override { return new (std::nothrow) DeformConvPluginV3(*this); }

    // IPluginV3OneCore
    char const* getPluginName() const noexcept override { return kPluginName; }
    char const* getPluginVersion() const noexcept override { return kPluginVersion; }
    char const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

    // IPluginV3OneBuild
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override
    {
        (void) out;
        if (in == nullptr || nbInputs < 3 || nbInputs > 5 || nbOutputs != 1)
        {
            log_error("configurePlugin", "expects 3 to 5 inputs (X, W, offset[, B[, mask]]) and one output");
            return -1;
        }
        mNbInputs = nbInputs;
        return 0;
    }

    int32_t getOutputDataTypes(
        DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept override
    {
        if (outputTypes == nullptr || inputTypes == nullptr || nbOutputs != 1 || nbInputs < 3)
            return -1;
        outputTypes[0] = inputTypes[0];
        return 0;
    }

    int32_t getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, DimsExprs* outputs, int32_t nbOutputs, IExprBuilder& exprBuilder) noexcept override
    {
        (void) shapeInputs;
        (void) nbShapeInputs;
        if (outputs == nullptr || nbOutputs != 1 || !output_dims(mAttrs, inputs, nbInputs, exprBuilder, outputs[0]))
        {
            log_error("getOutputShapes", "expects inputs X, W, offset[, B[, mask]] of rank 4, 4, 4, 1, 4");
            return -1;
        }
        return 0;
    }

    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override
    {
        return format_ok(pos, inOut, nbInputs, nbOutputs,
            [](nvinfer1::DynamicPluginTensorDesc const& d) -> PluginTensorDesc const& { return d.desc; });
    }

    int32_t getNbOutputs() const noexcept override { return 1; }

    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const*, int32_t, nvinfer1::DynamicPluginTensorDesc const*,
        int32_t) const noexcept override
    {
        return 0;  // tiles live in shared memory
    }

    // IPluginV3OneRuntime
    int32_t onShapeChange(
        PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept override
    {
        (void) out;
        if (in == nullptr || nbInputs < 3 || nbInputs > 5 || nbOutputs != 1)
            return -1;
        Shape s[5];
        for (int32_t i = 0; i < nbInputs; ++i)
            s[i] = shape_of(in[i].dims);
        DeformProblem pb{};
        Error e{};
        if (make_problem(mAttrs, nbInputs, s, &pb, &e) != kOk)
        {
            log_error("onShapeChange", e.msg);
            return -1;
        }
        mNbInputs = nbInputs;
        return 0;
    }

    int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc, void const* const* inputs,
        void* const* outputs, void* workspace, cudaStream_t stream) noexcept override
    {
        (void) outputDesc;
        (void) workspace;
        return run(mAttrs, mNbInputs, inputDesc, inputs, outputs, stream);
    }

    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override
    {
        (void) context;
        return clone();
    }

    PluginFieldCollection const* getFieldsToSerialize() noexcept override
    {
        fields_from_attrs(mAttrs, &mStorage);
        for (int32_t i = 0; i < mStorage.count; ++i)
        {
            FieldView const& v = mStorage.views[i];
            mFields[i] = PluginField(v.name, v.data, static_cast<nvinfer1::PluginFieldType>(v.type), v.length);
        }
        mCollection.nbFields = mStorage.count;
        mCollection.fields = mFields;
        return &mCollection;
    }

private:
    DeformAttrs mAttrs;
    int32_t mNbInputs{0};
    FieldStorage mStorage{};
    PluginField mFields[kNumFieldSpecs];
    PluginFieldCollection mCollection{};
};

class DeformConvCreatorV3 final : public nvinfer1::IPluginCreatorV3One
{
public:
    char const* getPluginName() const noexcept override { return kPluginName; }
    char const* getPluginVersion() const noexcept override { return kPluginVersion; }
    char const* getPluginNamespace() const noexcept override { return kPluginNamespace; }
    PluginFieldCollection const* getFieldNames() noexcept override { return &field_names().fc; }

    nvinfer1::IPluginV3* createPlugin(
        char const* name, PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override
    {
        (void) phase;  // build and runtime take the same fields
        Error e{};
        DeformAttrs a{};
        if (parse_collection(fc, &a, &e) != kOk)
        {
            log_error(name != nullptr ? name : "createPlugin", e.msg);
            return nullptr;
        }
        return new (std::nothrow) DeformConvPluginV3(a);
    }
};

using Creator = DeformConvCreatorV3;
using CreatorBase = nvinfer1::IPluginCreatorInterface;
#endif

// ---- registration ------------------------------------------------------------------------------
Creator& creator()
{
    static Creator c;
    return c;
}

CreatorBase* g_creator_list[1] = {nullptr};
std::mutex g_mutex;
bool g_auto_registered = false;

// getPluginRegistry() of the libnvinfer this process already loaded (none loaded -> nullptr).
nvinfer1::IPluginRegistry* find_registry()
{
    using Fn = nvinfer1::IPluginRegistry* (*) ();
    void* sym = dlsym(RTLD_DEFAULT, "getPluginRegistry");
    if (sym == nullptr)
    {
        char const* const names[] = {"libnvinfer.so." HDM_TRT_SOVERSION, "libnvinfer_lean.so." HDM_TRT_SOVERSION,
            "libnvinfer_dispatch.so." HDM_TRT_SOVERSION, "libnvinfer.so"};
        for (char const* n : names)
        {
            void* h = dlopen(n, RTLD_LAZY | RTLD_NOLOAD);
            if (h != nullptr)
            {
                sym = dlsym(h, "getPluginRegistry");
                dlclose(h);  // NOLOAD handle: only drops the reference we just took
                if (sym != nullptr)
                    break;
            }
        }
    }
    return sym != nullptr ? reinterpret_cast<Fn>(sym)() : nullptr;
}

bool is_registered(nvinfer1::IPluginRegistry* reg)
{
#if HDM_TRT_V3
    return reg->getCreator(kPluginName, kPluginVersion, kPluginNamespace) != nullptr;
#else
    return reg->getPluginCreator(kPluginName, kPluginVersion, kPluginNamespace) != nullptr;
#endif
}

bool register_with(nvinfer1::IPluginRegistry* reg)
{
    if (reg == nullptr)
        return false;
    if (is_registered(reg))
        return true;
    return reg->registerCreator(creator(), kPluginNamespace);
}

struct AutoRegister {
    AutoRegister()
    {
        char const* off = std::getenv("HDM_DEPLOY_PLUGIN_NO_AUTOREGISTER");
        if (off != nullptr && off[0] != '\0' && std::strcmp(off, "0") != 0)
            return;
        std::lock_guard<std::mutex> lock(g_mutex);
        nvinfer1::IPluginRegistry* reg = find_registry();
        if (reg != nullptr && !is_registered(reg))
            g_auto_registered = reg->registerCreator(creator(), kPluginNamespace);
    }
};
AutoRegister g_auto_register;

CreatorBase* const* creator_list(int32_t& nb)
{
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_auto_registered)
    {
        // TensorRT is about to register this library's creators itself (loadLibrary); withdraw the
        // load-time registration so it does not see a duplicate.
        nvinfer1::IPluginRegistry* reg = find_registry();
        if (reg != nullptr)
            reg->deregisterCreator(creator());
        g_auto_registered = false;
    }
    g_creator_list[0] = &creator();
    nb = 1;
    return g_creator_list;
}

} // namespace
} // namespace trt
} // namespace hdm

extern "C" {

HDM_EXPORT bool initHdmDeployPlugins(void* logger, char const* ns)
{
    if (ns != nullptr && ns[0] != '\0' && std::strcmp(ns, hdm::kPluginNamespace) != 0)
    {
        hdm::trt::log_error("initHdmDeployPlugins", "the plugin namespace is fixed to \"hdm_deploy\"");
        return false;
    }
    if (logger != nullptr)
        hdm::trt::g_logger = static_cast<nvinfer1::ILogger*>(logger);
    std::lock_guard<std::mutex> lock(hdm::trt::g_mutex);
    return hdm::trt::register_with(hdm::trt::find_registry());
}

#if HDM_TRT_HAS_LOGGER_FINDER
HDM_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    hdm::trt::g_logger_finder = finder;
}
#endif

#if HDM_TRT_V3
HDM_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    return hdm::trt::creator_list(nbCreators);
}
#else
HDM_EXPORT nvinfer1::IPluginCreator* const* getPluginCreators(int32_t& nbCreators)
{
    return hdm::trt::creator_list(nbCreators);
}
#endif

} // extern "C"
