// SPDX-License-Identifier: Apache-2.0
// hdm_plugin_core.h - the pure decisions of the HdmDeformConv plugin.
//
// Everything the TensorRT adapters decide that does not need TensorRT lives here: attribute parsing
// with ONNX DeformConv defaults and validation, output-shape arithmetic (one template used for both
// integers and TensorRT's symbolic IDimensionExpr), the serialization layout, and the format rules.
// The CPU test library compiles this header too, so the tests exercise these decisions through ctypes
// on machines without TensorRT or a GPU.
//
// No TensorRT, no CUDA includes. Field-type and data-type codes use the numeric values of TensorRT's
// PluginFieldType / DataType so the adapters map them with a cast.
#pragma once

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace hdm {

constexpr char const* kPluginName = "HdmDeformConv";
constexpr char const* kPluginVersion = "1";
constexpr char const* kPluginNamespace = "hdm_deploy";

enum Status : int32_t {
    kOk = 0,
    kErrField = 1,    // unknown field / wrong field type or length
    kErrValue = 2,    // attribute value out of range
    kErrShape = 3,    // tensor shapes inconsistent with each other or with the attributes
    kErrBuffer = 4,   // serialized buffer malformed
    kErrType = 5,     // unsupported data type combination
    kErrRuntime = 6,  // CUDA launch / allocation failure
};

struct Error {
    char msg[512];
};

inline Status fail(Error* e, Status s, char const* fmt, ...)
{
    if (e != nullptr)
    {
        va_list ap;
        va_start(ap, fmt);
        std::vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
    }
    return s;
}

// ---- attributes ------------------------------------------------------------------------------

// Numeric values of nvinfer1::PluginFieldType (identical in TensorRT 8.5 ... 11).
enum FieldType : int32_t {
    kFieldF16 = 0,
    kFieldF32 = 1,
    kFieldF64 = 2,
    kFieldI8 = 3,
    kFieldI16 = 4,
    kFieldI32 = 5,
    kFieldChar = 6,
    kFieldDims = 7,
    kFieldUnknown = 8,
    kFieldBF16 = 9,
    kFieldI64 = 10,
};

// The ONNX DeformConv attributes (2-D). kernel = {0, 0} means "take it from W".
struct DeformAttrs {
    int32_t kernel[2];
    int32_t strides[2];
    int32_t pads[4];  // ONNX order: top, left, bottom, right
    int32_t dilations[2];
    int32_t group;
    int32_t offset_group;
};

// Flat int32 layout used by the C API and the serialization: kernel(2) strides(2) pads(4)
// dilations(2) group offset_group.
constexpr int kAttrInts = 12;

inline DeformAttrs default_attrs()
{
    DeformAttrs a{};
    a.kernel[0] = a.kernel[1] = 0;
    a.strides[0] = a.strides[1] = 1;
    for (int i = 0; i < 4; ++i)
        a.pads[i] = 0;
    a.dilations[0] = a.dilations[1] = 1;
    a.group = 1;
    a.offset_group = 1;
    return a;
}

inline void attrs_to_ints(DeformAttrs const& a, int32_t* v)
{
    v[0] = a.kernel[0];
    v[1] = a.kernel[1];
    v[2] = a.strides[0];
    v[3] = a.strides[1];
    for (int i = 0; i < 4; ++i)
        v[4 + i] = a.pads[i];
    v[8] = a.dilations[0];
    v[9] = a.dilations[1];
    v[10] = a.group;
    v[11] = a.offset_group;
}

inline DeformAttrs attrs_from_ints(int32_t const* v)
{
    DeformAttrs a{};
    a.kernel[0] = v[0];
    a.kernel[1] = v[1];
    a.strides[0] = v[2];
    a.strides[1] = v[3];
    for (int i = 0; i < 4; ++i)
        a.pads[i] = v[4 + i];
    a.dilations[0] = v[8];
    a.dilations[1] = v[9];
    a.group = v[10];
    a.offset_group = v[11];
    return a;
}

inline bool attrs_equal(DeformAttrs const& a, DeformAttrs const& b)
{
    int32_t x[kAttrInts], y[kAttrInts];
    attrs_to_ints(a, x);
    attrs_to_ints(b, y);
    return std::memcmp(x, y, sizeof(x)) == 0;
}

constexpr int32_t kMaxKernel = 1 << 12;
constexpr int32_t kMaxStride = 1 << 16;
constexpr int32_t kMaxPad = 1 << 16;

inline Status validate_attrs(DeformAttrs const& a, Error* e)
{
    bool const k0 = a.kernel[0] == 0 && a.kernel[1] == 0;
    if (!k0 && (a.kernel[0] < 1 || a.kernel[1] < 1 || a.kernel[0] > kMaxKernel || a.kernel[1] > kMaxKernel))
        return fail(e, kErrValue, "kernel_shape must be two integers in [1, %d], got [%d, %d]", kMaxKernel,
            a.kernel[0], a.kernel[1]);
    for (int i = 0; i < 2; ++i)
    {
        if (a.strides[i] < 1 || a.strides[i] > kMaxStride)
            return fail(e, kErrValue, "strides must be in [1, %d], got %d", kMaxStride, a.strides[i]);
        if (a.dilations[i] < 1 || a.dilations[i] > kMaxStride)
            return fail(e, kErrValue, "dilations must be in [1, %d], got %d", kMaxStride, a.dilations[i]);
    }
    for (int i = 0; i < 4; ++i)
        if (a.pads[i] < 0 || a.pads[i] > kMaxPad)
            return fail(e, kErrValue, "pads must be in [0, %d], got %d", kMaxPad, a.pads[i]);
    if (a.group < 1)
        return fail(e, kErrValue, "group must be >= 1, got %d", a.group);
    if (a.offset_group < 1)
        return fail(e, kErrValue, "offset_group must be >= 1, got %d", a.offset_group);
    return kOk;
}

// One plugin field, TensorRT-free (name, PluginFieldType code, data, element count).
struct FieldView {
    char const* name;
    int32_t type;
    void const* data;
    int32_t length;
};

// Fields the creator advertises (getFieldNames): the ONNX DeformConv attributes, as kINT32 arrays.
struct FieldSpec {
    char const* name;
    int32_t length;
};
constexpr int kNumFieldSpecs = 6;
constexpr FieldSpec kFieldSpecs[kNumFieldSpecs] = {
    {"dilations", 2},
    {"group", 1},
    {"kernel_shape", 2},
    {"offset_group", 1},
    {"pads", 4},
    {"strides", 2},
};

inline Status read_ints(FieldView const& f, int64_t* out, int32_t expected, Error* e)
{
    if (f.length != expected)
        return fail(e, kErrField, "field '%s' must have %d value(s), got %d", f.name, expected, f.length);
    if (expected > 0 && f.data == nullptr)
        return fail(e, kErrField, "field '%s' has no data", f.name);
    for (int32_t i = 0; i < expected; ++i)
    {
        switch (f.type)
        {
        case kFieldI8: out[i] = static_cast<int8_t const*>(f.data)[i]; break;
        case kFieldI16: out[i] = static_cast<int16_t const*>(f.data)[i]; break;
        case kFieldI32: out[i] = static_cast<int32_t const*>(f.data)[i]; break;
        case kFieldI64: out[i] = static_cast<int64_t const*>(f.data)[i]; break;
        default: return fail(e, kErrField, "field '%s' must be an integer field (kINT32), got type %d", f.name, f.type);
        }
        if (out[i] < INT32_MIN || out[i] > INT32_MAX)
            return fail(e, kErrValue, "field '%s' value out of int32 range", f.name);
    }
    return kOk;
}

inline bool char_field_equals(FieldView const& f, char const* want)
{
    if (f.data == nullptr || f.length < 0)
        return false;
    char const* s = static_cast<char const*>(f.data);
    size_t n = static_cast<size_t>(f.length);
    while (n > 0 && s[n - 1] == '\0')  // ONNX parsers pass the length with or without the terminator
        --n;
    return std::strlen(want) == n && std::strncmp(s, want, n) == 0;
}

// Parse plugin fields into attributes: ONNX defaults for absent fields, strict about unknown names,
// types and lengths. `plugin_version` / `plugin_namespace` (strings) are accepted when they match.
inline Status parse_fields(FieldView const* fields, int32_t n, DeformAttrs* out, Error* e)
{
    DeformAttrs a = default_attrs();
    if (n < 0 || (n > 0 && fields == nullptr))
        return fail(e, kErrField, "invalid field collection");
    for (int32_t i = 0; i < n; ++i)
    {
        FieldView const& f = fields[i];
        if (f.name == nullptr)
            return fail(e, kErrField, "field %d has no name", i);
        int64_t v[4] = {0, 0, 0, 0};
        Status s = kOk;
        if (std::strcmp(f.name, "dilations") == 0)
        {
            if ((s = read_ints(f, v, 2, e)) != kOk)
                return s;
            a.dilations[0] = static_cast<int32_t>(v[0]);
            a.dilations[1] = static_cast<int32_t>(v[1]);
        }
        else if (std::strcmp(f.name, "group") == 0)
        {
            if ((s = read_ints(f, v, 1, e)) != kOk)
                return s;
            a.group = static_cast<int32_t>(v[0]);
        }
        else if (std::strcmp(f.name, "kernel_shape") == 0)
        {
            if ((s = read_ints(f, v, 2, e)) != kOk)
                return s;
            a.kernel[0] = static_cast<int32_t>(v[0]);
            a.kernel[1] = static_cast<int32_t>(v[1]);
            if (a.kernel[0] == 0 || a.kernel[1] == 0)
                return fail(e, kErrValue, "kernel_shape values must be >= 1");
        }
        else if (std::strcmp(f.name, "offset_group") == 0)
        {
            if ((s = read_ints(f, v, 1, e)) != kOk)
                return s;
            a.offset_group = static_cast<int32_t>(v[0]);
        }
        else if (std::strcmp(f.name, "pads") == 0)
        {
            if ((s = read_ints(f, v, 4, e)) != kOk)
                return s;
            for (int k = 0; k < 4; ++k)
                a.pads[k] = static_cast<int32_t>(v[k]);
        }
        else if (std::strcmp(f.name, "strides") == 0)
        {
            if ((s = read_ints(f, v, 2, e)) != kOk)
                return s;
            a.strides[0] = static_cast<int32_t>(v[0]);
            a.strides[1] = static_cast<int32_t>(v[1]);
        }
        else if (std::strcmp(f.name, "plugin_version") == 0)
        {
            if (f.type != kFieldChar || !char_field_equals(f, kPluginVersion))
                return fail(e, kErrField, "plugin_version must be the string \"%s\"", kPluginVersion);
        }
        else if (std::strcmp(f.name, "plugin_namespace") == 0)
        {
            if (f.type != kFieldChar || !(char_field_equals(f, kPluginNamespace) || char_field_equals(f, "")))
                return fail(e, kErrField, "plugin_namespace must be the string \"%s\"", kPluginNamespace);
        }
        else
        {
            return fail(e, kErrField,
                "unknown field '%s' (expected dilations, group, kernel_shape, offset_group, pads, strides)", f.name);
        }
    }
    Status s = validate_attrs(a, e);
    if (s != kOk)
        return s;
    *out = a;
    return kOk;
}

// Storage for the fields that describe `a` (the V3 getFieldsToSerialize payload); parse_fields of
// these fields gives back `a`.
struct FieldStorage {
    int32_t dilations[2];
    int32_t group;
    int32_t kernel[2];
    int32_t offset_group;
    int32_t pads[4];
    int32_t strides[2];
    FieldView views[kNumFieldSpecs];
    int32_t count;
};

inline void fields_from_attrs(DeformAttrs const& a, FieldStorage* fs)
{
    fs->dilations[0] = a.dilations[0];
    fs->dilations[1] = a.dilations[1];
    fs->group = a.group;
    fs->kernel[0] = a.kernel[0];
    fs->kernel[1] = a.kernel[1];
    fs->offset_group = a.offset_group;
    for (int i = 0; i < 4; ++i)
        fs->pads[i] = a.pads[i];
    fs->strides[0] = a.strides[0];
    fs->strides[1] = a.strides[1];
    int n = 0;
    fs->views[n++] = FieldView{"dilations", kFieldI32, fs->dilations, 2};
    fs->views[n++] = FieldView{"group", kFieldI32, &fs->group, 1};
    if (a.kernel[0] != 0)  // "unknown yet" is expressed by leaving the field out
        fs->views[n++] = FieldView{"kernel_shape", kFieldI32, fs->kernel, 2};
    fs->views[n++] = FieldView{"offset_group", kFieldI32, &fs->offset_group, 1};
    fs->views[n++] = FieldView{"pads", kFieldI32, fs->pads, 4};
    fs->views[n++] = FieldView{"strides", kFieldI32, fs->strides, 2};
    fs->count = n;
}

// ---- shapes ----------------------------------------------------------------------------------

// out = floor((in + pad_sum - dil*(k-1) - 1) / stride) + 1, written once for any arithmetic `Ops`
// (plain integers here, IDimensionExpr in the TensorRT adapters).
template <class Ops>
typename Ops::Value conv_out_extent(
    Ops& ops, typename Ops::Value in, typename Ops::Value k, int32_t stride, int32_t pad_sum, int32_t dil)
{
    auto num = ops.sub(ops.add(in, ops.constant(pad_sum + dil - 1)), ops.mul(ops.constant(dil), k));
    return ops.add(ops.floor_div(num, ops.constant(stride)), ops.constant(1));
}

struct IntOps {
    using Value = int64_t;
    Value constant(int64_t v) const { return v; }
    Value add(Value a, Value b) const { return a + b; }
    Value sub(Value a, Value b) const { return a - b; }
    Value mul(Value a, Value b) const { return a * b; }
    Value floor_div(Value a, Value b) const
    {
        Value q = a / b;
        return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
    }
};

inline int64_t out_extent(int64_t in, int64_t k, int32_t stride, int32_t pad_sum, int32_t dil)
{
    IntOps ops;
    return conv_out_extent(ops, in, k, stride, pad_sum, dil);
}

struct Shape {
    int32_t rank;
    int64_t d[4];
};

// Everything a kernel launch needs. All extents fit int32 (checked by make_problem).
struct DeformProblem {
    int32_t N, C, H, W;
    int32_t O;
    int32_t kh, kw;
    int32_t Ho, Wo;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
    int32_t dil_h, dil_w;
    int32_t group, offset_group;
    int32_t has_bias, has_mask;
};

inline char const* input_name(int i)
{
    static char const* const names[5] = {"X", "W", "offset", "B", "mask"};
    return (i >= 0 && i < 5) ? names[i] : "?";
}

// Validate inputs X, W, offset[, B[, mask]] against each other and the attributes, and fill `pb`.
inline Status make_problem(DeformAttrs const& a, int32_t nb_inputs, Shape const* s, DeformProblem* pb, Error* e)
{
    Status st = validate_attrs(a, e);
    if (st != kOk)
        return st;
    if (nb_inputs < 3 || nb_inputs > 5)
        return fail(e, kErrShape, "HdmDeformConv takes 3 to 5 inputs (X, W, offset[, B[, mask]]), got %d", nb_inputs);
    int const expect_rank[5] = {4, 4, 4, 1, 4};
    for (int i = 0; i < nb_inputs; ++i)
    {
        if (s[i].rank != expect_rank[i])
            return fail(e, kErrShape, "input %s must have rank %d, got %d (only 2-D DeformConv is supported)",
                input_name(i), expect_rank[i], s[i].rank);
        for (int d = 0; d < s[i].rank; ++d)
            if (s[i].d[d] < 0 || s[i].d[d] > INT32_MAX)
                return fail(e, kErrShape, "input %s has an invalid dimension %lld", input_name(i),
                    static_cast<long long>(s[i].d[d]));
    }
    int64_t const N = s[0].d[0], C = s[0].d[1], H = s[0].d[2], W = s[0].d[3];
    int64_t const O = s[1].d[0], Cg = s[1].d[1], kh = s[1].d[2], kw = s[1].d[3];
    int64_t const G = a.group, OG = a.offset_group;
    if (C < 1 || H < 1 || W < 1 || O < 1 || kh < 1 || kw < 1)
        return fail(e, kErrShape, "X and W must have non-zero channel and spatial extents");
    if (a.kernel[0] != 0 && (a.kernel[0] != kh || a.kernel[1] != kw))
        return fail(e, kErrShape, "kernel_shape [%d, %d] does not match W's spatial shape [%lld, %lld]", a.kernel[0],
            a.kernel[1], static_cast<long long>(kh), static_cast<long long>(kw));
    if (Cg * G != C)
        return fail(e, kErrShape, "X has %lld channels but W.shape[1] * group = %lld * %lld",
            static_cast<long long>(C), static_cast<long long>(Cg), static_cast<long long>(G));
    if (O % G != 0)
        return fail(e, kErrShape, "output channels %lld are not divisible by group %lld", static_cast<long long>(O),
            static_cast<long long>(G));
    if (C % OG != 0)
        return fail(e, kErrShape, "input channels %lld are not divisible by offset_group %lld",
            static_cast<long long>(C), static_cast<long long>(OG));
    int64_t const Ho = out_extent(H, kh, a.strides[0], a.pads[0] + a.pads[2], a.dilations[0]);
    int64_t const Wo = out_extent(W, kw, a.strides[1], a.pads[1] + a.pads[3], a.dilations[1]);
    if (Ho < 1 || Wo < 1)
        return fail(e, kErrShape, "output would be empty (%lld x %lld): kernel extent exceeds the padded input",
            static_cast<long long>(Ho), static_cast<long long>(Wo));
    if (H * W > INT32_MAX || Ho * Wo > INT32_MAX || kh * kw > INT32_MAX / 2 / OG)
        return fail(e, kErrShape, "tensor planes larger than 2^31 elements are not supported");
    int64_t const K = kh * kw;
    Shape const& off = s[2];
    if (off.d[0] != N || off.d[1] != 2 * OG * K || off.d[2] != Ho || off.d[3] != Wo)
        return fail(e, kErrShape, "offset must have shape [%lld, %lld, %lld, %lld], got [%lld, %lld, %lld, %lld]",
            static_cast<long long>(N), static_cast<long long>(2 * OG * K), static_cast<long long>(Ho),
            static_cast<long long>(Wo), static_cast<long long>(off.d[0]), static_cast<long long>(off.d[1]),
            static_cast<long long>(off.d[2]), static_cast<long long>(off.d[3]));
    if (nb_inputs >= 4 && s[3].d[0] != O)
        return fail(e, kErrShape, "B must have shape [%lld], got [%lld]", static_cast<long long>(O),
            static_cast<long long>(s[3].d[0]));
    if (nb_inputs >= 5)
    {
        Shape const& m = s[4];
        if (m.d[0] != N || m.d[1] != OG * K || m.d[2] != Ho || m.d[3] != Wo)
            return fail(e, kErrShape, "mask must have shape [%lld, %lld, %lld, %lld], got [%lld, %lld, %lld, %lld]",
                static_cast<long long>(N), static_cast<long long>(OG * K), static_cast<long long>(Ho),
                static_cast<long long>(Wo), static_cast<long long>(m.d[0]), static_cast<long long>(m.d[1]),
                static_cast<long long>(m.d[2]), static_cast<long long>(m.d[3]));
    }
    DeformProblem p{};
    p.N = static_cast<int32_t>(N);
    p.C = static_cast<int32_t>(C);
    p.H = static_cast<int32_t>(H);
    p.W = static_cast<int32_t>(W);
    p.O = static_cast<int32_t>(O);
    p.kh = static_cast<int32_t>(kh);
    p.kw = static_cast<int32_t>(kw);
    p.Ho = static_cast<int32_t>(Ho);
    p.Wo = static_cast<int32_t>(Wo);
    p.stride_h = a.strides[0];
    p.stride_w = a.strides[1];
    p.pad_top = a.pads[0];
    p.pad_left = a.pads[1];
    p.dil_h = a.dilations[0];
    p.dil_w = a.dilations[1];
    p.group = a.group;
    p.offset_group = a.offset_group;
    p.has_bias = nb_inputs >= 4 ? 1 : 0;
    p.has_mask = nb_inputs >= 5 ? 1 : 0;
    *pb = p;
    return kOk;
}

// ---- serialization (IPluginV2 buffer) ---------------------------------------------------------
// Little-endian int32 words: magic, layout version, the 12 attribute ints, nb_inputs (0 = unknown).
constexpr uint32_t kSerialMagic = 0x4D444D48u;  // bytes "HMDM"
constexpr uint32_t kSerialVersion = 1u;
constexpr size_t kSerialWords = 2 + kAttrInts + 1;
constexpr size_t kSerialBytes = 4 * kSerialWords;

inline void put_u32(unsigned char* p, uint32_t v)
{
    p[0] = static_cast<unsigned char>(v & 0xFFu);
    p[1] = static_cast<unsigned char>((v >> 8) & 0xFFu);
    p[2] = static_cast<unsigned char>((v >> 16) & 0xFFu);
    p[3] = static_cast<unsigned char>((v >> 24) & 0xFFu);
}

inline uint32_t get_u32(unsigned char const* p)
{
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16)
        | (static_cast<uint32_t>(p[3]) << 24);
}

