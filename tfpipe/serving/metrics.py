"""TF Serving's monitoring metrics (same names, labels, units and buckets), exposed with `prometheus-client`.

`tensorflow_model_server` exports TensorFlow's monitoring registry at `/monitoring/prometheus/metrics`; names like
`/tensorflow/serving/request_count` become `:tensorflow:serving:request_count`. Latencies are in microseconds.
Each `Metrics` has its own `CollectorRegistry` (not prometheus-client's global one), so servers in one process
keep separate counts; `generate_latest` writes the text.
"""

from __future__ import annotations

import bisect
import re
import threading
from dataclasses import dataclass, field
from typing import Iterator

import grpc
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

PROMETHEUS_PATH = "/monitoring/prometheus/metrics"  # PrometheusExporter::kPrometheusPath
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the text format generate_latest writes, as TF Serving


def exponential_buckets(scale: float, growth: float, count: int) -> list[float]:
    """monitoring::Buckets::Exponential: `count` upper limits scale·growth^i (a final +Inf bucket is implied)."""
    return [scale * growth ** i for i in range(count)]


_LATENCY_BUCKETS = exponential_buckets(10, 1.8, 33)  # "Scale of 10, power of 1.8 with bucket count 33 (~20 minutes)"


@dataclass
class _Family:
    name: str  # TF's metric name, e.g. /tensorflow/serving/request_count
    help: str
    kind: str  # counter | histogram
    labels: tuple[str, ...]
    buckets: list[float] = field(default_factory=list)
    # label values → counter value, or [per-bucket counts (last = +Inf), sum]
    cells: dict[tuple[str, ...], object] = field(default_factory=dict)


def _family_specs() -> list[_Family]:
    return [
        _Family("/tensorflow/serving/request_count", "The total number of requests.", "counter",
                ("model_name", "status")),
        _Family("/tensorflow/serving/request_latency",
                "Distribution of wall time (in microseconds) for Tensorflow Serving request.", "histogram",
                ("model_name", "API", "entrypoint"), _LATENCY_BUCKETS),
        _Family("/tensorflow/serving/runtime_latency",
                "Distribution of wall time (in microseconds) for Tensorflow runtime.", "histogram",
                ("model_name", "API", "runtime"), _LATENCY_BUCKETS),
        _Family("/tensorflow/serving/request_example_counts", "The number of tensorflow.Examples per request.",
                "histogram", ("model",), exponential_buckets(1, 2, 15)),
        _Family("/tensorflow/serving/request_example_count_total", "The total number of tensorflow.Examples.",
                "counter", ("model",)),
        _Family("/tensorflow/serving/model_warmup_latency",
                "Distribution of wall time (in microseconds) for warming up the model.", "histogram",
                ("model_path", "status"), _LATENCY_BUCKETS),
        # BatchingSession's (batching_session.cc): model runs, and each task's time queued before its batch ran.
        _Family("/tensorflow/serving/batching_session/wrapped_run_count",
                "Total count of run calls on the wrapped session", "counter", ()),
        _Family("/tensorflow/serving/batching_session/queuing_latency",
                "Distribution of wall time spent (in microseconds) in queuing", "histogram", ("thread_pool_name",),
                exponential_buckets(100, 1.2, 52)),
        _Family("/tensorflow/cc/saved_model/load_attempt_count",
                "The number of times a SavedModel was successfully loaded.", "counter", ("model_path", "status")),
        _Family("/tensorflow/cc/saved_model/load_latency",
                "Latency in microseconds for SavedModels that were successfully loaded.", "counter",
                ("model_path",)),
    ]


def prometheus_name(name: str) -> str:
    """TF Serving's GetPrometheusMetricName: every character outside [a-zA-Z0-9_] becomes ':'."""
    name = re.sub(r"[^a-zA-Z0-9_]", ":", name)
    return "_" + name if name[:1].isdigit() else name


def _status_name(status: grpc.StatusCode | str) -> str:
    return status.name if isinstance(status, grpc.StatusCode) else str(status)


def _g(value: float) -> str:
    """absl::StrCat of a double (six significant digits), as TF Serving's exporter prints bucket limits."""
    return f"{value:.6g}"


