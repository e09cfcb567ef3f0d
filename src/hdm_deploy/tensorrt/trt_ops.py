"""Which ONNX ops each TensorRT version's ONNX parser imports — data plus a static checker.

Sources (transcribed as data; no code copied):

- ``docs/operators.md`` of onnx-tensorrt at tags ``release/8.5-GA``, ``release/8.6-GA`` and
  ``release/10.1-GA`` (the "Supported" column and the "Supported Types" column);
- for 10.3, 10.13 and 11: the 10.1 table plus the parser changes listed in TensorRT's
  ``CHANGELOG.md`` (release/11.1) for 10.2 … 11.1 (:data:`CHANGES`);
- caveats encoded in :func:`check_model` come from the tables' "Restrictions" column and from
  reading the parser sources of those tags (e.g. TRT 8.5/8.6 ignore the opset-18 ``axes`` *input*
  of ReduceMin/ReduceMax/ReduceMean/… and reduce over every axis; UINT8 only as network I/O and
  through Cast to/from FP32/FP16).

Opset ranges: 8.5 and 8.6 document opset ≤ 17, 10.1 opset 9–20; for 10.13 and 11 we assume the
ONNX 1.17 submodule of 10.6+ (opset ≤ 22) — marked ``assumed`` in :data:`OPSET_MAX_NOTE`.
"""

from __future__ import annotations

from dataclasses import dataclass

from hdm_deploy.tensorrt.flags import parse_version

