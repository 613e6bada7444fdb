"""Beacon's models: training code (`beacon train`), ONNX files and their manifests."""
