"""Metrics: TF Serving's metric names and exposition format, parsed back by a small Prometheus text parser."""

from __future__ import annotations

import math
import re
import threading

import grpc
import pytest

from tfpipe.serving.metrics import Metrics, prometheus_name

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_prometheus(text: str) -> dict[str, dict]:
    """Parse the text exposition format: {family: {"type", "help", "samples": [(name, labels, value)]}}."""
    assert text.endswith("\n")
    families: dict[str, dict] = {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            _, kind, name, rest = line.split(" ", 3)
            assert re.fullmatch(_NAME, name), name
            family = families.setdefault(name, {"samples": []})
            if kind == "TYPE":
                assert rest in {"counter", "gauge", "histogram", "summary", "untyped"}, rest
                assert not family["samples"], f"TYPE after samples for {name}"
            family[kind.lower()] = rest
            continue
        assert not line.startswith("#"), line
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, label_text, value = match.groups()
        labels = {}
        position = 0
        while label_text and position < len(label_text):
            label = _LABEL.match(label_text, position)
            assert label, f"bad labels in {line!r}"
            labels[label.group(1)] = re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)),
                                            label.group(2))
            position = label.end()
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        family = families.get(name) or families.get(base)
        assert family is not None and "type" in family, f"sample before its TYPE: {line!r}"
        family["samples"].append((name, labels, float(value)))
    return families


def test_prometheus_name_matches_tf_serving_sanitizing() -> None:
    assert prometheus_name("/tensorflow/serving/request_count") == ":tensorflow:serving:request_count"
    assert prometheus_name("0/path-total_count") == "_0:path:total_count"  # TF Serving's own exporter test


def test_counters_rise_with_traffic_and_render_parses() -> None:
    metrics = Metrics()
    for _ in range(3):
        metrics.record_request("default", "Predict", "GRPC", grpc.StatusCode.OK, 0.0015)
    metrics.record_request("default", "Predict", "REST", "INVALID_ARGUMENT", 0.0002)
    metrics.record_runtime("default", "Predict", "TF1", 0.001)
    metrics.record_load("/models/default/1", True, 0.25)
    metrics.record_load("/models/broken/1", False, 0.01)
    metrics.record_warmup("/models/default/1", grpc.StatusCode.OK, 0.05)
    families = parse_prometheus(metrics.render())

    count = families[":tensorflow:serving:request_count"]
    assert count["type"] == "counter" and count["help"] == "The total number of requests."
    assert {(s[1]["status"], s[2]) for s in count["samples"]} == {("OK", 3.0), ("INVALID_ARGUMENT", 1.0)}

    latency = families[":tensorflow:serving:request_latency"]
    assert latency["type"] == "histogram"
    grpc_samples = [s for s in latency["samples"] if s[1].get("entrypoint") == "GRPC"]
    sums = [s[2] for s in grpc_samples if s[0].endswith("_sum")]
    assert sums == [pytest.approx(4500.0)]  # microseconds, as TF Serving
    assert {s[1]["API"] for s in grpc_samples} == {"Predict"}

    loads = families[":tensorflow:cc:saved_model:load_attempt_count"]["samples"]
    assert {(s[1]["model_path"], s[1]["status"]) for s in loads} == {("/models/default/1", "success"),
                                                                      ("/models/broken/1", "fail")}
    assert families[":tensorflow:cc:saved_model:load_latency"]["samples"] == [
        (":tensorflow:cc:saved_model:load_latency", {"model_path": "/models/default/1"}, 250000.0)]
    assert ":tensorflow:serving:model_warmup_latency" in families
    assert ":tensorflow:serving:runtime_latency" in families

    before = metrics.value("/tensorflow/serving/request_count", model_name="default", status="OK")
    metrics.record_request("default", "Predict", "GRPC", "OK", 0.001)
    assert metrics.value("/tensorflow/serving/request_count", model_name="default", status="OK") == before + 1
    assert metrics.value("/tensorflow/serving/request_latency", model_name="default", API="Predict",
                         entrypoint="GRPC") == 4


