"""Warm-up replay: the PredictionLog records in a version's assets.extra/tf_serving_warmup_requests run once (or
`iterations` times) against the freshly loaded servable before it serves, as TF Serving does."""

from __future__ import annotations

import logging
import time

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tfpipe.export.layout import WARMUP_PATH
from tfpipe.serving import inference
from tfpipe.serving.errors import invalid_argument
from tfpipe.serving.servable import Servable

log = logging.getLogger(__name__)

MAX_RECORDS = 1000  # TF Serving's kMaxNumRecords


def _replay(servable: Servable, record: prediction_log_pb2.PredictionLog) -> None:
    kind = record.WhichOneof("log_type")
    if kind == "predict_log":
        inference.predict_on(servable, record.predict_log.request)
    elif kind == "classify_log":
        inference.classify_on(servable, record.classify_log.request)
    elif kind == "regress_log":
        inference.regress_on(servable, record.regress_log.request)
    elif kind == "multi_inference_log":
        for task in record.multi_inference_log.request.tasks:
            inference.run_task_on(servable, task, record.multi_inference_log.request.input)
    else:
        raise invalid_argument(f"Unsupported log_type for warmup: {kind}")


def replay_warmup(servable: Servable, iterations: int = 1) -> int:
    """Replays the warm-up file if present; returns the number of records read (also on `servable.warmup_records`).

    A record that fails fails the load, as in TF Serving.
    """
    path = servable.path / WARMUP_PATH
    if not path.is_file():
        return 0
    start = time.monotonic()
    count = 0
    for raw in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        count += 1
        if count > MAX_RECORDS:
            raise invalid_argument(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
        record = prediction_log_pb2.PredictionLog.FromString(raw)
        for _ in range(max(1, iterations)):
            _replay(servable, record)
    servable.warmup_records = count
    log.info("Finished reading warmup data for model at %s. Number of warmup records read: %d. Elapsed time "
             "(microseconds): %d.", path, count, int((time.monotonic() - start) * 1e6))
    return count
