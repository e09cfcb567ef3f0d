// SPDX-License-Identifier: Apache-2.0
// fake_libnvinfer.cpp - a stand-in libnvinfer.so.<major> for testing how libhdm_deploy_plugins.so
// registers in each loading route, where TensorRT itself is absent. Written against the real TensorRT
// headers of the version under test. It exports what the plugin library looks for (getPluginRegistry)
// and a registry that
//   * records registerCreator / deregisterCreator calls and refuses duplicates (name, version, namespace),
//   * implements loadLibrary like TensorRT documents it: dlopen the library, call setLoggerFinder when
//     exported (>= 8.6), then getCreators (>= 10) or getPluginCreators (8.x), fail with nullptr when any
//     creator is already registered, otherwise register them all.
// Plain C helpers (fake_trt_*) let Python (ctypes) and the route driver query and drive it.
// Build: g++ -std=c++17 -shared -fPIC -Wl,-soname,libnvinfer.so.<major> -isystem<trt>/include
//            -isystem<cuda>/include fake_libnvinfer.cpp -ldl -o libnvinfer.so.<major>
#include <NvInfer.h>
#include <NvInferVersion.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace nvinfer1;

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

struct Entry {
    void const* creator;
    std::string name, version, ns;
};

struct Stats {
    int registers = 0, refused = 0, deregisters = 0, libraries = 0, library_failures = 0, logger_finders = 0;
    std::string last_error;
};

#if NV_TENSORRT_MAJOR > 8 || NV_TENSORRT_MINOR >= 6
struct FakeLoggerFinder : ILoggerFinder {
    ILogger* findLogger() override { return nullptr; }
};
FakeLoggerFinder g_finder;
#endif

