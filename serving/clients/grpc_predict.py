"""Classify texts with a tfpipe export on TensorFlow Serving (or `tfpipe serve`) over gRPC.

Needs `pip install tensorflow tensorflow-serving-api`. Usage:
    python grpc_predict.py localhost:8500 sst2 "a gripping film" "dull and far too long"
"""

import sys

import grpc
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

target, model, texts = sys.argv[1], sys.argv[2], sys.argv[3:]
stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
request = predict_pb2.PredictRequest()
request.model_spec.name = model
request.model_spec.signature_name = "serving_default"
request.inputs["text"].CopyFrom(tf.make_tensor_proto(texts, dtype=tf.string))
try:
    response = stub.Predict(request, timeout=10.0)
except grpc.RpcError as error:
    sys.exit(f"{error.code().name}: {error.details()}")
labels = tf.make_ndarray(response.outputs["labels"])
probabilities = tf.make_ndarray(response.outputs["probabilities"])
for text, label, scores in zip(texts, labels, probabilities):
    print(f"{label.decode()}\t{scores.max():.3f}\t{text}")
