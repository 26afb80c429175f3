"""Export: versioned raw-text SavedModels for TensorFlow Serving, and the check that reloads and compares them."""