// Returns the number of bytes written, or 0 if `cap` is too small.
inline size_t serialize(DeformAttrs const& a, int32_t nb_inputs, void* buf, size_t cap)
{
    if (buf == nullptr || cap < kSerialBytes)
        return 0;
    auto* p = static_cast<unsigned char*>(buf);
    int32_t v[kAttrInts];
    attrs_to_ints(a, v);
    put_u32(p, kSerialMagic);
    put_u32(p + 4, kSerialVersion);
    for (int i = 0; i < kAttrInts; ++i)
        put_u32(p + 8 + 4 * i, static_cast<uint32_t>(v[i]));
    put_u32(p + 8 + 4 * kAttrInts, static_cast<uint32_t>(nb_inputs));
    return kSerialBytes;
}

inline Status deserialize(void const* buf, size_t len, DeformAttrs* a, int32_t* nb_inputs, Error* e)
{
    if (buf == nullptr || len != kSerialBytes)
        return fail(e, kErrBuffer, "serialized HdmDeformConv must be %zu bytes, got %zu", kSerialBytes, len);
    auto const* p = static_cast<unsigned char const*>(buf);
    if (get_u32(p) != kSerialMagic)
        return fail(e, kErrBuffer, "serialized HdmDeformConv has a wrong magic number");
    if (get_u32(p + 4) != kSerialVersion)
        return fail(e, kErrBuffer, "serialized HdmDeformConv layout version %u is not supported (expected %u)",
            get_u32(p + 4), kSerialVersion);
    int32_t v[kAttrInts];
    for (int i = 0; i < kAttrInts; ++i)
        v[i] = static_cast<int32_t>(get_u32(p + 8 + 4 * i));
    DeformAttrs const parsed = attrs_from_ints(v);
    Status s = validate_attrs(parsed, e);
    if (s != kOk)
        return s;
    int32_t const n = static_cast<int32_t>(get_u32(p + 8 + 4 * kAttrInts));
    if (n != 0 && (n < 3 || n > 5))
        return fail(e, kErrBuffer, "serialized HdmDeformConv has an invalid input count %d", n);
    *a = parsed;
    *nb_inputs = n;
    return kOk;
}