#: op type → supported types ("FP32 FP16 …"), for ops the table marks "Y".
_TABLES: dict[str, dict[str, str]] = {
    "8.5": {
        "Abs": "FP32 FP16 INT32",
        "Acos": "FP32 FP16",
        "Acosh": "FP32 FP16",
        "Add": "FP32 FP16 INT32",
        "And": "BOOL",
        "ArgMax": "FP32 FP16",
        "ArgMin": "FP32 FP16",
        "Asin": "FP32 FP16",
        "Asinh": "FP32 FP16",
        "Atan": "FP32 FP16",
        "Atanh": "FP32 FP16",
        "AveragePool": "FP32 FP16 INT8 INT32",
        "BatchNormalization": "FP32 FP16",
        "Cast": "FP32 FP16 INT32 INT8 BOOL",
        "Ceil": "FP32 FP16",
        "Celu": "FP32 FP16",
        "Clip": "FP32 FP16 INT8",
        "Concat": "FP32 FP16 INT32 INT8 BOOL",
        "Constant": "FP32 FP16 INT32 INT8 BOOL",
        "ConstantOfShape": "FP32",
        "Conv": "FP32 FP16 INT8",
        "ConvTranspose": "FP32 FP16 INT8",
        "Cos": "FP32 FP16",
        "Cosh": "FP32 FP16",
        "CumSum": "FP32 FP16",
        "DepthToSpace": "FP32 FP16 INT32",
        "DequantizeLinear": "INT8",
        "Div": "FP32 FP16 INT32",
        "Dropout": "FP32 FP16",
        "Einsum": "FP32 FP16",
        "Elu": "FP32 FP16 INT8",
        "Equal": "FP32 FP16 INT32",
        "Erf": "FP32 FP16",
        "Exp": "FP32 FP16",
        "Expand": "FP32 FP16 INT32 BOOL",
        "EyeLike": "FP32 FP16 INT32 BOOL",
        "Flatten": "FP32 FP16 INT32 BOOL",
        "Floor": "FP32 FP16",
        "GRU": "FP32 FP16",
        "Gather": "FP32 FP16 INT8 INT32 BOOL",
        "GatherElements": "FP32 FP16 INT8 INT32 BOOL",
        "GatherND": "FP32 FP16 INT8 INT32 BOOL",
        "Gemm": "FP32 FP16 INT8",
        "GlobalAveragePool": "FP32 FP16 INT8",
        "GlobalLpPool": "FP32 FP16 INT8",
        "GlobalMaxPool": "FP32 FP16 INT8",
        "Greater": "FP32 FP16 INT32",
        "GreaterOrEqual": "FP32 FP16 INT32",
        "GridSample": "FP32 FP16",
        "HardSigmoid": "FP32 FP16 INT8",
        "HardSwish": "FP32 FP16 INT8",
        "Identity": "FP32 FP16 INT32 INT8 BOOL",
        "If": "FP32 FP16 INT32 BOOL",
        "ImageScaler": "FP32 FP16",
        "InstanceNormalization": "FP32 FP16",
        "IsNaN": "FP32 FP16 INT32",
        "LRN": "FP32 FP16",
        "LSTM": "FP32 FP16",
        "LeakyRelu": "FP32 FP16 INT8",
        "Less": "FP32 FP16 INT32",
        "LessOrEqual": "FP32 FP16 INT32",
        "Log": "FP32 FP16",
        "LogSoftmax": "FP32 FP16",
        "Loop": "FP32 FP16 INT32 BOOL",
        "LpNormalization": "FP32 FP16",
        "LpPool": "FP32 FP16 INT8",
        "MatMul": "FP32 FP16",
        "Max": "FP32 FP16 INT32",
        "MaxPool": "FP32 FP16 INT8",
        "Mean": "FP32 FP16 INT32",
        "MeanVarianceNormalization": "FP32 FP16",
        "Min": "FP32 FP16 INT32",
        "Mod": "FP32 FP16 INT32",
        "Mul": "FP32 FP16 INT32",
        "Neg": "FP32 FP16 INT32",
        "NonMaxSuppression": "FP32 FP16",
        "NonZero": "FP32 FP16",
        "Not": "BOOL",
        "OneHot": "FP32 FP16 INT32 BOOL",
        "Or": "BOOL",
        "PRelu": "FP32 FP16 INT8",
        "Pad": "FP32 FP16 INT8 INT32",
        "ParametricSoftplus": "FP32 FP16 INT8",
        "Pow": "FP32 FP16",
        "QuantizeLinear": "FP32 FP16",
        "RNN": "FP32 FP16",
        "RandomNormal": "FP32 FP16",
        "RandomNormalLike": "FP32 FP16",
        "RandomUniform": "FP32 FP16",
        "RandomUniformLike": "FP32 FP16",
        "Range": "FP32 FP16 INT32",
        "Reciprocal": "FP32 FP16",
        "ReduceL1": "FP32 FP16",
        "ReduceL2": "FP32 FP16",
        "ReduceLogSum": "FP32 FP16",
        "ReduceLogSumExp": "FP32 FP16",
        "ReduceMax": "FP32 FP16",
        "ReduceMean": "FP32 FP16",
        "ReduceMin": "FP32 FP16",
        "ReduceProd": "FP32 FP16",
        "ReduceSum": "FP32 FP16",
        "ReduceSumSquare": "FP32 FP16",
        "Relu": "FP32 FP16 INT8",
        "Reshape": "FP32 FP16 INT32 INT8 BOOL",
        "Resize": "FP32 FP16",
        "ReverseSequence": "FP32 FP16",
        "RoiAlign": "FP32 FP16",
        "Round": "FP32 FP16 INT8",
        "ScaledTanh": "FP32 FP16 INT8",
        "Scan": "FP32 FP16",
        "Scatter": "FP32 FP16 INT8 INT32",
        "ScatterElements": "FP32 FP16 INT8 INT32",
        "ScatterND": "FP32 FP16 INT8 INT32",
        "Selu": "FP32 FP16 INT8",
        "Shape": "FP32 FP16 INT32 INT8 BOOL",
        "Shrink": "FP32 FP16 INT32",
        "Sigmoid": "FP32 FP16 INT8",
        "Sign": "FP32 FP16 INT8 INT32",
        "Sin": "FP32 FP16",
        "Sinh": "FP32 FP16",
        "Size": "FP32 FP16 INT32 INT8 BOOL",
        "Slice": "FP32 FP16 INT32 INT8 BOOL",
        "Softmax": "FP32 FP16",
        "Softplus": "FP32 FP16 INT8",
        "Softsign": "FP32 FP16 INT8",
        "SpaceToDepth": "FP32 FP16 INT32",
        "Split": "FP32 FP16 INT32 BOOL",
        "Sqrt": "FP32 FP16",
        "Squeeze": "FP32 FP16 INT32 INT8 BOOL",
        "Sub": "FP32 FP16 INT32",
        "Sum": "FP32 FP16 INT32",
        "Tan": "FP32 FP16",
        "Tanh": "FP32 FP16 INT8",
        "ThresholdedRelu": "FP32 FP16 INT8",
        "Tile": "FP32 FP16 INT32 BOOL",
        "TopK": "FP32 FP16",
        "Transpose": "FP32 FP16 INT32 INT8 BOOL",
        "Trilu": "FP32 FP16 INT32 INT8 BOOL",
        "Unsqueeze": "FP32 FP16 INT32 INT8 BOOL",
        "Upsample": "FP32 FP16",
        "Where": "FP32 FP16 INT32 BOOL",
        "Xor": "BOOL",
    },
    "10.1": {
        "Abs": "FP32 FP16 BF16 INT32 INT64",
        "Acos": "FP32 FP16 BF16",
        "Acosh": "FP32 FP16 BF16",
        "Add": "FP32 FP16 BF16 INT32 INT64",
        "And": "BOOL",
        "ArgMax": "FP32 FP16 BF16 INT32 INT64",
        "ArgMin": "FP32 FP16 BF16 INT32 INT64",
        "Asin": "FP32 FP16 BF16",
        "Asinh": "FP32 FP16 BF16",
        "Atan": "FP32 FP16 BF16",
        "Atanh": "FP32 FP16 BF16",
        "AveragePool": "FP32 FP16 BF16",
        "BatchNormalization": "FP32 FP16 BF16",
        "Cast": "FP32 FP16 BF16 INT32 INT64 UINT8 BOOL",
        "CastLike": "FP32 FP16 BF16 INT32 INT64 UINT8 BOOL",
        "Ceil": "FP32 FP16 BF16",
        "Celu": "FP32 FP16 BF16",
        "Clip": "FP32 FP16 BF16",
        "Concat": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "Constant": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "ConstantOfShape": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "Conv": "FP32 FP16 BF16",
        "ConvTranspose": "FP32 FP16 BF16",
        "Cos": "FP32 FP16 BF16",
        "Cosh": "FP32 FP16 BF16",
        "CumSum": "FP32 FP16 BF16",
        "DeformConv": "FP32 FP16",
        "DepthToSpace": "FP32 FP16 BF16 INT32 INT64",
        "DequantizeLinear": "INT8 FP8 INT4",
        "Div": "FP32 FP16 BF16 INT32 INT64",
        "Dropout": "FP32 FP16 BF16",
        "Einsum": "FP32 FP16 BF16",
        "Elu": "FP32 FP16 BF16",
        "Equal": "FP32 FP16 BF16 INT32 INT64",
        "Erf": "FP32 FP16 BF16",
        "Exp": "FP32 FP16 BF16",
        "Expand": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "EyeLike": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "Flatten": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "Floor": "FP32 FP16 BF16",
        "GRU": "FP32 FP16 BF16",
        "Gather": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "GatherElements": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "GatherND": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "Gelu": "FP32 FP16 BF16 INT8 INT32 INT64",
        "Gemm": "FP32 FP16 BF16",
        "GlobalAveragePool": "FP32 FP16 BF16",
        "GlobalLpPool": "FP32 FP16 BF16",
        "GlobalMaxPool": "FP32 FP16 BF16",
        "Greater": "FP32 FP16 BF16 INT32 INT64",
        "GreaterOrEqual": "FP32 FP16 BF16 INT32 INT64",
        "GridSample": "FP32 FP16",
        "GroupNormalization": "FP32 FP16 BF16",
        "HardSigmoid": "FP32 FP16 BF16",
        "HardSwish": "FP32 FP16 BF16",
        "Hardmax": "FP32 FP16 BF16",
        "Identity": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "If": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "ImageScaler": "FP32 FP16 BF16",
        "InstanceNormalization": "FP32 FP16 BF16",
        "IsInf": "FP32 FP16 BF16",
        "IsNaN": "FP32 FP16 BF16 INT32 INT64",
        "LRN": "FP32 FP16 BF16",
        "LSTM": "FP32 FP16 BF16",
        "LayerNormalization": "FP32 FP16 BF16",
        "LeakyRelu": "FP32 FP16 BF16",
        "Less": "FP32 FP16 BF16 INT32 INT64",
        "LessOrEqual": "FP32 FP16 BF16 INT32 INT64",
        "Log": "FP32 FP16 BF16",
        "LogSoftmax": "FP32 FP16 BF16",
        "Loop": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "LpNormalization": "FP32 FP16 BF16",
        "LpPool": "FP32 FP16 BF16",
        "MatMul": "FP32 FP16 BF16",
        "Max": "FP32 FP16 BF16 INT32 INT64",
        "MaxPool": "FP32 FP16 BF16",
        "Mean": "FP32 FP16 BF16 FP8 INT32 INT64",
        "MeanVarianceNormalization": "FP32 FP16 BF16",
        "Min": "FP32 FP16 BF16 INT32 INT64",
        "Mish": "FP32 FP16",
        "Mod": "FP32 FP16 BF16 INT32 INT64",
        "Mul": "FP32 FP16 BF16 INT32 INT64",
        "Neg": "FP32 FP16 BF16 INT32 INT64",
        "NonMaxSuppression": "FP32 FP16",
        "NonZero": "FP32 FP16",
        "Not": "BOOL",
        "OneHot": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "Or": "BOOL",
        "PRelu": "FP32 FP16 BF16",
        "Pad": "FP32 FP16 BF16 INT32 INT64",
        "ParametricSoftplus": "FP32 FP16 BF16",
        "Pow": "FP32 FP16 BF16",
        "QuantizeLinear": "FP32 FP16 BF16",
        "RNN": "FP32 FP16 BF16",
        "RandomNormal": "FP32 FP16 BF16",
        "RandomNormalLike": "FP32 FP16 BF16",
        "RandomUniform": "FP32 FP16 BF16",
        "RandomUniformLike": "FP32 FP16 BF16",
        "Range": "FP32 FP16 BF16 INT32 INT64",
        "Reciprocal": "FP32 FP16 BF16",
        "ReduceL1": "FP32 FP16 BF16 INT32 INT64",
        "ReduceL2": "FP32 FP16 BF16 INT32 INT64",
        "ReduceLogSum": "FP32 FP16 BF16 INT32 INT64",
        "ReduceLogSumExp": "FP32 FP16 BF16 INT32 INT64",
        "ReduceMax": "FP32 FP16 BF16 INT32 INT64",
        "ReduceMean": "FP32 FP16 BF16 INT32 INT64",
        "ReduceMin": "FP32 FP16 BF16 INT32 INT64",
        "ReduceProd": "FP32 FP16 BF16 INT32 INT64",
        "ReduceSum": "FP32 FP16 BF16 INT32 INT64",
        "ReduceSumSquare": "FP32 FP16 BF16 INT32 INT64",
        "Relu": "FP32 FP16 BF16 INT32 INT64",
        "Reshape": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "Resize": "FP32 FP16 BF16",
        "ReverseSequence": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "RoiAlign": "FP32 FP16",
        "Round": "FP32 FP16 BF16",
        "ScaledTanh": "FP32 FP16 BF16",
        "Scan": "FP32 FP16 BF16",
        "Scatter": "FP32 FP16 BF16 INT32 INT64",
        "ScatterElements": "FP32 FP16 BF16 INT32 INT64",
        "ScatterND": "FP32 FP16 BF16 INT32 INT64",
        "Selu": "FP32 FP16 BF16",
        "Shape": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "Shrink": "FP32 FP16 BF16 INT32 INT64",
        "Sigmoid": "FP32 FP16 BF16",
        "Sign": "FP32 FP16 BF16 INT32 INT64",
        "Sin": "FP32 FP16 BF16",
        "Sinh": "FP32 FP16 BF16",
        "Size": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "Slice": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "Softmax": "FP32 FP16 BF16",
        "Softplus": "FP32 FP16 BF16",
        "Softsign": "FP32 FP16 BF16",
        "SpaceToDepth": "FP32 FP16 BF16 INT32 INT64",
        "Split": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "Sqrt": "FP32 FP16 BF16",
        "Squeeze": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "Sub": "FP32 FP16 BF16 INT32 INT64",
        "Sum": "FP32 FP16 BF16 INT32 INT64",
        "Tan": "FP32 FP16 BF16",
        "Tanh": "FP32 FP16 BF16",
        "ThresholdedRelu": "FP32 FP16 BF16",
        "Tile": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "TopK": "FP32 FP16 BF16 INT32 INT64",
        "Transpose": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "Trilu": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "Unsqueeze": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "Upsample": "FP32 FP16 BF16",
        "Where": "FP32 FP16 BF16 INT32 INT64 BOOL",
        "Xor": "BOOL",
    },
}

