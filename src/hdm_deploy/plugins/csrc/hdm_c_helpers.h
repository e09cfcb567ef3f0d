// SPDX-License-Identifier: Apache-2.0
// hdm_c_helpers.h - small helpers shared by the C entry points (not part of the public API).
#pragma once

#include <cstdint>
#include <cstring>

#include "hdm_plugin_core.h"

namespace hdm {

inline void copy_error(Error const& e, char* err, int32_t err_len)
{
    if (err != nullptr && err_len > 0)
    {
        std::strncpy(err, e.msg, static_cast<size_t>(err_len) - 1);
        err[err_len - 1] = '\0';
    }
}

// shapes: int64[nb * 5] = per input its rank then up to 4 dims.
inline Status decode_shapes(int32_t nb, int64_t const* shapes, Shape* out, Error* e)
{
    if (shapes == nullptr)
        return fail(e, kErrShape, "no shapes given");
    for (int32_t i = 0; i < nb; ++i)
    {
        int64_t const rank = shapes[5 * i];
        if (rank < 0 || rank > 4)
            return fail(e, kErrShape, "input %s has unsupported rank %lld", input_name(i), static_cast<long long>(rank));
        out[i].rank = static_cast<int32_t>(rank);
        for (int d = 0; d < 4; ++d)
            out[i].d[d] = d < rank ? shapes[5 * i + 1 + d] : 0;
    }
    return kOk;
}

// Attributes + shapes -> validated problem (the same path the TensorRT adapters take).
inline Status problem_from_c(int32_t const* attrs, int32_t nb_inputs, int64_t const* shapes, DeformProblem* pb, Error* e)
{
    if (attrs == nullptr)
        return fail(e, kErrValue, "no attributes given");
    if (nb_inputs < 3 || nb_inputs > 5)
        return fail(e, kErrShape, "HdmDeformConv takes 3 to 5 inputs, got %d", nb_inputs);
    Shape s[5];
    Status st = decode_shapes(nb_inputs, shapes, s, e);
    if (st != kOk)
        return st;
    return make_problem(attrs_from_ints(attrs), nb_inputs, s, pb, e);
}

} // namespace hdm