// ---- formats ---------------------------------------------------------------------------------
// Data-type codes = nvinfer1::DataType values for the two supported types; anything else maps to
// kOtherType. Format codes: kLinear = nvinfer1::TensorFormat::kLINEAR (0).
enum DType : int32_t { kF32 = 0, kF16 = 1, kOtherType = -1 };
enum Format : int32_t { kLinear = 0 };

inline bool is_float_type(int32_t t) { return t == kF32 || t == kF16; }

// TensorRT's supportsFormatCombination rule. Only positions <= pos are inspected (TensorRT fixes
// them in order). Linear (NCHW) only. X, W, B and Y share one "data" type (FP32 or FP16); offset and
// mask share one "coordinate" type (FP32 or FP16), which may differ from the data type, so a strongly
// typed network may keep offsets in FP32 while the features are FP16.
inline bool supports_format(int32_t pos, int32_t const* dtypes, int32_t const* formats, int32_t nb_in, int32_t nb_out)
{
    if (nb_in < 3 || nb_in > 5 || nb_out != 1 || pos < 0 || pos >= nb_in + nb_out)
        return false;
    if (formats[pos] != kLinear || !is_float_type(dtypes[pos]))
        return false;
    if (pos >= nb_in)
        return dtypes[pos] == dtypes[0];  // output Y
    switch (pos)
    {
    case 0: return true;                       // X
    case 1: return dtypes[1] == dtypes[0];     // W
    case 2: return true;                       // offset
    case 3: return dtypes[3] == dtypes[0];     // B
    case 4: return dtypes[4] == dtypes[2];     // mask
    default: return false;
    }
}

// Same rule, checked all at once (enqueue / C API).
inline Status check_types(int32_t const* dtypes, int32_t nb_in, Error* e)
{
    int32_t formats[6] = {0, 0, 0, 0, 0, 0};
    int32_t all[6];
    for (int i = 0; i < nb_in; ++i)
        all[i] = dtypes[i];
    all[nb_in] = dtypes[0];
    for (int pos = 0; pos <= nb_in; ++pos)
        if (!supports_format(pos, all, formats, nb_in, 1))
            return fail(e, kErrType,
                "unsupported data types: X/W/B must share FP32 or FP16, offset/mask must share FP32 or FP16 "
                "(input %s)",
                pos < nb_in ? input_name(pos) : "Y");
    return kOk;
}

} // namespace hdm