#: ops the table explicitly marks "N".
_UNSUPPORTED: dict[str, frozenset[str]] = {
    "8.5": frozenset(
        [
            "Bernoulli",
            "BitShift",
            "BlackmanWindow",
            "Compress",
            "ConcatFromSequence",
            "ConvInteger",
            "DFT",
            "Det",
            "DynamicQuantizeLinear",
            "HammingWindow",
            "HannWindow",
            "Hardmax",
            "IsInf",
            "LayerNormalization",
            "MatMulInteger",
            "MaxRoiPool",
            "MaxUnpool",
            "MelWeightMatrix",
            "Multinomial",
            "NegativeLogLikelihoodLoss",
            "Optional",
            "OptionalGetElement",
            "OptionalHasElement",
            "QLinearConv",
            "QLinearMatMul",
            "STFT",
            "SequenceAt",
            "SequenceConstruct",
            "SequenceEmpty",
            "SequenceErase",
            "SequenceInsert",
            "SequenceLength",
            "SequenceMap",
            "SoftmaxCrossEntropyLoss",
            "SplitToSequence",
            "StringNormalizer",
            "TfIdfVectorizer",
            "Unique",
        ]
    ),
    "10.1": frozenset(
        [
            "AffineGrid",
            "Bernoulli",
            "BitShift",
            "BitwiseAnd",
            "BitwiseNot",
            "BitwiseOr",
            "BitwiseXor",
            "BlackmanWindow",
            "CenterCropPad",
            "Col2Im",
            "Compress",
            "ConcatFromSequence",
            "ConvInteger",
            "DFT",
            "Det",
            "DynamicQuantizeLinear",
            "HammingWindow",
            "HannWindow",
            "ImageDecoder",
            "MatMulInteger",
            "MaxRoiPool",
            "MaxUnpool",
            "MelWeightMatrix",
            "Multinomial",
            "NegativeLogLikelihoodLoss",
            "Optional",
            "OptionalGetElement",
            "OptionalHasElement",
            "QLinearConv",
            "QLinearMatMul",
            "RegexFullMatch",
            "STFT",
            "SequenceAt",
            "SequenceConstruct",
            "SequenceEmpty",
            "SequenceErase",
            "SequenceInsert",
            "SequenceLength",
            "SequenceMap",
            "SoftmaxCrossEntropyLoss",
            "SplitToSequence",
            "StringConcat",
            "StringNormalizer",
            "StringSplit",
            "TfIdfVectorizer",
            "Unique",
        ]
    ),
}