#if NV_TENSORRT_MAJOR >= 10
using AnyCreator = IPluginCreatorInterface;
bool identify(IPluginCreatorInterface const& c, std::string& n, std::string& v, std::string& ns)
{
    auto& cc = const_cast<IPluginCreatorInterface&>(c);
    if (std::strcmp(cc.getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") == 0)
    {
        auto& c3 = static_cast<IPluginCreatorV3One&>(cc);
        n = c3.getPluginName();
        v = c3.getPluginVersion();
        ns = c3.getPluginNamespace();
        return true;
    }
    auto& c2 = static_cast<IPluginCreator&>(cc);  // "PLUGIN CREATOR_V1"
    n = c2.getPluginName();
    v = c2.getPluginVersion();
    ns = c2.getPluginNamespace();
    return true;
}
#else
using AnyCreator = IPluginCreator;
bool identify(IPluginCreator const& c, std::string& n, std::string& v, std::string& ns)
{
    auto& cc = const_cast<IPluginCreator&>(c);
    n = cc.getPluginName();
    v = cc.getPluginVersion();
    ns = cc.getPluginNamespace();
    return true;
}
#endif

struct FakeRegistry : IPluginRegistry {
    std::vector<Entry> entries;
    Stats stats;

    Entry* find(char const* n, char const* v, char const* ns)
    {
        for (auto& e : entries)
            if (e.name == n && e.version == v && e.ns == (ns != nullptr ? ns : ""))
                return &e;
        return nullptr;
    }
    bool add(void const* c, std::string const& n, std::string const& v, char const* ns)
    {
        ++stats.registers;
        if (find(n.c_str(), v.c_str(), ns) != nullptr)
        {
            ++stats.refused;
            stats.last_error = "creator " + n + "/" + v + " already registered";
            return false;
        }
        entries.push_back({c, n, v, ns != nullptr ? ns : ""});
        return true;
    }
    bool remove(void const* c)
    {
        ++stats.deregisters;
        for (auto it = entries.begin(); it != entries.end(); ++it)
            if (it->creator == c)
            {
                entries.erase(it);
                return true;
            }
        return false;
    }

    // ---- IPluginRegistry (V2 creators; deprecated but present through 10.x)
    bool registerCreator(IPluginCreator& c, AsciiChar const* const ns) noexcept
    {
        return add(static_cast<void const*>(&c), c.getPluginName(), c.getPluginVersion(), ns);
    }
    IPluginCreator* const* getPluginCreatorList(int32_t* const n) const noexcept
    {
        *n = 0;
        return nullptr;
    }
    IPluginCreator* getPluginCreator(AsciiChar const* const n, AsciiChar const* const v, AsciiChar const* const ns) noexcept
    {
        Entry* e = find(n, v, ns);
        return e != nullptr ? static_cast<IPluginCreator*>(const_cast<void*>(e->creator)) : nullptr;
    }
    void setErrorRecorder(IErrorRecorder* const) noexcept override {}
    IErrorRecorder* getErrorRecorder() const noexcept override { return nullptr; }
    bool deregisterCreator(IPluginCreator const& c) noexcept { return remove(static_cast<void const*>(&c)); }
#if NV_TENSORRT_MAJOR > 8 || NV_TENSORRT_MINOR >= 6
    bool isParentSearchEnabled() const override { return false; }
    void setParentSearchEnabled(bool const) override {}

    PluginLibraryHandle loadLibrary(AsciiChar const* path) noexcept override
    {
        void* h = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
        if (h == nullptr)
            return fail_library(dlerror());
        using SetFinder = void (*)(ILoggerFinder*);
        if (auto* set_finder = reinterpret_cast<SetFinder>(dlsym(h, "setLoggerFinder")))
        {
            set_finder(&g_finder);
            ++stats.logger_finders;
        }
#if NV_TENSORRT_MAJOR >= 10
        using GetCreators = IPluginCreatorInterface* const* (*) (int32_t&);
        auto* get = reinterpret_cast<GetCreators>(dlsym(h, "getCreators"));
        char const* const entry = "getCreators";
#else
        using GetCreators = IPluginCreator* const* (*) (int32_t&);
        auto* get = reinterpret_cast<GetCreators>(dlsym(h, "getPluginCreators"));
        char const* const entry = "getPluginCreators";
#endif
        if (get == nullptr)
            return fail_library((std::string(path) + " does not export " + entry).c_str());
        int32_t nb = 0;
        AnyCreator* const* list = get(nb);
        std::vector<std::string> n(nb), v(nb), ns(nb);
        for (int32_t i = 0; i < nb; ++i)
        {
            identify(*list[i], n[i], v[i], ns[i]);
            if (find(n[i].c_str(), v[i].c_str(), ns[i].c_str()) != nullptr)
                return fail_library(("plugin " + n[i] + "/" + v[i] + " in namespace " + ns[i]
                    + " is already registered").c_str());
        }
        for (int32_t i = 0; i < nb; ++i)
            add(static_cast<void const*>(list[i]), n[i], v[i], ns[i].c_str());
        ++stats.libraries;
        return h;
    }
    PluginLibraryHandle fail_library(char const* why)
    {
        ++stats.library_failures;
        stats.last_error = why != nullptr ? why : "?";
        return nullptr;
    }
    void deregisterLibrary(PluginLibraryHandle) noexcept override {}
#endif
#if NV_TENSORRT_MAJOR >= 10
    bool registerCreator(IPluginCreatorInterface& c, AsciiChar const* const ns) noexcept override
    {
        std::string n, v, own_ns;
        identify(c, n, v, own_ns);
        return add(static_cast<void const*>(&c), n, v, ns);
    }
    IPluginCreatorInterface* const* getAllCreators(int32_t* const n) const noexcept override
    {
        *n = 0;
        return nullptr;
    }
    IPluginCreatorInterface* getCreator(AsciiChar const* const n, AsciiChar const* const v, AsciiChar const* const ns) noexcept override
    {
        Entry* e = find(n, v, ns);
        return e != nullptr ? static_cast<IPluginCreatorInterface*>(const_cast<void*>(e->creator)) : nullptr;
    }
    bool deregisterCreator(IPluginCreatorInterface const& c) noexcept override { return remove(static_cast<void const*>(&c)); }
    IPluginResource* acquirePluginResource(AsciiChar const*, IPluginResource*) noexcept override { return nullptr; }
    int32_t releasePluginResource(AsciiChar const*) noexcept override { return 0; }
    IPluginCreatorInterface* const* getAllCreatorsRecursive(int32_t* const n) noexcept
    {
        *n = 0;
        return nullptr;
    }
#endif
};

FakeRegistry& registry()
{
    static FakeRegistry r;
    return r;
}

} // namespace

FAKE_EXPORT IPluginRegistry* getPluginRegistry() noexcept
{
    return &registry();
}

// "entries=.. registers=.. refused=.. deregisters=.. libraries=.. library_failures=.. logger_finders=..
//  creators=name/version/ns,... error=<last error>"
FAKE_EXPORT int fake_trt_describe(char* buf, int len)
{
    FakeRegistry& r = registry();
    std::string creators;
    for (auto const& e : r.entries)
        creators += (creators.empty() ? "" : ",") + e.name + "/" + e.version + "/" + e.ns;
    return std::snprintf(buf, static_cast<size_t>(len),
        "major=%d entries=%zu registers=%d refused=%d deregisters=%d libraries=%d library_failures=%d "
        "logger_finders=%d creators=%s error=%s",
        NV_TENSORRT_MAJOR, r.entries.size(), r.stats.registers, r.stats.refused, r.stats.deregisters,
        r.stats.libraries, r.stats.library_failures, r.stats.logger_finders, creators.c_str(),
        r.stats.last_error.empty() ? "-" : r.stats.last_error.c_str());
}

// 1 when name/version/namespace is registered (getCreator >= 10, getPluginCreator 8.x).
FAKE_EXPORT int fake_trt_has(char const* name, char const* version, char const* ns)
{
#if NV_TENSORRT_MAJOR >= 10
    return registry().getCreator(name, version, ns) != nullptr;
#else
    return registry().getPluginCreator(name, version, ns) != nullptr;
#endif
}

// IPluginRegistry::loadLibrary through the registry's vtable, as trtexec --dynamicPlugins does.
FAKE_EXPORT int fake_trt_load_library(char const* path)
{
#if NV_TENSORRT_MAJOR > 8 || NV_TENSORRT_MINOR >= 6
    IPluginRegistry* reg = getPluginRegistry();
    return reg->loadLibrary(path) != nullptr;
#else
    (void) path;
    return -1;
#endif
}
