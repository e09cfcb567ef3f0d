"""HDM's dark-channel-prior region masks: reference (numpy/OpenCV), torch and ONNX implementations."""