#: TensorRT 8.6's parser: 8.5's table plus these ops / wider types (``docs/operators.md`` at
#: ``release/8.6-GA``); the ops it adds leave 8.5's "N" list.
CHANGES_8_6: dict[str, str] = {
    "ArgMax": "FP32 FP16 INT32",
    "ArgMin": "FP32 FP16 INT32",
    "Cast": "FP32 FP16 INT32 INT8 UINT8 BOOL",
    "GroupNormalization": "FP32 FP16",
    "IsInf": "FP32 FP16",
    "LayerNormalization": "FP32 FP16",
    "ReverseSequence": "FP32 FP16 INT32 INT8 BOOL",
    "TopK": "FP32 FP16 INT32",
}
_TABLES["8.6"] = dict(sorted({**_TABLES["8.5"], **CHANGES_8_6}.items()))
_UNSUPPORTED["8.6"] = _UNSUPPORTED["8.5"] - frozenset(CHANGES_8_6)

#: Parser changes after 10.1 from TensorRT's CHANGELOG (version → ops added as supported).
CHANGES: dict[str, dict[str, str]] = {
    "10.4": {
        "BlackmanWindow": "FP32 FP16 BF16",
        "HammingWindow": "FP32 FP16 BF16",
        "HannWindow": "FP32 FP16 BF16",
    },
    "10.5": {"STFT": "FP32 FP16"},
    "10.14": {"Attention": "FP32 FP16 BF16"},
    "10.15": {
        "RotaryEmbedding": "FP32 FP16 BF16",
        "RMSNormalization": "FP32 FP16 BF16",
        "TensorScatter": "FP32 FP16 BF16",
    },
    "11.0": {"Swish": "FP32 FP16 BF16"},
}

