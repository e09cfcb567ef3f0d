// SPDX-License-Identifier: Apache-2.0
// trt_plugin_v2.cpp - TensorRT 8.5 / 8.6 (JetPack 5.1 / 6.0): IPluginV2DynamicExt + IPluginCreator.
//   IPluginV2 is deprecated from 8.6 on (-Wno-deprecated-declarations), but it is the only dynamic-shape
//   plugin interface 8.5 / 8.6 have. V2 plugins carry their namespace themselves (setPluginNamespace) and
//   serialize into a byte buffer (hdm::serialize: attributes + input count).
// Shared helpers and registration: trt_plugin_common.h / trt_plugin_common.cpp.
#include <new>
#include <string>

#include "hdm_c_api.h"
#include "trt_plugin_common.h"

#if NV_TENSORRT_MAJOR >= 10
#error "trt_plugin_v2.cpp is the TensorRT 8.x adapter; TensorRT >= 10 uses trt_plugin_v3.cpp"
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
    PluginFieldCollection const* getFieldNames() noexcept override { return advertised_fields(); }

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


DeformConvCreatorV2& creator()
{
    static DeformConvCreatorV2 c;
    return c;
}

} // namespace

// ---- the registry calls of this interface generation (used by trt_plugin_common.cpp) ----------------
bool registry_has_creator(nvinfer1::IPluginRegistry& reg)
{
    return reg.getPluginCreator(kPluginName, kPluginVersion, kPluginNamespace) != nullptr;
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

// IPluginRegistry::loadLibrary (TensorRT 8.6) and version-compatible engines: the creators of this library.
extern "C" HDM_EXPORT nvinfer1::IPluginCreator* const* getPluginCreators(int32_t& nbCreators)
{
    hdm::trt::prepare_for_tensorrt_loader();
    static nvinfer1::IPluginCreator* list[1];
    list[0] = &hdm::trt::creator();
    nbCreators = 1;
    return list;
}
