// SPDX-License-Identifier: Apache-2.0
// trt_plugin_v3.cpp - TensorRT >= 10: IPluginV3 with the OneCore / OneBuild / OneRuntime capabilities.
//   V3 plugins serialize as plugin fields (getFieldsToSerialize -> createPlugin(kRUNTIME)); the runtime
//   object is a clone per execution context (attachToContext); the input count comes from
//   configurePlugin (build) or onShapeChange (runtime). IPluginV2 is deprecated in 10 and gone in 11.
// Shared helpers and registration: trt_plugin_common.h / trt_plugin_common.cpp.
#include <new>
#include <string>

#include "hdm_c_api.h"
#include "trt_plugin_common.h"

#if NV_TENSORRT_MAJOR < 10
#error "trt_plugin_v3.cpp is the TensorRT >= 10 adapter; TensorRT 8.x uses trt_plugin_v2.cpp"
#endif

namespace hdm {
namespace trt {
namespace {

using nvinfer1::DataType;
using nvinfer1::DimsExprs;
using nvinfer1::IExprBuilder;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginTensorDesc;

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
    PluginFieldCollection const* getFieldNames() noexcept override { return advertised_fields(); }

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


DeformConvCreatorV3& creator()
{
    static DeformConvCreatorV3 c;
    return c;
}

} // namespace

// ---- the registry calls of this interface generation (used by trt_plugin_common.cpp) ----------------
bool registry_has_creator(nvinfer1::IPluginRegistry& reg)
{
    return reg.getCreator(kPluginName, kPluginVersion, kPluginNamespace) != nullptr;
}

bool registry_add_creator(nvinfer1::IPluginRegistry& reg)
{
    return reg.registerCreator(creator(), kPluginNamespace);
}

bool registry_remove_creator(nvinfer1::IPluginRegistry& reg)
{
    return reg.deregisterCreator(creator());
}

} // namespace trt
} // namespace hdm

// IPluginRegistry::loadLibrary (TensorRT >= 10), trtexec --dynamicPlugins, version-compatible engines.
extern "C" HDM_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    hdm::trt::prepare_for_tensorrt_loader();
    static nvinfer1::IPluginCreatorInterface* list[1];
    list[0] = &hdm::trt::creator();
    nbCreators = 1;
    return list;
}