#: The versions the doctor knows (JetPack 5.1 = 8.5, 6.0 = 8.6, 6.1/6.2 = 10.3, 7 = 10.13+, and 11).
KNOWN = ("8.5", "8.6", "10.3", "10.13", "11")
OPSET_MAX = {"8.5": 17, "8.6": 17, "10.3": 20, "10.13": 22, "11": 22}
OPSET_MAX_NOTE = {"10.13": "assumed (ONNX 1.17 submodule since 10.6)", "11": "assumed"}

_VERSION_KEY = {
    "8.5": (8, 5),
    "8.6": (8, 6),
    "10.1": (10, 1),
    "10.3": (10, 3),
    "10.13": (10, 13),
    "11": (11, 0),
}


def _vt(version: str) -> tuple[int, int]:
    """``"10.3.0.30"`` → ``(10, 3)``, ``"11"`` → ``(11, 0)`` (:func:`~.flags.parse_version` raises on garbage)."""
    major, minor = (*parse_version(version), 0)[:2]
    return major, minor


def nearest_known(version: str) -> str:
    """Map any TensorRT version (``"10.3.0.30"``) to the closest table at or below it."""
    v = _vt(version)
    best = "8.5"
    for key in KNOWN:
        if _VERSION_KEY[key] <= v:
            best = key
    return best


