// SPDX-License-Identifier: Apache-2.0
// trt_plugin_common.cpp - logging, type translation and registration shared by the TensorRT adapters
// (trt_plugin_v2.cpp for TensorRT 8.x, trt_plugin_v3.cpp for TensorRT >= 10).
//
// ================================ Registration: one design, four routes ==============================
// The library does not link libnvinfer (HDM_LINK_NVINFER=OFF): the same .so also serves the kernels'
// C API where TensorRT is absent, and it must register into the registry of the libnvinfer that the
// process actually uses. How it gets loaded decides who registers the creator:
//
//  (a) dlopen after libnvinfer is loaded - Python ctypes.CDLL, Polygraphy LoadPlugins, trtexec --plugins
//      (8.x) / --staticPlugins (10.x), tensorrt.init_libnvinfer_plugins users. Nobody calls into the
//      library, so a load-time constructor registers the creator with getPluginRegistry() of the loaded
//      libnvinfer. That libnvinfer is usually *not* in the global symbol scope (ctypes and Triton use
//      RTLD_LOCAL), so dlsym(RTLD_DEFAULT) is not enough: dlopen(<soname>, RTLD_NOLOAD) finds it by the
//      soname of the major version we were compiled for, without loading anything.
//  (b) IPluginRegistry::loadLibrary - trtexec --dynamicPlugins, plugins serialized into version-
//      compatible engines, Polygraphy/TensorRT APIs that call it. TensorRT dlopens the library, calls the
//      exported getPluginCreators (8.x) / getCreators (>= 10) and registers the creators itself, and it
//      refuses a library whose creators are already registered. So the constructor must not register
//      here: it walks its own call stack (_Unwind_Backtrace + dladdr) and, when a frame belongs to
//      libnvinfer / libnvinfer_lean / libnvinfer_dispatch (i.e. libnvinfer itself is dlopen-ing us),
//      leaves registration to TensorRT. Fallback, should the stack walk miss (no unwind info): the
//      entry point withdraws the load-time registration (prepare_for_tensorrt_loader) before returning
//      the creator, so loadLibrary still sees no duplicate.
//  (c) LD_PRELOAD=libhdm_deploy_plugins.so - the constructor runs during process start-up. If the
//      program links libnvinfer (trtexec), it is already loaded and route (a) applies. Otherwise
//      (python, tritonserver: TensorRT comes later through dlopen) there is nothing to register with
//      and no later hook: interposing dlopen would break the RUNPATH/$ORIGIN lookups of every caller,
//      and LD_AUDIT is a different mechanism. So when - and only when - our own file is named in
//      LD_PRELOAD, the constructor dlopens libnvinfer.so.<major we were compiled for> by soname (the
//      loader paths the program itself will use), keeps it loaded, and registers. The application's
//      later dlopen of the same soname/file returns that same object, hence the same registry. If no
//      such libnvinfer is on the loader path, nothing happens (a process that inherited LD_PRELOAD but
//      has no TensorRT is unaffected beyond the failed lookup).
//  (d) Triton (--backend-config=tensorrt,plugins=a.so;b.so): libtriton_tensorrt.so (which links
//      libnvinfer) dlopens each path with RTLD_NOW | RTLD_LOCAL in TRITONBACKEND_Initialize and calls
//      nothing in it - route (a), found through RTLD_NOLOAD since Triton's libnvinfer is not global.
//      (Triton's documented LD_PRELOAD alternative is route (c).)
//
// Guard: every path registers under g_mutex and only when the registry has no HdmDeformConv/1/hdm_deploy
// creator yet, so explicit initHdmDeployPlugins() calls (idempotent) never double-register.
// HDM_DEPLOY_PLUGIN_NO_AUTOREGISTER=1 disables the constructor; HDM_DEPLOY_PLUGIN_DEBUG=1 prints what
// it decided; hdm_deploy_plugin_registration() returns the same text.
// ======================================================================================================
#include <dlfcn.h>
#include <unwind.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "hdm_c_api.h"
#include "hdm_cuda_launch.h"
#include "trt_plugin_common.h"

