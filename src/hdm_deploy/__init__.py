"""hdm-deploy: run HDM image enhancement on ONNX Runtime and TensorRT with parity to PyTorch."""

__version__ = "0.1.0"