def supported_ops(version: str) -> dict[str, str]:
    """op → supported types for a known version (see :data:`KNOWN`)."""
    key = nearest_known(version)
    if key in ("8.5", "8.6"):
        return dict(_TABLES[key])
    table = dict(_TABLES["10.1"])
    for changed, ops in CHANGES.items():
        if _vt(changed) <= _VERSION_KEY[key]:
            table.update(ops)
    return table


def unsupported_ops(version: str) -> frozenset[str]:
    key = nearest_known(version)
    base = _UNSUPPORTED["8.5" if key == "8.5" else "8.6" if key == "8.6" else "10.1"]
    return frozenset(base - set(supported_ops(version)))


@dataclass(frozen=True)
class OpIssue:
    severity: str  #: "error" (will not import / computes wrong), "warning", "info"
    op: str
    where: str  #: node name or "model"
    message: str
    fix: str = ""


_REDUCE_AXES_INPUT = {
    "ReduceMin",
    "ReduceMax",
    "ReduceMean",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
}
#: Importers that reject a UINT8 first input (parser sources of 8.5-GA and 10.1-GA agree).
_UINT8_REJECTED = {
    "Clip",
    "Concat",
    "DepthToSpace",
    "Einsum",
    "Expand",
    "EyeLike",
    "Gather",
    "GatherElements",
    "GatherND",
    "Hardmax",
    "Mod",
    "OneHot",
    "Pad",
    "Resize",
    "ReverseSequence",
    "GridSample",
    "Slice",
    "SpaceToDepth",
    "Split",
    "Tile",
    "TopK",
    "Trilu",
    "Upsample",
}
_RESIZE_COORD = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
_AXES_CONSTANT = {"Slice": 3, "Squeeze": 1, "Unsqueeze": 1, "CumSum": 1, "Pad": 3}