class _Collector(Collector):
    """Hands one `Metrics`' current values to its registry at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics.families())


class Metrics:
    """Thread-safe registry of TF Serving's serving and SavedModel-loading metrics.

    Label values follow TF Serving: `api` is "Predict", "Classify", "Regress", "MultiInference" or
    "GetModelMetadata"; `entrypoint` "GRPC" or "REST"; `status` a gRPC code name such as "OK" (or a
    grpc.StatusCode); load status "success" or "fail".

    Examples:
    >>> metrics = Metrics()
    >>> metrics.record_request("default", "Predict", "GRPC", grpc.StatusCode.OK, 0.002)
    >>> metrics.value("/tensorflow/serving/request_count", model_name="default", status="OK")
    1
    >>> ':tensorflow:serving:request_count{model_name="default",status="OK"} 1.0' in metrics.render()
    True
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families = {family.name: family for family in _family_specs()}
        self._counter_names = [prometheus_name(f.name) for f in self._families.values() if f.kind == "counter"]
        # This server's own registry: the global REGISTRY would mix the counts of every server in the process.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    # ---- recording ----------------------------------------------------------------------------------------------
    def record_request(self, model_name: str, api: str, entrypoint: str, status: grpc.StatusCode | str,
                       latency_s: float) -> None:
        """One finished request: request_count{model_name,status} and request_latency{model_name,API,entrypoint}."""
        with self._lock:
            self._add("/tensorflow/serving/request_count", (model_name, _status_name(status)), 1)
            self._observe("/tensorflow/serving/request_latency", (model_name, api, entrypoint), latency_s * 1e6)

    def record_runtime(self, model_name: str, api: str, runtime: str, latency_s: float) -> None:
        """Time spent in the model itself (TF Serving's runtime label is e.g. "TF1" or "TFRT")."""
        with self._lock:
            self._observe("/tensorflow/serving/runtime_latency", (model_name, api, runtime), latency_s * 1e6)

    def record_examples(self, model_name: str, count: int) -> None:
        """tf.Examples in one Classify/Regress/MultiInference request."""
        with self._lock:
            self._observe("/tensorflow/serving/request_example_counts", (model_name,), count)
            self._add("/tensorflow/serving/request_example_count_total", (model_name,), count)

    def record_batch(self, thread_pool_name: str, queued_s: list[float]) -> None:
        """One batch about to run: wrapped_run_count, and queuing_latency for each of its tasks."""
        with self._lock:
            self._add("/tensorflow/serving/batching_session/wrapped_run_count", (), 1)
            for seconds in queued_s:
                self._observe("/tensorflow/serving/batching_session/queuing_latency", (thread_pool_name,),
                              seconds * 1e6)

    def record_load(self, model_path: str, ok: bool, latency_s: float) -> None:
        """One SavedModel load attempt; latency is counted for successful loads only (as TensorFlow does)."""
        with self._lock:
            self._add("/tensorflow/cc/saved_model/load_attempt_count", (model_path, "success" if ok else "fail"), 1)
            if ok:
                self._add("/tensorflow/cc/saved_model/load_latency", (model_path,), int(latency_s * 1e6))

    def record_warmup(self, model_path: str, status: grpc.StatusCode | str, latency_s: float) -> None:
        """Replaying assets.extra/tf_serving_warmup_requests for one model version."""
        with self._lock:
            self._observe("/tensorflow/serving/model_warmup_latency", (model_path, _status_name(status)),
                          latency_s * 1e6)

    def _add(self, name: str, labels: tuple[str, ...], amount: int) -> None:
        cells = self._families[name].cells
        cells[labels] = cells.get(labels, 0) + amount

    def _observe(self, name: str, labels: tuple[str, ...], value: float) -> None:
        family = self._families[name]
        cell = family.cells.get(labels)
        if cell is None:
            cell = family.cells[labels] = [[0] * (len(family.buckets) + 1), 0.0]
        # TF's histogram buckets are [limit[i-1], limit[i]): a value equal to a limit goes to the next bucket.
        cell[0][bisect.bisect_right(family.buckets, value)] += 1
        cell[1] += value

    # ---- reading ------------------------------------------------------------------------------------------------
    def value(self, name: str, **labels: str) -> float:
        """A counter's value, or a histogram's observation count, for one label set (0 if never recorded)."""
        with self._lock:
            family = self._families[name]
            key = tuple(str(labels[label]) for label in family.labels)
            cell = family.cells.get(key)
            if cell is None:
                return 0
            return sum(cell[0]) if family.kind == "histogram" else cell

    def families(self) -> list[Metric]:
        """prometheus-client metric families of everything recorded so far (families without data are left out,
        as TF Serving's exporter leaves them out)."""
        found: list[Metric] = []
        with self._lock:
            for name in sorted(self._families):
                family = self._families[name]
                if not family.cells:
                    continue
                metric, label_names = prometheus_name(name), [re.sub(r"[^a-zA-Z0-9]", "_", n) for n in family.labels]
                if family.kind == "counter":
                    # Not CounterMetricFamily: it names samples NAME_total, and TF Serving's counters keep NAME.
                    exported = Metric(metric, family.help, "counter")
                    for values in sorted(family.cells):
                        exported.add_sample(metric, dict(zip(label_names, values, strict=True)), family.cells[values])
                else:
                    exported = HistogramMetricFamily(metric, family.help, labels=label_names)
                    for values in sorted(family.cells):
                        counts, total = family.cells[values]
                        cumulative = [sum(counts[: i + 1]) for i in range(len(counts))]
                        limits = [_g(limit) for limit in family.buckets] + ["+Inf"]
                        exported.add_metric(list(values), list(zip(limits, cumulative)), total)
                found.append(exported)
        return found

    def render(self) -> str:
        """All metrics that have data, in Prometheus text exposition format 0.0.4 (as TF Serving's exporter)."""
        text = generate_latest(self.registry).decode("utf-8")
        for name in self._counter_names:
            # generate_latest names a counter family NAME_total in HELP/TYPE (the OpenMetrics convention); TF
            # Serving's family is NAME, the samples' own name, so a scraper files the samples under their TYPE.
            text = text.replace(f"# HELP {name}_total ", f"# HELP {name} ").replace(
                f"# TYPE {name}_total counter", f"# TYPE {name} counter")
        return text or "\n"  # an empty page is still a text page