namespace hdm {
namespace trt {

using nvinfer1::DataType;
using nvinfer1::DimsExprs;
using nvinfer1::IDimensionExpr;
using nvinfer1::IExprBuilder;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginTensorDesc;

// ---- logging ---------------------------------------------------------------------------------------
namespace {
nvinfer1::ILogger* g_logger = nullptr;
#if HDM_TRT_HAS_LOGGER_FINDER
nvinfer1::ILoggerFinder* g_logger_finder = nullptr;
#endif
} // namespace

void set_logger(nvinfer1::ILogger* logger)
{
    g_logger = logger;
}

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

// ---- TensorRT type translation ---------------------------------------------------------------------
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

namespace {
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
} // namespace

PluginFieldCollection const* advertised_fields()
{
    static FieldNames names;
    return &names.fc;
}

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

bool format_ok_codes(int32_t pos, PluginTensorDesc const* const* io, int32_t nb_in, int32_t nb_out)
{
    int32_t dt[6];
    int32_t fm[6];
    for (int32_t i = 0; i <= pos; ++i)
    {
        dt[i] = dtype_code(io[i]->type);
        fm[i] = format_code(io[i]->format);
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

// ---- registration (see the comment block at the top) -----------------------------------------------
namespace {

std::mutex g_mutex;
nvinfer1::IPluginRegistry* g_auto_registry = nullptr;  // where the load-time registration went, if any
void* g_preload_nvinfer = nullptr;                       // route (c): our own reference, never closed
char g_state[512] = "not initialised";

void set_state(char const* fmt, ...) __attribute__((format(printf, 1, 2)));
void set_state(char const* fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(g_state, sizeof(g_state), fmt, ap);
    va_end(ap);
}

bool env_flag(char const* name)
{
    char const* v = std::getenv(name);
    return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

char const* base_name(char const* path)
{
    char const* slash = std::strrchr(path, '/');
    return slash != nullptr ? slash + 1 : path;
}

// libnvinfer.so*, libnvinfer_lean.so*, libnvinfer_dispatch.so* (not libnvinfer_plugin, which loads nothing).
bool is_nvinfer_file(char const* path)
{
    char const* b = base_name(path);
    for (char const* p : {"libnvinfer.so", "libnvinfer_lean.so", "libnvinfer_dispatch.so"})
        if (std::strncmp(b, p, std::strlen(p)) == 0)
            return true;
    return false;
}

using RegistryFn = nvinfer1::IPluginRegistry* (*) ();

nvinfer1::IPluginRegistry* call_registry(void* sym)
{
    return sym != nullptr ? reinterpret_cast<RegistryFn>(sym)() : nullptr;
}

// getPluginRegistry() of a libnvinfer this process has already loaded (nullptr when none is).
nvinfer1::IPluginRegistry* loaded_registry(std::string* where)
{
    if (void* sym = dlsym(RTLD_DEFAULT, "getPluginRegistry"))
    {
        Dl_info info{};
        *where = dladdr(sym, &info) != 0 && info.dli_fname != nullptr ? info.dli_fname : "global scope";
        return call_registry(sym);
    }
    char const* const names[] = {"libnvinfer.so." HDM_TRT_SOVERSION, "libnvinfer_lean.so." HDM_TRT_SOVERSION,
        "libnvinfer_dispatch.so." HDM_TRT_SOVERSION, "libnvinfer.so"};
    for (char const* n : names)
    {
        void* h = dlopen(n, RTLD_LAZY | RTLD_NOLOAD);
        if (h == nullptr)
            continue;
        void* sym = dlsym(h, "getPluginRegistry");
        dlclose(h);  // a NOLOAD handle: drops only the reference just taken; the library stays loaded
        if (sym != nullptr)
        {
            *where = n;
            return call_registry(sym);
        }
    }
    return nullptr;
}

// Route (b): is libnvinfer (IPluginRegistry::loadLibrary) on the call stack of this constructor?
struct StackScan {
    int frames = 0;
    char const* nvinfer = nullptr;
};

_Unwind_Reason_Code scan_frame(_Unwind_Context* ctx, void* arg)
{
    auto* scan = static_cast<StackScan*>(arg);
    uintptr_t const ip = _Unwind_GetIP(ctx);
    Dl_info info{};
    if (ip != 0 && dladdr(reinterpret_cast<void*>(ip - 1), &info) != 0 && info.dli_fname != nullptr
        && is_nvinfer_file(info.dli_fname))
    {
        scan->nvinfer = info.dli_fname;
        return _URC_END_OF_STACK;
    }
    return ++scan->frames < 256 ? _URC_NO_REASON : _URC_END_OF_STACK;
}

char const* tensorrt_loader_on_stack()
{
    StackScan scan;
    _Unwind_Backtrace(scan_frame, &scan);
    return scan.nvinfer;
}

// Route (c): is this very file named in LD_PRELOAD (entries separated by ':' or ' ')?
bool preloaded()
{
    char const* env = std::getenv("LD_PRELOAD");
    Dl_info self{};
    if (env == nullptr || dladdr(reinterpret_cast<void*>(&preloaded), &self) == 0 || self.dli_fname == nullptr)
        return false;
    char self_real[4096];
    if (realpath(self.dli_fname, self_real) == nullptr)
        return false;
    std::string const list(env);
    size_t start = 0;
    while (start <= list.size())
    {
        size_t end = list.find_first_of(": ", start);
        if (end == std::string::npos)
            end = list.size();
        std::string const item = list.substr(start, end - start);
        start = end + 1;
        if (item.empty())
            continue;
        char item_real[4096];
        if (item.find('/') != std::string::npos)
        {
            if (realpath(item.c_str(), item_real) != nullptr && std::strcmp(item_real, self_real) == 0)
                return true;
        }
        else if (item == base_name(self.dli_fname))
            return true;  // a bare name: the loader found it on its search path
    }
    return false;
}

void on_load()
{
    std::lock_guard<std::mutex> lock(g_mutex);
    if (env_flag("HDM_DEPLOY_PLUGIN_NO_AUTOREGISTER"))
    {
        set_state("none: HDM_DEPLOY_PLUGIN_NO_AUTOREGISTER is set (call initHdmDeployPlugins)");
        return;
    }
    if (char const* loader = tensorrt_loader_on_stack())
    {
        set_state("deferred: loaded by TensorRT (%s), which registers the creators from getCreators/getPluginCreators",
            base_name(loader));
        return;
    }
    std::string where;
    nvinfer1::IPluginRegistry* reg = loaded_registry(&where);
    char const* route = "libnvinfer already loaded";
    if (reg == nullptr && preloaded())
    {
        char const* const soname = "libnvinfer.so." HDM_TRT_SOVERSION;
        g_preload_nvinfer = dlopen(soname, RTLD_LAZY | RTLD_LOCAL);
        if (g_preload_nvinfer == nullptr)
        {
            char const* err = dlerror();
            set_state("none: LD_PRELOAD, but %s cannot be loaded (%s)", soname, err != nullptr ? err : "?");
            return;
        }
        reg = call_registry(dlsym(g_preload_nvinfer, "getPluginRegistry"));
        where = soname;
        route = "LD_PRELOAD, loaded";
    }
    if (reg == nullptr)
    {
        set_state("none: libnvinfer.so." HDM_TRT_SOVERSION " is not loaded (load TensorRT first, then this library, "
                  "or call initHdmDeployPlugins)");
        return;
    }
    if (registry_has_creator(*reg))
    {
        set_state("registered: already in the registry of %s", where.c_str());
        return;
    }
    if (registry_add_creator(*reg))
    {
        g_auto_registry = reg;
        set_state("registered: at load (%s %s)", route, where.c_str());
    }
    else
        set_state("none: the registry of %s refused the creator", where.c_str());
}

struct OnLoad {
    OnLoad()
    {
        on_load();
        if (env_flag("HDM_DEPLOY_PLUGIN_DEBUG"))
            std::fprintf(stderr, "[hdm_deploy] HdmDeformConv registration: %s\n", g_state);
    }
};
OnLoad g_on_load;

} // namespace

void prepare_for_tensorrt_loader()
{
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_auto_registry == nullptr)
        return;
    registry_remove_creator(*g_auto_registry);
    g_auto_registry = nullptr;
    set_state("withdrawn: the load-time registration was handed over to IPluginRegistry::loadLibrary");
}

bool register_explicitly()
{
    std::lock_guard<std::mutex> lock(g_mutex);
    std::string where;
    nvinfer1::IPluginRegistry* reg = loaded_registry(&where);
    if (reg == nullptr)
        return false;
    if (registry_has_creator(*reg))
        return true;
    if (!registry_add_creator(*reg))
        return false;
    set_state("registered: by initHdmDeployPlugins (%s)", where.c_str());
    return true;
}

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
        hdm::trt::set_logger(static_cast<nvinfer1::ILogger*>(logger));
    return hdm::trt::register_explicitly();
}

HDM_EXPORT char const* hdm_deploy_plugin_registration(void)
{
    return hdm::trt::g_state;
}

#if HDM_TRT_HAS_LOGGER_FINDER
// Called by IPluginRegistry::loadLibrary before getCreators / getPluginCreators.
HDM_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    hdm::trt::g_logger_finder = finder;
}
#endif

} // extern "C"
