// SPDX-License-Identifier: Apache-2.0
// trt_mock_harness.cpp - drives the TensorRT adapter (trt_plugin_v2.cpp or _v3.cpp + trt_plugin_common.cpp)
// through mock TensorRT objects
// written against the real TensorRT headers: a plugin registry exported as getPluginRegistry (found by
// the library's dlsym), IExprBuilder/IDimensionExpr that evaluate integers, and a stub kernel launch.
// Needs TensorRT headers only - no GPU, no libnvinfer. Build (see tests/plugins/test_plugin_build.py):
//   g++ -std=c++17 -DHDM_WITH_TENSORRT -I<csrc> -isystem<trt>/include -isystem<cuda>/include \
//       trt_mock_harness.cpp ../trt_plugin_v3.cpp (8.x: ../trt_plugin_v2.cpp) ../trt_plugin_common.cpp \
//       ../core_api.cpp -rdynamic -ldl -pthread -o harness   (the harness first: its registry is constructed
//       before the library's load-time registration runs)
// Exit status 0 when every check passes.
#include <NvInfer.h>
#include <NvInferVersion.h>
#include <cassert>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>
#include <dlfcn.h>
#include "hdm_c_api.h"
#include "hdm_cuda_launch.h"
#include "hdm_plugin_core.h"

using namespace nvinfer1;
static int g_fail = 0;
#define CHECK(c) do { if (!(c)) { std::printf("FAIL %s:%d %s\n", __FILE__, __LINE__, #c); ++g_fail; } else std::printf("ok   %s\n", #c); } while (0)

// ---- stub kernel launch (records the problem) ----
static hdm::DeformProblem g_last{}; static int g_launches = 0; static int g_xdt = -1, g_cdt = -1;
namespace hdm { int32_t cuda_deform_conv(DeformProblem const& pb, int32_t x, int32_t c, void const* const*, void*, void*, Error*) { g_last = pb; g_xdt = x; g_cdt = c; ++g_launches; return 0; } }

// ---- mock expressions ----
#if NV_TENSORRT_MAJOR >= 10
using ExprInt = int64_t;
#else
using ExprInt = int32_t;
#endif
struct MockVExpr : apiv::VDimensionExpr {
  ExprInt v; explicit MockVExpr(ExprInt x) : v(x) {}
  bool isConstant() const override { return true; }
  ExprInt getConstantValue() const override { return v; }
#if NV_TENSORRT_MAJOR >= 10
  bool isSizeTensor() const override { return false; }
#endif
};
struct MockExpr : IDimensionExpr { MockVExpr impl; explicit MockExpr(ExprInt x) : impl(x) { mImpl = &impl; } ~MockExpr() override = default; };
struct MockVBuilder : apiv::VExprBuilder {
  std::deque<std::unique_ptr<MockExpr>> pool;
  IDimensionExpr const* make(int64_t v) { pool.emplace_back(new MockExpr((ExprInt) v)); return pool.back().get(); }
  IDimensionExpr const* constant(ExprInt v) override { return make(v); }
  IDimensionExpr const* operation(DimensionOperation op, IDimensionExpr const& a, IDimensionExpr const& b) override {
    int64_t x = a.getConstantValue(), y = b.getConstantValue();
    switch (op) {
      case DimensionOperation::kSUM: return make(x + y);
      case DimensionOperation::kPROD: return make(x * y);
      case DimensionOperation::kSUB: return make(x - y);
      case DimensionOperation::kFLOOR_DIV: { int64_t q = x / y; if ((x % y != 0) && ((x < 0) != (y < 0))) --q; return make(q); }
      default: std::printf("unexpected op\n"); ++g_fail; return make(0);
    }
  }
#if NV_TENSORRT_MAJOR >= 10
  IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override { return nullptr; }
#endif
};
struct MockBuilder : IExprBuilder { MockVBuilder impl; MockBuilder() { mImpl = &impl; } ~MockBuilder() override = default; };

