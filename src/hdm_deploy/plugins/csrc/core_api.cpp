// SPDX-License-Identifier: Apache-2.0
// core_api.cpp - C entry points over hdm_plugin_core.h (compiled into both libraries).
#include <cstdio>
#include <string>

#include "hdm_c_api.h"
#include "hdm_c_helpers.h"
#include "hdm_plugin_core.h"

#if defined(HDM_WITH_TENSORRT)
#include <NvInferVersion.h>
#endif

#ifndef HDM_BUILD_KIND
#define HDM_BUILD_KIND "cpu"
#endif

#define HDM_STR2(x) #x
#define HDM_STR(x) HDM_STR2(x)

namespace {
constexpr int32_t kAbiVersion = 1;
}

extern "C" {

HDM_EXPORT int32_t hdm_deploy_abi_version(void)
{
    return kAbiVersion;
}

HDM_EXPORT char const* hdm_deploy_plugin_info(void)
{
#if defined(HDM_WITH_TENSORRT)
#if NV_TENSORRT_MAJOR >= 10
#define HDM_PLUGIN_KIND "V3"
#else
#define HDM_PLUGIN_KIND "V2"
#endif
    return "hdm_deploy_plugins " HDM_STR(1) " kernels=" HDM_BUILD_KIND " tensorrt=" HDM_STR(NV_TENSORRT_MAJOR) "." HDM_STR(
        NV_TENSORRT_MINOR) "." HDM_STR(NV_TENSORRT_PATCH) " plugin=" HDM_PLUGIN_KIND;
#else
    return "hdm_deploy_plugins " HDM_STR(1) " kernels=" HDM_BUILD_KIND " tensorrt=none plugin=none";
#endif
}

HDM_EXPORT int32_t hdm_core_parse_fields(int32_t nb_fields, char const* const* names, int32_t const* types,
    void const* const* data, int32_t const* lengths, int32_t* attrs_out, char* err, int32_t err_len)
{
    hdm::Error e{};
    if (nb_fields < 0 || nb_fields > 64 || attrs_out == nullptr
        || (nb_fields > 0 && (names == nullptr || types == nullptr || data == nullptr || lengths == nullptr)))
    {
        hdm::fail(&e, hdm::kErrField, "invalid field arrays");
        hdm::copy_error(e, err, err_len);
        return hdm::kErrField;
    }
    hdm::FieldView views[64];
    for (int32_t i = 0; i < nb_fields; ++i)
        views[i] = hdm::FieldView{names[i], types[i], data[i], lengths[i]};
    hdm::DeformAttrs a{};
    hdm::Status s = hdm::parse_fields(views, nb_fields, &a, &e);
    if (s != hdm::kOk)
    {
        hdm::copy_error(e, err, err_len);
        return s;
    }
    hdm::attrs_to_ints(a, attrs_out);
    return hdm::kOk;
}

HDM_EXPORT int32_t hdm_core_validate_attrs(int32_t const* attrs, char* err, int32_t err_len)
{
    hdm::Error e{};
    hdm::Status s = hdm::validate_attrs(hdm::attrs_from_ints(attrs), &e);
    if (s != hdm::kOk)
        hdm::copy_error(e, err, err_len);
    return s;
}

HDM_EXPORT int32_t hdm_core_fields_roundtrip(int32_t const* attrs, int32_t* attrs_out, int32_t* nb_fields_out)
{
    hdm::FieldStorage fs{};
    hdm::fields_from_attrs(hdm::attrs_from_ints(attrs), &fs);
    if (nb_fields_out != nullptr)
        *nb_fields_out = fs.count;
    hdm::DeformAttrs back{};
    hdm::Status s = hdm::parse_fields(fs.views, fs.count, &back, nullptr);
    if (s == hdm::kOk)
        hdm::attrs_to_ints(back, attrs_out);
    return s;
}

HDM_EXPORT int64_t hdm_core_out_extent(int64_t in, int64_t k, int32_t stride, int32_t pad_sum, int32_t dil)
{
    return hdm::out_extent(in, k, stride, pad_sum, dil);
}

HDM_EXPORT int32_t hdm_core_output_shape(int32_t const* attrs, int32_t nb_inputs, int64_t const* shapes,
    int64_t* out_shape, char* err, int32_t err_len)
{
    hdm::Error e{};
    hdm::DeformProblem pb{};
    hdm::Status s = hdm::problem_from_c(attrs, nb_inputs, shapes, &pb, &e);
    if (s != hdm::kOk)
    {
        hdm::copy_error(e, err, err_len);
        return s;
    }
    out_shape[0] = pb.N;
    out_shape[1] = pb.O;
    out_shape[2] = pb.Ho;
    out_shape[3] = pb.Wo;
    return hdm::kOk;
}

HDM_EXPORT int64_t hdm_core_serialized_size(void)
{
    return static_cast<int64_t>(hdm::kSerialBytes);
}

HDM_EXPORT int64_t hdm_core_serialize(int32_t const* attrs, int32_t nb_inputs, void* buf, int64_t cap)
{
    if (cap < 0)
        return 0;
    return static_cast<int64_t>(
        hdm::serialize(hdm::attrs_from_ints(attrs), nb_inputs, buf, static_cast<size_t>(cap)));
}

HDM_EXPORT int32_t hdm_core_deserialize(
    void const* buf, int64_t len, int32_t* attrs_out, int32_t* nb_inputs_out, char* err, int32_t err_len)
{
    hdm::Error e{};
    hdm::DeformAttrs a{};
    int32_t n = 0;
    hdm::Status s = hdm::deserialize(buf, len < 0 ? 0 : static_cast<size_t>(len), &a, &n, &e);
    if (s != hdm::kOk)
    {
        hdm::copy_error(e, err, err_len);
        return s;
    }
    hdm::attrs_to_ints(a, attrs_out);
    *nb_inputs_out = n;
    return hdm::kOk;
}

HDM_EXPORT int32_t hdm_core_supports_format(
    int32_t pos, int32_t const* dtypes, int32_t const* formats, int32_t nb_inputs, int32_t nb_outputs)
{
    if (dtypes == nullptr || formats == nullptr)
        return 0;
    return hdm::supports_format(pos, dtypes, formats, nb_inputs, nb_outputs) ? 1 : 0;
}

HDM_EXPORT int32_t hdm_deploy_plugin_selftest(char* report, int32_t report_len)
{
    std::string log;
    int32_t failures = 0;
    auto check = [&](bool ok, char const* what) {
        log += ok ? "ok   " : "FAIL ";
        log += what;
        log += '\n';
        if (!ok)
            ++failures;
    };
    hdm::Error e{};
    hdm::DeformAttrs a{};

    check(hdm::parse_fields(nullptr, 0, &a, &e) == hdm::kOk && hdm::attrs_equal(a, hdm::default_attrs()),
        "no fields -> ONNX defaults");

    int32_t const dil[2] = {2, 1}, grp = 2, ks[2] = {3, 5}, og = 4, pads[4] = {1, 2, 0, 2}, st[2] = {2, 1};
    hdm::FieldView const full[6] = {{"dilations", hdm::kFieldI32, dil, 2}, {"group", hdm::kFieldI32, &grp, 1},
        {"kernel_shape", hdm::kFieldI32, ks, 2}, {"offset_group", hdm::kFieldI32, &og, 1},
        {"pads", hdm::kFieldI32, pads, 4}, {"strides", hdm::kFieldI32, st, 2}};
    bool ok = hdm::parse_fields(full, 6, &a, &e) == hdm::kOk;
    check(ok && a.dilations[0] == 2 && a.group == 2 && a.kernel[1] == 5 && a.offset_group == 4 && a.pads[1] == 2
            && a.pads[2] == 0 && a.strides[0] == 2,
        "all six attributes parsed");

    hdm::FieldStorage fs{};
    hdm::fields_from_attrs(a, &fs);
    hdm::DeformAttrs b{};
    check(hdm::parse_fields(fs.views, fs.count, &b, &e) == hdm::kOk && hdm::attrs_equal(a, b),
        "fields_from_attrs -> parse_fields round trip");

    int64_t const st64[2] = {1, 2};
    hdm::FieldView const f64[1] = {{"strides", hdm::kFieldI64, st64, 2}};
    check(hdm::parse_fields(f64, 1, &b, &e) == hdm::kOk && b.strides[1] == 2, "kINT64 fields accepted");

    hdm::FieldView const unknown[1] = {{"stride", hdm::kFieldI32, st, 2}};
    check(hdm::parse_fields(unknown, 1, &b, &e) == hdm::kErrField, "unknown field rejected");
    hdm::FieldView const short_pads[1] = {{"pads", hdm::kFieldI32, pads, 2}};
    check(hdm::parse_fields(short_pads, 1, &b, &e) == hdm::kErrField, "pads with 2 values rejected");
    int32_t const zero = 0;
    hdm::FieldView const bad_group[1] = {{"group", hdm::kFieldI32, &zero, 1}};
    check(hdm::parse_fields(bad_group, 1, &b, &e) == hdm::kErrValue, "group 0 rejected");
    hdm::FieldView const ver[2] = {{"plugin_version", hdm::kFieldChar, "1", 1},
        {"plugin_namespace", hdm::kFieldChar, "hdm_deploy", 10}};
    check(hdm::parse_fields(ver, 2, &b, &e) == hdm::kOk, "plugin_version/plugin_namespace accepted");
    hdm::FieldView const badver[1] = {{"plugin_version", hdm::kFieldChar, "2", 1}};
    check(hdm::parse_fields(badver, 1, &b, &e) == hdm::kErrField, "plugin_version 2 rejected");

    unsigned char buf[hdm::kSerialBytes + 8];
    size_t const n = hdm::serialize(a, 5, buf, sizeof(buf));
    int32_t nb = 0;
    check(n == hdm::kSerialBytes && hdm::deserialize(buf, n, &b, &nb, &e) == hdm::kOk && hdm::attrs_equal(a, b)
            && nb == 5,
        "serialize -> deserialize round trip");
    check(hdm::deserialize(buf, n - 1, &b, &nb, &e) == hdm::kErrBuffer, "truncated buffer rejected");
    buf[0] ^= 0xFF;
    check(hdm::deserialize(buf, n, &b, &nb, &e) == hdm::kErrBuffer, "wrong magic rejected");

    check(hdm::out_extent(270, 3, 1, 2, 1) == 270 && hdm::out_extent(3, 2, 1, 2, 1) == 4
            && hdm::out_extent(3, 2, 1, 0, 1) == 2 && hdm::out_extent(10, 3, 2, 0, 2) == 3,
        "output extent arithmetic");

    int32_t const fmt[6] = {0, 0, 0, 0, 0, 0};
    int32_t const mixed[6] = {hdm::kF16, hdm::kF16, hdm::kF32, hdm::kF16, hdm::kF32, hdm::kF16};
    bool all = true;
    for (int p = 0; p < 6; ++p)
        all = all && hdm::supports_format(p, mixed, fmt, 5, 1);
    check(all, "FP16 data with FP32 offset/mask accepted");
    int32_t const bad[4] = {hdm::kF16, hdm::kF32, hdm::kF16, hdm::kF16};
    check(!hdm::supports_format(1, bad, fmt, 3, 1), "W type different from X rejected");
    int32_t const chw4[4] = {0, 0, 0, 1};
    check(!hdm::supports_format(3, mixed, chw4, 3, 1), "non-linear output format rejected");

    hdm::Shape s[5] = {{4, {1, 64, 270, 480}}, {4, {64, 64, 3, 3}}, {4, {1, 18, 270, 480}}, {1, {64}},
        {4, {1, 9, 270, 480}}};
    hdm::DeformAttrs hdm_attrs = hdm::default_attrs();
    hdm_attrs.pads[0] = hdm_attrs.pads[1] = hdm_attrs.pads[2] = hdm_attrs.pads[3] = 1;
    hdm::DeformProblem pb{};
    check(hdm::make_problem(hdm_attrs, 5, s, &pb, &e) == hdm::kOk && pb.Ho == 270 && pb.Wo == 480 && pb.has_mask,
        "HDM 1080p problem accepted");
    s[2].d[1] = 27;
    check(hdm::make_problem(hdm_attrs, 5, s, &pb, &e) == hdm::kErrShape, "offset with 27 channels rejected");

    if (report != nullptr && report_len > 0)
    {
        std::strncpy(report, log.c_str(), static_cast<size_t>(report_len) - 1);
        report[report_len - 1] = '\0';
    }
    return failures;
}

} // extern "C"
