"""Depth models: the catalogue, weights on disk, and the ONNX Runtime / PyTorch backends."""