// ---- mock registry ----
struct Entry { void* creator; std::string name, version, ns; };
#if NV_TENSORRT_MAJOR >= 10
static void creator_id(IPluginCreatorInterface& c, std::string& n, std::string& v) {
  assert(std::strcmp(c.getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") == 0);
  auto& c3 = static_cast<IPluginCreatorV3One&>(c); n = c3.getPluginName(); v = c3.getPluginVersion(); }
#endif
struct MockRegistry : IPluginRegistry {
  std::vector<Entry> entries; int registers = 0, deregisters = 0;
  Entry* find(char const* n, char const* v, char const* ns) { for (auto& e : entries) if (e.name == n && e.version == v && e.ns == ns) return &e; return nullptr; }
  bool add(void* c, std::string n, std::string v, char const* ns) { ++registers; if (find(n.c_str(), v.c_str(), ns)) return false; entries.push_back({c, n, v, ns}); return true; }
  bool remove(void const* c) { ++deregisters; for (auto it = entries.begin(); it != entries.end(); ++it) if (it->creator == c) { entries.erase(it); return true; } return false; }
  bool registerCreator(IPluginCreator& c, AsciiChar const* const ns) noexcept { return add(&c, c.getPluginName(), c.getPluginVersion(), ns); }
  IPluginCreator* const* getPluginCreatorList(int32_t* const n) const noexcept { *n = 0; return nullptr; }
  IPluginCreator* getPluginCreator(AsciiChar const* const n, AsciiChar const* const v, AsciiChar const* const ns) noexcept { auto* e = find(n, v, ns); return e ? static_cast<IPluginCreator*>(e->creator) : nullptr; }
  void setErrorRecorder(IErrorRecorder* const) noexcept override {}
  IErrorRecorder* getErrorRecorder() const noexcept override { return nullptr; }
  bool deregisterCreator(IPluginCreator const& c) noexcept { return remove(&c); }
#if NV_TENSORRT_MAJOR > 8 || NV_TENSORRT_MINOR >= 6
  bool isParentSearchEnabled() const override { return false; }
  void setParentSearchEnabled(bool const) override {}
  PluginLibraryHandle loadLibrary(AsciiChar const*) noexcept override { return nullptr; }
  void deregisterLibrary(PluginLibraryHandle) noexcept override {}
#endif
#if NV_TENSORRT_MAJOR >= 10
  bool registerCreator(IPluginCreatorInterface& c, AsciiChar const* const ns) noexcept override { std::string n, v; creator_id(c, n, v); return add(&c, n, v, ns); }
  IPluginCreatorInterface* const* getAllCreators(int32_t* const n) const noexcept override { *n = 0; return nullptr; }
  IPluginCreatorInterface* getCreator(AsciiChar const* const n, AsciiChar const* const v, AsciiChar const* const ns) noexcept override { auto* e = find(n, v, ns); return e ? static_cast<IPluginCreatorInterface*>(e->creator) : nullptr; }
  bool deregisterCreator(IPluginCreatorInterface const& c) noexcept override { return remove(&c); }
  IPluginResource* acquirePluginResource(AsciiChar const*, IPluginResource*) noexcept override { return nullptr; }
  int32_t releasePluginResource(AsciiChar const*) noexcept override { return 0; }
  IPluginCreatorInterface* const* getAllCreatorsRecursive(int32_t* const n) noexcept { *n = 0; return nullptr; }
#endif
};
static MockRegistry g_registry;
extern "C" __attribute__((visibility("default"))) IPluginRegistry* getPluginRegistry() noexcept { return &g_registry; }

#if NV_TENSORRT_MAJOR >= 10
extern "C" IPluginCreatorInterface* const* getCreators(int32_t& nb);
using AnyCreator = IPluginCreatorV3One;
static AnyCreator* registered() { return static_cast<AnyCreator*>(g_registry.getCreator("HdmDeformConv", "1", "hdm_deploy")); }
#else
extern "C" IPluginCreator* const* getPluginCreators(int32_t& nb);
using AnyCreator = IPluginCreator;
static AnyCreator* registered() { return g_registry.getPluginCreator("HdmDeformConv", "1", "hdm_deploy"); }
#endif

static DimsExprs dims(MockBuilder& b, std::vector<int64_t> v) { DimsExprs d{}; d.nbDims = (int) v.size(); for (size_t i = 0; i < v.size(); ++i) d.d[i] = b.constant((ExprInt) v[i]); return d; }
static PluginTensorDesc desc(std::vector<int64_t> v, DataType t) { PluginTensorDesc d{}; d.dims.nbDims = (int) v.size(); for (size_t i = 0; i < v.size(); ++i) d.dims.d[i] = v[i]; d.type = t; d.format = TensorFormat::kLINEAR; d.scale = 1.f; return d; }

int main() {
  std::printf("TensorRT headers %d.%d.%d\n", NV_TENSORRT_MAJOR, NV_TENSORRT_MINOR, NV_TENSORRT_PATCH);
  // 1. load-time registration found our getPluginRegistry through dlsym
  CHECK(registered() != nullptr);
  CHECK(g_registry.entries.size() == 1);
  // 2. loadLibrary path: entry point returns the creator and withdraws the load-time registration
  int32_t nb = 0;
#if NV_TENSORRT_MAJOR >= 10
  auto* list = getCreators(nb);
#else
  auto* list = getPluginCreators(nb);
#endif
  CHECK(nb == 1 && list != nullptr && list[0] != nullptr);
  CHECK(g_registry.entries.empty() && g_registry.deregisters == 1);
  // TensorRT would now register list[0]; do it like TRT and check no duplicate error
  CHECK(g_registry.registerCreator(*list[0], "hdm_deploy"));
  g_registry.remove(list[0]);
  // 3. explicit init, idempotent
  CHECK(initHdmDeployPlugins(nullptr, "hdm_deploy"));
  CHECK(initHdmDeployPlugins(nullptr, nullptr));
  CHECK(g_registry.entries.size() == 1);
  CHECK(!initHdmDeployPlugins(nullptr, "other_ns"));
  AnyCreator* c = registered();
  CHECK(c != nullptr && std::strcmp(c->getPluginName(), "HdmDeformConv") == 0 && std::strcmp(c->getPluginVersion(), "1") == 0);
  PluginFieldCollection const* names = c->getFieldNames();
  CHECK(names->nbFields == 6 && std::strcmp(names->fields[4].name, "pads") == 0 && names->fields[4].length == 4 && names->fields[4].type == PluginFieldType::kINT32);
  // 4. fields as the ONNX parser passes them (only attributes present in the node)
  int32_t pads[4] = {1, 1, 1, 1}, ks[2] = {3, 3};
  PluginField f[2] = {PluginField("pads", pads, PluginFieldType::kINT32, 4), PluginField("kernel_shape", ks, PluginFieldType::kINT32, 2)};
  PluginFieldCollection fc{2, f};
  int32_t bad[2] = {1, 1};
  PluginField fb[1] = {PluginField("pads", bad, PluginFieldType::kINT32, 2)};
  PluginFieldCollection fcb{1, fb};
  MockBuilder eb;
  DimsExprs in[5] = {dims(eb, {2, 64, 270, 480}), dims(eb, {64, 64, 3, 3}), dims(eb, {2, 18, 270, 480}), dims(eb, {64}), dims(eb, {2, 9, 270, 480})};
  PluginTensorDesc td[6] = {desc({2, 64, 270, 480}, DataType::kHALF), desc({64, 64, 3, 3}, DataType::kHALF), desc({2, 18, 270, 480}, DataType::kFLOAT), desc({64}, DataType::kHALF), desc({2, 9, 270, 480}, DataType::kFLOAT), desc({2, 64, 270, 480}, DataType::kHALF)};
  void const* ptrs[5] = {(void*) 1, (void*) 2, (void*) 3, (void*) 4, (void*) 5};
  void* outs[1] = {(void*) 6};
#if NV_TENSORRT_MAJOR >= 10
  CHECK(c->createPlugin("bad", &fcb, TensorRTPhase::kBUILD) == nullptr);
  IPluginV3* p = c->createPlugin("dcn", &fc, TensorRTPhase::kBUILD);
  CHECK(p != nullptr);
  auto* core = static_cast<IPluginV3OneCore*>(p->getCapabilityInterface(PluginCapabilityType::kCORE));
  auto* build = static_cast<IPluginV3OneBuild*>(p->getCapabilityInterface(PluginCapabilityType::kBUILD));
  auto* rt = static_cast<IPluginV3OneRuntime*>(p->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
  CHECK(std::strcmp(core->getPluginNamespace(), "hdm_deploy") == 0);
  CHECK(std::strcmp(build->getInterfaceInfo().kind, "PLUGIN_V3ONE_BUILD") == 0 && std::strcmp(rt->getInterfaceInfo().kind, "PLUGIN_V3ONE_RUNTIME") == 0);
  DimsExprs out[1];
  CHECK(build->getOutputShapes(in, 5, nullptr, 0, out, 1, eb) == 0);
  CHECK(out[0].nbDims == 4 && out[0].d[0]->getConstantValue() == 2 && out[0].d[1]->getConstantValue() == 64 && out[0].d[2]->getConstantValue() == 270 && out[0].d[3]->getConstantValue() == 480);
  DataType ot[1]; DataType it[5] = {DataType::kHALF, DataType::kHALF, DataType::kFLOAT, DataType::kHALF, DataType::kFLOAT};
  CHECK(build->getOutputDataTypes(ot, 1, it, 5) == 0 && ot[0] == DataType::kHALF);
  DynamicPluginTensorDesc dd[6]; for (int i = 0; i < 6; ++i) { dd[i].desc = td[i]; }
  bool allok = true; for (int pos = 0; pos < 6; ++pos) allok = allok && build->supportsFormatCombination(pos, dd, 5, 1);
  CHECK(allok);
  dd[1].desc.type = DataType::kFLOAT; CHECK(!build->supportsFormatCombination(1, dd, 5, 1)); dd[1].desc.type = DataType::kHALF;
  dd[5].desc.format = TensorFormat::kCHW2; CHECK(!build->supportsFormatCombination(5, dd, 5, 1)); dd[5].desc.format = TensorFormat::kLINEAR;
  CHECK(build->configurePlugin(dd, 5, dd + 5, 1) == 0);
  CHECK(build->getWorkspaceSize(dd, 5, dd + 5, 1) == 0);
  CHECK(build->getNbOutputs() == 1);
  // runtime: serialize fields -> create in runtime phase -> shapes -> enqueue
  PluginFieldCollection const* ser = rt->getFieldsToSerialize();
  CHECK(ser->nbFields == 6);
  IPluginV3* p2 = c->createPlugin("dcn", ser, TensorRTPhase::kRUNTIME);
  CHECK(p2 != nullptr);
  auto* rt2 = static_cast<IPluginV3OneRuntime*>(p2->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
  IPluginV3* attached = rt2->attachToContext(nullptr);
  auto* rt3 = static_cast<IPluginV3OneRuntime*>(attached->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
  CHECK(rt3->onShapeChange(td, 5, td + 5, 1) == 0);
  CHECK(rt3->enqueue(td, td + 5, ptrs, outs, nullptr, nullptr) == 0);
  CHECK(g_launches == 1 && g_last.N == 2 && g_last.Ho == 270 && g_last.has_mask == 1 && g_last.kh == 3 && g_last.pad_top == 1 && g_xdt == 1 && g_cdt == 0);
  PluginTensorDesc bad_off = td[2]; td[2] = desc({2, 27, 270, 480}, DataType::kFLOAT);
  CHECK(rt3->onShapeChange(td, 5, td + 5, 1) != 0);
  CHECK(rt3->enqueue(td, td + 5, ptrs, outs, nullptr, nullptr) != 0 && g_launches == 1);
  td[2] = bad_off;
  // kernel_shape absent: taken from W (symbolic)
  PluginFieldCollection fc1{1, f};
  IPluginV3* p3 = c->createPlugin("dcn", &fc1, TensorRTPhase::kBUILD);
  auto* b3 = static_cast<IPluginV3OneBuild*>(p3->getCapabilityInterface(PluginCapabilityType::kBUILD));
  DimsExprs in2[3] = {dims(eb, {1, 8, 11, 10}), dims(eb, {4, 8, 5, 3}), dims(eb, {1, 30, 9, 10})};
  CHECK(b3->getOutputShapes(in2, 3, nullptr, 0, out, 1, eb) == 0 && out[0].d[2]->getConstantValue() == 9 && out[0].d[3]->getConstantValue() == 10);
  delete p; delete p2; delete attached; delete p3;
#else
  CHECK(c->createPlugin("bad", &fcb) == nullptr);
  auto* p = static_cast<IPluginV2DynamicExt*>(c->createPlugin("dcn", &fc));
  CHECK(p != nullptr && std::strcmp(p->getPluginNamespace(), "hdm_deploy") == 0 && std::strcmp(p->getPluginType(), "HdmDeformConv") == 0);
  DimsExprs out = p->getOutputDimensions(0, in, 5, eb);
  CHECK(out.nbDims == 4 && out.d[0]->getConstantValue() == 2 && out.d[1]->getConstantValue() == 64 && out.d[2]->getConstantValue() == 270 && out.d[3]->getConstantValue() == 480);
  DataType it[5] = {DataType::kHALF, DataType::kHALF, DataType::kFLOAT, DataType::kHALF, DataType::kFLOAT};
  CHECK(p->getOutputDataType(0, it, 5) == DataType::kHALF);
  bool allok = true; for (int pos = 0; pos < 6; ++pos) allok = allok && p->supportsFormatCombination(pos, td, 5, 1);
  CHECK(allok);
  td[3].type = DataType::kFLOAT; CHECK(!p->supportsFormatCombination(3, td, 5, 1)); td[3].type = DataType::kHALF;
  DynamicPluginTensorDesc dd[6]; for (int i = 0; i < 6; ++i) { dd[i].desc = td[i]; }
  p->configurePlugin(dd, 5, dd + 5, 1);
  CHECK(p->getWorkspaceSize(td, 5, td + 5, 1) == 0);
  std::vector<char> buf(p->getSerializationSize()); p->serialize(buf.data());
  CHECK(buf.size() == 60);
  auto* q = static_cast<IPluginV2DynamicExt*>(c->deserializePlugin("dcn", buf.data(), buf.size()));
  CHECK(q != nullptr);
  std::vector<char> buf2(q->getSerializationSize()); q->serialize(buf2.data());
  CHECK(buf == buf2);
  CHECK(c->deserializePlugin("dcn", buf.data(), buf.size() - 1) == nullptr);
  // runtime after deserialization: no configurePlugin call, the input count comes from the buffer
  CHECK(q->enqueue(td, td + 5, ptrs, outs, nullptr, nullptr) == 0);
  CHECK(g_launches == 1 && g_last.N == 2 && g_last.Ho == 270 && g_last.has_mask == 1 && g_xdt == 1 && g_cdt == 0);
  IPluginV2DynamicExt* q2 = q->clone();
  CHECK(q2 != nullptr && q2->enqueue(td, td + 5, ptrs, outs, nullptr, nullptr) == 0 && g_launches == 2);
  // never configured -> refuses to run
  auto* fresh = static_cast<IPluginV2DynamicExt*>(c->createPlugin("dcn", &fc));
  CHECK(fresh->enqueue(td, td + 5, ptrs, outs, nullptr, nullptr) != 0);
  PluginFieldCollection fc1{1, f};
  auto* p3 = static_cast<IPluginV2DynamicExt*>(c->createPlugin("dcn", &fc1));
  DimsExprs in2[3] = {dims(eb, {1, 8, 11, 10}), dims(eb, {4, 8, 5, 3}), dims(eb, {1, 30, 9, 10})};
  out = p3->getOutputDimensions(0, in2, 3, eb);
  CHECK(out.d[2]->getConstantValue() == 9 && out.d[3]->getConstantValue() == 10);
  p->destroy(); q->destroy(); q2->destroy(); fresh->destroy(); p3->destroy();
#endif
  std::printf("%s (%d failures)\n", g_fail ? "FAILED" : "ALL OK", g_fail);
  return g_fail != 0;
}
