// SPDX-License-Identifier: Apache-2.0
// route_driver.cpp - a host program for the plugin-registration route tests (tests/plugins). It needs no
// TensorRT headers: it talks to the fake libnvinfer (fake_libnvinfer.cpp) through its C helpers.
//   route_driver loadlibrary <libnvinfer path> <plugin>   trtexec --dynamicPlugins: libnvinfer loaded
//                                                         globally, IPluginRegistry::loadLibrary(plugin)
//   route_driver later <libnvinfer path> [plugin]         LD_PRELOAD'ed plugin, program loads TensorRT
//                                                         afterwards (by full path, like python's tensorrt)
//   route_driver triton <backend.so> <plugin> <soname>    Triton: a backend linked against libnvinfer is
//                                                         dlopen'ed RTLD_LOCAL and dlopens the plugin
//                                                         RTLD_NOW | RTLD_LOCAL (tensorrt_backend's
//                                                         OpenLibraryHandle)
// Compiled with -DHDM_ROUTE_BACKEND it is that fake Triton backend instead (link it with the fake
// libnvinfer so that libnvinfer is its DT_NEEDED and stays out of the global scope).
// Prints key=value lines; the tests assert on them. Exit status 0 unless a step could not run.
#include <dlfcn.h>

#include <cstdio>
#include <cstring>

#ifndef HDM_ROUTE_BACKEND
namespace {
char const* kName = "HdmDeformConv";
char const* kVersion = "1";
char const* kNamespace = "hdm_deploy";

void* sym(void* h, char const* name)
{
    void* s = dlsym(h, name);
    if (s == nullptr)
        std::printf("missing_symbol=%s\n", name);
    return s;
}

void describe(void* nvinfer)
{
    using Describe = int (*)(char*, int);
    using Has = int (*)(char const*, char const*, char const*);
    char buf[2048] = {0};
    if (auto* d = reinterpret_cast<Describe>(sym(nvinfer, "fake_trt_describe")))
        d(buf, sizeof(buf));
    std::printf("registry: %s\n", buf);
    if (auto* has = reinterpret_cast<Has>(sym(nvinfer, "fake_trt_has")))
        std::printf("has_creator=%d\n", has(kName, kVersion, kNamespace));
}

void plugin_state(char const* plugin)
{
    void* h = dlopen(plugin, RTLD_LAZY | RTLD_NOLOAD);
    if (h == nullptr)
    {
        std::printf("plugin_loaded=0\n");
        return;
    }
    using State = char const* (*) ();
    if (auto* s = reinterpret_cast<State>(sym(h, "hdm_deploy_plugin_registration")))
        std::printf("plugin_state=%s\n", s());
    dlclose(h);
}
} // namespace
#endif

#ifdef HDM_ROUTE_BACKEND
// The fake Triton backend. getPluginRegistry resolves to its DT_NEEDED libnvinfer.
extern "C" void* getPluginRegistry() noexcept;
extern "C" __attribute__((visibility("default"))) int backend_initialize(char const* plugin)
{
    (void) getPluginRegistry();  // keep the DT_NEEDED libnvinfer referenced (--as-needed)
    void* h = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr)
    {
        std::printf("backend_dlopen_error=%s\n", dlerror());
        return 1;
    }
    return 0;
}
#else
int main(int argc, char** argv)
{
    if (argc < 3)
    {
        std::fprintf(stderr, "usage: route_driver loadlibrary|later|triton ...\n");
        return 2;
    }
    char const* mode = argv[1];
    if (std::strcmp(mode, "loadlibrary") == 0 && argc == 4)
    {
        void* nvinfer = dlopen(argv[2], RTLD_NOW | RTLD_GLOBAL);
        if (nvinfer == nullptr)
        {
            std::printf("dlopen_error=%s\n", dlerror());
            return 1;
        }
        using Load = int (*)(char const*);
        auto* load = reinterpret_cast<Load>(sym(nvinfer, "fake_trt_load_library"));
        if (load == nullptr)
            return 1;
        std::printf("load_library=%d\n", load(argv[3]));
        plugin_state(argv[3]);
        describe(nvinfer);
        // TensorRT refuses a second load of a library whose creators are registered.
        std::printf("load_library_again=%d\n", load(argv[3]));
        describe(nvinfer);
        return 0;
    }
    if (std::strcmp(mode, "later") == 0 && (argc == 3 || argc == 4))
    {
        void* before = dlopen(argv[2], RTLD_LAZY | RTLD_NOLOAD);
        std::printf("nvinfer_loaded_before_main=%d\n", before != nullptr ? 1 : 0);
        void* nvinfer = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
        if (nvinfer == nullptr)
        {
            std::printf("dlopen_error=%s\n", dlerror());
            return 1;
        }
        describe(nvinfer);
        if (argc == 4)
            plugin_state(argv[3]);
        return 0;
    }
    if (std::strcmp(mode, "triton") == 0 && argc == 5)
    {
        void* backend = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
        if (backend == nullptr)
        {
            std::printf("dlopen_error=%s\n", dlerror());
            return 1;
        }
        using Init = int (*)(char const*);
        auto* init = reinterpret_cast<Init>(sym(backend, "backend_initialize"));
        if (init == nullptr)
            return 1;
        std::printf("backend_initialize=%d\n", init(argv[3]));
        std::printf("nvinfer_global=%d\n", dlsym(RTLD_DEFAULT, "getPluginRegistry") != nullptr ? 1 : 0);
        plugin_state(argv[3]);
        void* nvinfer = dlopen(argv[4], RTLD_LAZY | RTLD_NOLOAD);  // the backend's libnvinfer, by soname
        if (nvinfer == nullptr)
        {
            std::printf("nvinfer_not_loaded=%s\n", argv[4]);
            return 1;
        }
        describe(nvinfer);
        return 0;
    }
    std::fprintf(stderr, "bad arguments\n");
    return 2;
}
#endif
