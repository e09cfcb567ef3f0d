# SPDX-License-Identifier: Apache-2.0
# HdmPlatform.cmake - which machine is this, and which CUDA architectures does the plugin get by default.
# Mirrored by hdm_deploy.plugins._build.detect_platform() / default_cuda_archs(); tests/plugins compare
# the two. Script mode (what the test runs):
#   cmake -DHDM_PLATFORM_ROOT=/ -DHDM_PROCESSOR=aarch64 -DHDM_CUDA_MAJOR=12 -P HdmPlatform.cmake
#   -> "-- platform=jetson soc=orin archs=87 source=/proc/device-tree/compatible: nvidia,tegra234"
#
# Jetson is detected from the device tree (compatible strings "nvidia,tegra194" Xavier, "nvidia,tegra234"
# Orin, "nvidia,tegra264" Thor, any other "nvidia,tegra*"), else from L4T's /etc/nv_tegra_release, else
# from the presence of /usr/lib/aarch64-linux-gnu/tegra. Any other aarch64 machine is an SBSA server
# (GH200 sm_90, GB200 sm_100, GB300 sm_103, DGX Spark GB10 sm_121, Arm servers with PCIe GPUs) and gets
# the same list as x86_64. Compute capabilities: developer.nvidia.com/cuda-gpus (Orin 8.7, Thor T5000 /
# T4000 11.0, GH200 9.0, GB200 10.0) and /cuda-legacy-gpus (Xavier 7.2).
include_guard(GLOBAL)

# hdm_detect_platform(<out> [ROOT <dir>] [PROCESSOR <name>])
#   <out>_KIND    x86_64 | sbsa | jetson | other
#   <out>_SOC     xavier | orin | thor | unknown (Jetson only, else empty)
#   <out>_SOURCE  what the decision was read from (printed by the build)
function(hdm_detect_platform out)
  cmake_parse_arguments(A "" "ROOT;PROCESSOR" "" ${ARGN})
  set(root "${A_ROOT}")
  string(REGEX REPLACE "/+$" "" root "${root}")
  set(proc "${A_PROCESSOR}")
  if(NOT proc)
    set(proc "${CMAKE_SYSTEM_PROCESSOR}")
  endif()
  string(TOLOWER "${proc}" proc)
  set(kind other)
  set(soc "")
  set(source "processor ${proc}")
  if(proc MATCHES "^(x86_64|amd64)$")
    set(kind x86_64)
  elseif(proc MATCHES "^(aarch64|arm64)$")
    set(kind sbsa)
    set(source "aarch64 without /proc/device-tree nvidia,tegra, /etc/nv_tegra_release or /usr/lib/aarch64-linux-gnu/tegra")
    set(compat_file "${root}/proc/device-tree/compatible")
    set(compat "")
    if(EXISTS "${compat_file}")
      file(STRINGS "${compat_file}" compat)  # NUL-separated strings
    endif()
    set(tegra "")
    foreach(c IN LISTS compat)
      if(c MATCHES "^nvidia,tegra")
        set(tegra "${c}")
        if(c MATCHES "^nvidia,tegra(194|234|264)$")
          break()
        endif()
      endif()
    endforeach()
    if(tegra)
      set(kind jetson)
      set(source "/proc/device-tree/compatible: ${tegra}")
      if(tegra STREQUAL "nvidia,tegra194")
        set(soc xavier)
      elseif(tegra STREQUAL "nvidia,tegra234")
        set(soc orin)
      elseif(tegra STREQUAL "nvidia,tegra264")
        set(soc thor)
      else()
        set(soc unknown)
      endif()
    elseif(EXISTS "${root}/etc/nv_tegra_release")
      set(kind jetson)
      set(soc unknown)
      set(source "/etc/nv_tegra_release")
    elseif(IS_DIRECTORY "${root}/usr/lib/aarch64-linux-gnu/tegra")
      set(kind jetson)
      set(soc unknown)
      set(source "/usr/lib/aarch64-linux-gnu/tegra")
    endif()
  endif()
  set(${out}_KIND "${kind}" PARENT_SCOPE)
  set(${out}_SOC "${soc}" PARENT_SCOPE)
  set(${out}_SOURCE "${source}" PARENT_SCOPE)
endfunction()

# hdm_default_archs(<out> <kind> <soc> <cuda_major>)
#   <out>        architectures before filtering by what nvcc supports
#   <out>_ERROR  set when this platform cannot be served by this CUDA at all
function(hdm_default_archs out kind soc cuda_major)
  set(err "")
  if(kind STREQUAL "jetson")
    if(soc STREQUAL "xavier")
      set(archs 72)
      if(NOT cuda_major LESS 13)
        set(err "Jetson Xavier (sm_72) needs CUDA <= 12 - JetPack 5 ships CUDA 11.4; CUDA ${cuda_major} dropped sm_72")
      endif()
    elseif(soc STREQUAL "orin")
      set(archs 87)
    elseif(soc STREQUAL "thor")
      set(archs 110)
      if(cuda_major LESS 13)
        set(err "Jetson Thor (sm_110) needs CUDA >= 13 (JetPack 7); this nvcc is CUDA ${cuda_major}")
      endif()
    elseif(cuda_major LESS 12)
      set(archs 72 87)   # JetPack 5.x (CUDA 11.4): Xavier + Orin
    elseif(cuda_major LESS 13)
      set(archs 87)      # JetPack 6.x (CUDA 12.x): Orin
    else()
      set(archs 87 110)  # CUDA 13 (JetPack 7): Orin + Thor
    endif()
  else()
    # x86_64 and SBSA (GH200 90, GB200 100, GB300 103 and GB10 121 run the 100 / 120 SASS): Turing ...
    # Blackwell, later filtered by what this nvcc supports.
    set(archs 75 80 86 89 90 100 120)
  endif()
  set(${out} "${archs}" PARENT_SCOPE)
  set(${out}_ERROR "${err}" PARENT_SCOPE)
endfunction()

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  if(NOT DEFINED HDM_PROCESSOR)
    execute_process(COMMAND uname -m OUTPUT_VARIABLE HDM_PROCESSOR OUTPUT_STRIP_TRAILING_WHITESPACE)
  endif()
  if(NOT DEFINED HDM_CUDA_MAJOR)
    set(HDM_CUDA_MAJOR 13)
  endif()
  hdm_detect_platform(_p ROOT "${HDM_PLATFORM_ROOT}" PROCESSOR "${HDM_PROCESSOR}")
  hdm_default_archs(_a "${_p_KIND}" "${_p_SOC}" "${HDM_CUDA_MAJOR}")
  string(REPLACE ";" "," _archs "${_a}")
  message(STATUS "platform=${_p_KIND} soc=${_p_SOC} archs=${_archs} error=${_a_ERROR} source=${_p_SOURCE}")
endif()
