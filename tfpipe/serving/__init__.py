"""Serving: a server speaking TensorFlow Serving's gRPC and REST APIs over SavedModels, and a client for both."""
