"""Conversion of a raw-text export's encoder to ONNX, OpenVINO, TensorRT and TF-TRT, each verified against the
SavedModel before it is kept, and the Triton model repository around them (`api.convert_export` is the entry)."""
