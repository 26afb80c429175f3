"""serving/: every deployment file parses, and names, ports and paths agree with each other, with the export layout
(EXPORT_BASE/NAME/VERSION) and with the TensorFlow pin. Docker and Kubernetes do not run here; this is what can be
checked without them."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
import yaml
from tensorflow_serving.config import model_server_config_pb2

from tfpipe.serving.config_protos import BatchingParameters, MonitoringConfig, parse_text_proto

REPO = Path(__file__).resolve().parents[2]
SERVING = REPO / "serving"
GRPC_PORT, REST_PORT = 8500, 8501


def _flags(args: list[str]) -> dict[str, str]:
    """`--name=value` arguments as a dict (the form both compose and k8s files use)."""
    flags = {}
    for arg in args:
        assert re.fullmatch(r"--[a-z_]+=\S+", arg), f"{arg!r}: expected --flag=value"
        name, value = arg[2:].split("=", 1)
        flags[name] = value
    return flags


@pytest.fixture(scope="module")
def models_config() -> model_server_config_pb2.ModelServerConfig:
    return parse_text_proto(SERVING / "models.config", model_server_config_pb2.ModelServerConfig)


@pytest.fixture(scope="module")
def model(models_config) -> model_server_config_pb2.ModelConfig:
    (config,) = models_config.model_config_list.config
    return config


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((SERVING / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict]:
    """Every document under serving/k8s, by kind."""
    docs = {}
    for path in sorted((SERVING / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc and "kind" in doc, f"{path.name}: a document without a kind"
            assert doc["kind"] not in docs, f"{path.name}: a second {doc['kind']}"
            docs[doc["kind"]] = doc
    return docs


def _tensorflow_release() -> str:
    """The TensorFlow minor release setup.cfg pins, e.g. "2.21"."""
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    requirement = next(line for line in parser["options"]["install_requires"].split("\n")
                       if re.match(r"tensorflow\s*[><=]", line.strip()))
    match = re.search(r">=\s*(\d+\.\d+)", requirement)
    assert match, requirement
    return match.group(1)


def test_models_config_serves_an_export_folder(model):
    assert model.name == "sst2"
    assert model.model_platform == "tensorflow"
    # base_path is EXPORT_BASE/NAME: the folder holding the numeric version folders `tfpipe export` writes.
    assert model.base_path == f"/models/{model.name}"
    assert model.model_version_policy.WhichOneof("policy_choice") == "latest"
    assert model.model_version_policy.latest.num_versions == 2
    assert dict(model.version_labels) == {"stable": 1}


def test_batching_and_monitoring_protos():
    batching = parse_text_proto(SERVING / "batching_parameters.txt", BatchingParameters)
    for field in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"):
        assert batching.HasField(field), field
    assert batching.max_batch_size.value == 32 and batching.num_batch_threads.value >= 1
    monitoring = parse_text_proto(SERVING / "monitoring.config", MonitoringConfig)
    assert monitoring.prometheus_config.enable
    assert monitoring.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_compose_runs_pinned_tf_serving_on_the_export_folder(compose, model):
    release = _tensorflow_release()
    services = compose["services"]
    assert {s["image"] for s in services.values()} == {f"tensorflow/serving:{release}.0",
                                                     f"tensorflow/serving:{release}.0-gpu"}
    for name, service in services.items():
        assert service["entrypoint"] == ["tensorflow_model_server"], name
        flags = _flags(service["command"])
        assert (flags["port"], flags["rest_api_port"]) == (str(GRPC_PORT), str(REST_PORT))
        assert flags["enable_batching"] == "true"
        assert service["ports"] == [f"{GRPC_PORT}:{GRPC_PORT}", f"{REST_PORT}:{REST_PORT}"]
        mounts = {}
        for volume in service["volumes"]:
            host, container, mode = volume.rsplit(":", 2)
            assert mode == "ro", volume
            mounts[container] = host
        # Each config file flag names a mounted copy of the file in serving/.
        for flag, filename in (("model_config_file", "models.config"),
                               ("batching_parameters_file", "batching_parameters.txt"),
                               ("monitoring_config_file", "monitoring.config")):
            assert mounts[flags[flag]] == f"./{filename}", flag
            assert (SERVING / filename).is_file()
        # The export base is mounted where base_path points: /models + /NAME.
        export_mount = next(c for c, h in mounts.items() if "TFPIPE_EXPORT_BASE" in h)
        assert model.base_path == f"{export_mount}/{model.name}"
        assert f"/v1/models/{model.name}" in service["healthcheck"]["test"][-1]
        assert f"/{REST_PORT}" in service["healthcheck"]["test"][-1]
    gpu = services["tfserving-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]


def test_k8s_manifests_agree(k8s, model):
    assert {"ConfigMap", "PersistentVolumeClaim", "Deployment", "Service", "HorizontalPodAutoscaler"} <= set(k8s)
    deployment, service, hpa = k8s["Deployment"], k8s["Service"], k8s["HorizontalPodAutoscaler"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["image"] == f"tensorflow/serving:{_tensorflow_release()}.0"
    assert container["command"] == ["tensorflow_model_server"]
    flags = _flags(container["args"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": GRPC_PORT, "rest": REST_PORT}
    assert (flags["port"], flags["rest_api_port"]) == (str(GRPC_PORT), str(REST_PORT))

    # Probes: the REST model status endpoint of the configured model, on the REST port.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == f"/v1/models/{model.name}", probe
        assert ports[get["port"]] == REST_PORT, probe

    # Volumes: exports at the folder above base_path; the ConfigMap at the folder of the config flags.
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert model.base_path == f"{mounts['exports']}/{model.name}"
    claim = volumes["exports"]["persistentVolumeClaim"]["claimName"]
    assert claim == k8s["PersistentVolumeClaim"]["metadata"]["name"]
    assert volumes["config"]["configMap"]["name"] == k8s["ConfigMap"]["metadata"]["name"]
    data = k8s["ConfigMap"]["data"]
    for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
        directory, filename = flags[flag].rsplit("/", 1)
        assert directory == mounts["config"], flag
        # The ConfigMap carries serving/'s files verbatim, so the two deployments cannot drift apart.
        assert data[filename] == (SERVING / filename).read_text(), filename

    # Prometheus scrape annotations match monitoring.config.
    annotations = pod["metadata"]["annotations"]
    monitoring = parse_text_proto(SERVING / "monitoring.config", MonitoringConfig)
    assert annotations["prometheus.io/path"] == monitoring.prometheus_config.path
    assert annotations["prometheus.io/port"] == str(REST_PORT)

    # Service: selects the pods and exposes the same ports under the same names.
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
    assert {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        "grpc": (GRPC_PORT, "grpc"), "rest": (REST_PORT, "rest")}

    # The autoscaler scales this Deployment on CPU, which the container requests.
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "cpu" in container["resources"]["requests"]


def test_models_config_runs_on_tfpipe_serve(tmp_path, model):
    """models.config as shipped (policy, label), with base_path pointed at a local export folder."""
    from tests.serving import raw_text_models
    from tests.serving.server_harness import start_server
    from tfpipe.serving.client import ServingClient

    raw_text_models.save("classifier", tmp_path / model.name / "1")
    text = (SERVING / "models.config").read_text().replace(f'"{model.base_path}"', f'"{tmp_path / model.name}"')
    (tmp_path / "models.config").write_text(text)
    server = start_server(model_config_file=str(tmp_path / "models.config"))
    try:
        with ServingClient(f"http://127.0.0.1:{server.rest_port}", model=model.name) as client:
            assert [s["state"] for s in client.status()] == ["AVAILABLE"]
            assert client.predict(["good"], label="stable")["labels"].tolist() == ["pos"]
    finally:
        server.stop(grace=1)


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((SERVING / "k8s" / "kustomization.yaml").read_text())
    manifests = {p.name for p in (SERVING / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


def test_readme_says_what_was_not_run_here():
    readme = (SERVING / "README.md").read_text()
    assert "not run here" in readme
    for name in ("models.config", "batching_parameters.txt", "monitoring.config", "docker-compose.yml", "k8s/",
                 "tfpipe serve", "-gpu"):
        assert name in readme, name
