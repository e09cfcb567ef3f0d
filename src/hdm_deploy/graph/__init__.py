"""Torch-free ONNX graph work: loading/saving, metadata, DeformConv flavours, opset lowering,
precision policy and the golden-bundle format."""
