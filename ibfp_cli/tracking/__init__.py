"""The tracking engine: the tracker contract, the registry of trackers by name, the IBFP
tracker (crops, weights, PyTorch and ONNX Runtime backends) and OpenCV's trackers."""