def test_histogram_buckets_follow_tf_serving_exporter() -> None:
    # TF Serving's exporter test: Exponential(1, 2, ...) with 2, 20, 200 → le="4" holds 1 (limits are exclusive).
    metrics = Metrics()
    for count in (2, 20, 200):
        metrics.record_examples("m", count)
    samples = parse_prometheus(metrics.render())[":tensorflow:serving:request_example_counts"]["samples"]
    buckets = {s[1]["le"]: s[2] for s in samples if s[0].endswith("_bucket")}
    assert [buckets[le] for le in ("1", "2", "4", "8", "16", "32", "64", "128", "256", "16384", "+Inf")] == [
        0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert len(buckets) == 16
    values = [s[2] for s in samples if s[0].endswith("_bucket")]
    assert values == sorted(values)  # cumulative
    assert [s[2] for s in samples if s[0].endswith("_sum")] == [222.0]
    assert [s[2] for s in samples if s[0].endswith("_count")] == [3.0]
    total = parse_prometheus(metrics.render())[":tensorflow:serving:request_example_count_total"]["samples"]
    assert total == [(":tensorflow:serving:request_example_count_total", {"model": "m"}, 222.0)]


def test_latency_buckets_are_tf_servings_and_inf_matches_count() -> None:
    metrics = Metrics()
    metrics.record_request("m", "Predict", "GRPC", "OK", 5000.0)  # beyond the last limit (~20 minutes)
    samples = parse_prometheus(metrics.render())[":tensorflow:serving:request_latency"]["samples"]
    limits = [s[1]["le"] for s in samples if s[0].endswith("_bucket")]
    assert len(limits) == 34 and limits[0] == "10" and limits[1] == "18" and limits[-1] == "+Inf"
    assert math.isclose(float(limits[-2]), 10 * 1.8 ** 32, rel_tol=1e-5)
    buckets = [s[2] for s in samples if s[0].endswith("_bucket")]
    assert buckets[-2] == 0 and buckets[-1] == 1


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    metrics.record_request('we"ird\\name', "Predict", "GRPC", "OK", 0.001)
    samples = parse_prometheus(metrics.render())[":tensorflow:serving:request_count"]["samples"]
    assert samples[0][1]["model_name"] == 'we"ird\\name'


def test_concurrent_recording_loses_nothing() -> None:
    metrics = Metrics()

    def hammer() -> None:
        for _ in range(500):
            metrics.record_request("m", "Predict", "GRPC", "OK", 0.001)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert metrics.value("/tensorflow/serving/request_count", model_name="m", status="OK") == 4000
    families = parse_prometheus(metrics.render())
    counts = [s[2] for s in families[":tensorflow:serving:request_latency"]["samples"] if s[0].endswith("_count")]
    assert counts == [4000.0]


def test_empty_registry_renders_valid_empty_page() -> None:
    assert parse_prometheus(Metrics().render()) == {}


def test_each_server_has_its_own_registry_and_the_global_one_stays_clean() -> None:
    from prometheus_client import REGISTRY, generate_latest

    first, second = Metrics(), Metrics()
    first.record_request("m", "Predict", "GRPC", "OK", 0.001)
    first.record_request("m", "Predict", "GRPC", "OK", 0.001)
    second.record_request("m", "Predict", "REST", "OK", 0.001)
    assert first.registry is not second.registry
    count = ":tensorflow:serving:request_count"
    assert parse_prometheus(first.render())[count]["samples"] == [(count, {"model_name": "m", "status": "OK"}, 2.0)]
    assert parse_prometheus(second.render())[count]["samples"] == [(count, {"model_name": "m", "status": "OK"}, 1.0)]
    assert b":tensorflow:" not in generate_latest(REGISTRY)
    # The page is generate_latest's own rendering of the server's registry (counter TYPE lines named as TF's).
    assert first.render() == generate_latest(first.registry).decode().replace(f"{count}_total ", f"{count} ") \
        .replace(f"{count}_total counter", f"{count} counter")


def test_prometheus_clients_own_parser_reads_the_page() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    metrics = Metrics()
    metrics.record_request("m", "Classify", "REST", "OK", 0.002)
    metrics.record_examples("m", 3)
    families = {f.name: f for f in text_string_to_metric_families(metrics.render())}
    # The parser files counters under NAME (without _total), as OpenMetrics does; TF Serving's names come back.
    assert families[":tensorflow:serving:request_count"].type == "counter"
    assert families[":tensorflow:serving:request_example_count"].type == "counter"
    latency = families[":tensorflow:serving:request_latency"]
    assert latency.type == "histogram"
    count = next(s for s in latency.samples if s.name.endswith("_count"))
    assert count.labels == {"model_name": "m", "API": "Classify", "entrypoint": "REST"} and count.value == 1
