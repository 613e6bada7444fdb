"""The scoring step: ONNX models over profiles (manifest, features, drift)."""