def _attr(node, name, default=None):
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def check_model(model, trt_version: str, plugin_available: bool | None = None) -> list[OpIssue]:
    """Static check of ``model`` (an ``onnx.ModelProto``) against a TensorRT version's ONNX parser.

    Walks the main graph and the bodies of local functions. ``plugin_available``: whether
    ``libhdm_deploy_plugins.so`` was found (``None``: unknown → info only).
    """
    import onnx

    key = nearest_known(trt_version)
    vt = _VERSION_KEY[key]
    table = supported_ops(key)
    issues: list[OpIssue] = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    functions = {(f.domain, f.name): f for f in model.functions}

    if opset > OPSET_MAX[key]:
        sev = "error" if vt < (10, 0) else "warning"
        issues.append(
            OpIssue(
                sev,
                "opset",
                "model",
                f"opset {opset} > {OPSET_MAX[key]}, the newest TensorRT {key}'s parser knows"
                + (f" ({OPSET_MAX_NOTE[key]})" if key in OPSET_MAX_NOTE else ""),
                f"re-export with --opset {OPSET_MAX[key]}",
            )
        )

    # constants: initializers and Constant outputs, per scope
    def constant_names(nodes, inits) -> set[str]:
        names = {i.name for i in inits}
        names |= {o for n in nodes if n.op_type == "Constant" for o in n.output}
        return names

    uint8_tensors: set[str] = set()
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
        for vi in [*inferred.graph.input, *inferred.graph.value_info]:
            if vi.type.tensor_type.elem_type == onnx.TensorProto.UINT8:
                uint8_tensors.add(vi.name)
    except Exception:
        uint8_tensors |= {
            i.name for i in model.graph.input if i.type.tensor_type.elem_type == onnx.TensorProto.UINT8
        }

    def check_nodes(nodes, consts: set[str], scope: str, u8: set[str]) -> None:
        for node in nodes:
            where = f"{scope}{node.name or node.op_type}"
            ident = (node.domain, node.op_type)
            if ident in functions:
                if vt < (9, 0):
                    issues.append(
                        OpIssue(
                            "error",
                            f"{node.domain}::{node.op_type}",
                            where,
                            f"ONNX local functions need TensorRT ≥ 9 (this is {key})",
                            "re-export with --inline-functions",
                        )
                    )
                else:
                    issues.append(
                        OpIssue(
                            "info",
                            f"{node.domain}::{node.op_type}",
                            where,
                            "local function, imported by TensorRT ≥ 9",
                        )
                    )
                f = functions[ident]
                inner_u8 = {fi for fi, ci in zip(f.input, node.input, strict=False) if ci in u8}
                check_nodes(f.node, constant_names(f.node, []), f"{node.op_type}/", inner_u8)
                continue
            if node.domain == "hdm_deploy" and node.op_type == "HdmDeformConv":
                if plugin_available is False:
                    issues.append(
                        OpIssue(
                            "error",
                            "HdmDeformConv",
                            where,
                            "needs libhdm_deploy_plugins.so, which was not found",
                            "build it with `hdm-deploy build-plugin` or pass --plugin-lib",
                        )
                    )
                else:
                    issues.append(
                        OpIssue(
                            "info",
                            "HdmDeformConv",
                            where,
                            "our plugin ("
                            + ("IPluginV2DynamicExt" if vt < (10, 0) else "IPluginV3")
                            + "), loaded from libhdm_deploy_plugins.so",
                        )
                    )
                continue
            if node.domain not in ("", "ai.onnx"):
                issues.append(
                    OpIssue(
                        "error",
                        f"{node.domain}::{node.op_type}",
                        where,
                        "custom-domain op: TensorRT imports it only through a registered plugin of that name",
                        "provide a plugin or rewrite it with standard ops",
                    )
                )
                continue
            op = node.op_type
            if op == "DeformConv":
                if vt < (10, 1):
                    issues.append(
                        OpIssue(
                            "error",
                            op,
                            where,
                            f"standard DeformConv is imported from TensorRT 10.1 on (this is {key})",
                            "re-export with --deform plugin (our plugin) or --deform decompose",
                        )
                    )
                    continue
                pads = list(_attr(node, "pads", []) or [])
                if pads and pads[: len(pads) // 2] != pads[len(pads) // 2 :]:
                    issues.append(
                        OpIssue(
                            "error",
                            op,
                            where,
                            "DeformConv pads must be symmetric for TensorRT",
                            "pad explicitly before it",
                        )
                    )
                issues.append(
                    OpIssue(
                        "warning",
                        op,
                        where,
                        "TensorRT maps DeformConv to its ModulatedDeformConv2d plugin: coordinates in the tensor type "
                        "(FP16 snaps them at ≥ 512 px) and an im2col workspace of C·9·H·W elements",
                        "prefer --deform plugin on GPUs; keep DeformConv in an FP32 island for FP16",
                    )
                )
                continue
            if op not in table:
                unsup = op in unsupported_ops(key)
                issues.append(
                    OpIssue(
                        "error",
                        op,
                        where,
                        f"{op} is {'not supported' if unsup else 'not listed'} by TensorRT {key}'s ONNX parser",
                        "re-export without it (decompose) or upgrade TensorRT",
                    )
                )
                continue
            # ---- caveats ----
            if vt < (10, 0) and op in _REDUCE_AXES_INPUT and len(node.input) >= 2 and node.input[1]:
                issues.append(
                    OpIssue(
                        "error",
                        op,
                        where,
                        f"TensorRT {key} ignores the opset-18 `axes` input of {op} and reduces over all axes (silently wrong)",
                        "re-export with --opset 17 (axes as attribute)",
                    )
                )
            if (
                vt >= (10, 0)
                and op in _REDUCE_AXES_INPUT | {"ReduceSum"}
                and len(node.input) >= 2
                and node.input[1]
                and node.input[1] not in consts
            ):
                issues.append(
                    OpIssue(
                        "error",
                        op,
                        where,
                        f"{op}: `axes` must be an initializer/constant",
                        "make the axes constant",
                    )
                )
            if op in _AXES_CONSTANT:
                idx = _AXES_CONSTANT[op]
                dynamic_ok = (
                    (op == "Slice" and vt >= (10, 3))
                    or (op == "Pad" and vt >= (10, 4))
                    or (op == "CumSum" and vt >= (10, 8))
                    or (op in ("Squeeze", "Unsqueeze") and vt >= (10, 7))
                )
                if (
                    len(node.input) > idx
                    and node.input[idx]
                    and node.input[idx] not in consts
                    and not dynamic_ok
                ):
                    issues.append(
                        OpIssue(
                            "error",
                            op,
                            where,
                            f"{op}: the axes/axis input must be an initializer for TensorRT {key}",
                            "constant-fold the graph (onnxscript optimizer) or make it constant",
                        )
                    )
            if op == "TopK":
                k_in = node.input[1] if len(node.input) > 1 else ""
                if vt < (10, 0) and k_in not in consts:
                    issues.append(
                        OpIssue("error", op, where, "TopK: K must be an initializer", "make K constant")
                    )
                if _attr(node, "sorted", 1) != 1 and vt >= (10, 0):
                    issues.append(OpIssue("error", op, where, "TopK: sorted must be 1"))
                issues.append(
                    OpIssue("info", op, where, "TopK: K must be < 3840 in TensorRT (checked at build time)")
                )
            if op == "Resize":
                mode = _attr(node, "mode", b"nearest")
                mode = mode.decode() if isinstance(mode, bytes) else mode
                ctm = _attr(node, "coordinate_transformation_mode", b"half_pixel")
                ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
                if mode not in ("nearest", "linear") and not (mode == "cubic" and vt >= (10, 0)):
                    issues.append(
                        OpIssue(
                            "error",
                            op,
                            where,
                            f"Resize mode {mode!r} is not supported by TensorRT {key}",
                            "use linear or nearest",
                        )
                    )
                if ctm not in _RESIZE_COORD:
                    issues.append(
                        OpIssue(
                            "error",
                            op,
                            where,
                            f"Resize coordinate_transformation_mode {ctm!r} is not supported",
                        )
                    )
                if _attr(node, "antialias", 0):
                    issues.append(
                        OpIssue(
                            "error",
                            op,
                            where,
                            "Resize antialias is not supported (TensorRT ignores or rejects it)",
                            "low-pass filter explicitly (Conv) before a plain Resize",
                        )
                    )
            if op == "ScatterND" and _attr(node, "reduction", b"none") not in (b"none", "none"):
                issues.append(OpIssue("error", op, where, "ScatterND reduction is not supported"))
            if op == "Pad":
                mode = _attr(node, "mode", b"constant")
                mode = mode.decode() if isinstance(mode, bytes) else mode
                if mode == "wrap" and vt < (10, 0):
                    issues.append(OpIssue("error", op, where, "Pad mode 'wrap' needs TensorRT ≥ 10"))
            # UINT8 only as network I/O, through Cast to/from FP32/FP16.
            if any(i in u8 for i in node.input):
                to = _attr(node, "to")
                if op != "Cast" or to not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16):
                    rejected = op in _UINT8_REJECTED
                    issues.append(
                        OpIssue(
                            "error" if rejected else "warning",
                            op,
                            where,
                            f"a UINT8 tensor feeds {op}: "
                            + (
                                "the parser rejects UINT8 here"
                                if rejected
                                else "TensorRT documents UINT8 only as network I/O converted by a Cast"
                            ),
                            "Cast the uint8 input to float first, then Transpose/Pad",
                        )
                    )
            if op == "Cast" and _attr(node, "to") == onnx.TensorProto.UINT8 and vt < (10, 0):
                issues.append(
                    OpIssue(
                        "info", op, where, "Cast to UINT8 is imported only from FP32/FP16 in TensorRT 8.x"
                    )
                )

    check_nodes(
        model.graph.node, constant_names(model.graph.node, model.graph.initializer), "", uint8_tensors
    )
    return issues


def summarize(issues: list[OpIssue]) -> dict[str, int]:
    out = {"error": 0, "warning": 0, "info": 0}
    for i in issues:
        out[i.severity] = out.get(i.severity, 0) + 1
    return out
