"""Models by name and their versions: version policies (latest N / all / specific), labels, polling base paths
(new versions load and serve before old ones unload; in-flight requests finish via refcounts), config reloads
restricted to allowed roots, and warm-up replay on load."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.apis import get_model_status_pb2, model_pb2
from tensorflow_serving.config import model_server_config_pb2

from tfpipe.export.layout import list_versions
from tfpipe.serving.accelerated import open_servable
from tfpipe.serving.base_paths import aspired_versions, is_under
from tfpipe.serving.errors import ServingError, failed_precondition, hidden, invalid_argument, not_found
from tfpipe.serving.servable import Servable
from tfpipe.serving.warmup import replay_warmup

log = logging.getLogger(__name__)
State = get_model_status_pb2.ModelVersionStatus.State


@dataclass
class ManagerOptions:
    """Args:
    poll_seconds: how often base paths are re-listed (`--file_system_poll_wait_seconds`; 0 = only at load).
    enable_warmup / warmup_iterations: replay assets.extra/tf_serving_warmup_requests on load.
    session_config: TF1 session threading.
    batcher_factory: `run_fn -> Batcher` when batching is on.
    batch_size: the batch size versions mostly run at (1, or the batcher's execution batch size); `--backend`
        picks the converted variant that was fastest at the timed batch size nearest to it.
    allowed_roots: resolved directories that reloaded configs' base paths must be or lie inside
        (`tfpipe.serving.base_paths.allowed_roots`).
    allow_labels_for_unavailable: `--allow_version_labels_for_unavailable_models`.
    max_load_retries: how many polls retry a version that failed to load (`--max_num_load_retries`).
    metrics: optional tfpipe.serving.metrics.Metrics; loads and warm-ups are recorded there.
    tags: the MetaGraphDef tags to load (`--saved_model_tags`).
    method_name_check: Predict only runs predict/classify/regress signatures
        (`--enable_signature_method_name_check`).
    backend: `tensorflow`, `auto`, `onnxruntime` or `openvino` (`--backend`): what runs a version that has a
        verified converted encoder.
    """

    poll_seconds: float = 1.0
    enable_warmup: bool = True
    warmup_iterations: int = 1
    session_config: config_pb2.ConfigProto | None = None
    batcher_factory: Callable[[Callable], Any] | None = None
    batch_size: int = 1
    allowed_roots: list[Path] = field(default_factory=list)
    allow_labels_for_unavailable: bool = False
    max_load_retries: int = 5
    metrics: Any = None
    tags: tuple[str, ...] = ("serve",)
    method_name_check: bool = False
    backend: str = "tensorflow"


@dataclass
class VersionState:
    version: int
    path: Path
    state: int = State.START
    servable: Servable | None = None
    error: ServingError | None = None
    refs: int = 0
    failures: int = 0


@dataclass
class ModelState:
    config: model_server_config_pb2.ModelConfig
    versions: dict[int, VersionState] = field(default_factory=dict)
    active: bool = True


class ModelManager:
    """Serves the models of a ModelServerConfig; `acquire(model_spec)` hands out a ref-counted servable.

    Examples:
    >>> manager = ModelManager(ManagerOptions(poll_seconds=0))
    >>> manager.apply_config(model_server_config_pb2.ModelServerConfig())
    >>> manager.model_names()
    []
    """

    def __init__(self, options: ManagerOptions | None = None) -> None:
        self.options = options or ManagerOptions()
        self._models: dict[str, ModelState] = {}
        self._lock = threading.Condition()
        self._sync_lock = threading.RLock()  # one config apply / poll at a time
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # -- configuration ---------------------------------------------------------------------------------------

    def apply_config(self, config: model_server_config_pb2.ModelServerConfig, *, check_roots: bool = False) -> None:
        """Makes the served models those of `config`: new ones load (and this waits for them), removed ones unload."""
        kind = config.WhichOneof("config")
        if kind not in (None, "model_config_list"):
            raise invalid_argument("Only model_config_list is supported in ModelServerConfig.")
        configs = list(config.model_config_list.config)
        names = [c.name for c in configs]
        for c in configs:
            if not c.name:
                raise invalid_argument("Each model in model_config_list needs a name.")
            if names.count(c.name) > 1:
                raise invalid_argument(f"Illegal to list model {c.name} multiple times in config list")
            if c.model_platform not in ("", "tensorflow"):
                raise invalid_argument(f"Model {c.name} has unsupported model_platform {c.model_platform!r} "
                                       "(only tensorflow is served)")
            if not c.base_path:
                raise invalid_argument(f"Model {c.name} has no base_path")
            if check_roots and not is_under(c.base_path, self.options.allowed_roots):
                # INVALID_ARGUMENT as TF Serving answers a bad config; the roots themselves are not told
                raise invalid_argument(f"Model base path {c.base_path} of model {c.name} is not inside an allowed "
                                       "model root (a start-up base path or --allowed_model_roots)")
            if not os.path.isdir(c.base_path):
                raise invalid_argument(f"Could not find base path {c.base_path} for servable {c.name}")
        with self._sync_lock:
            for c in configs:
                with self._lock:
                    current = self._models.get(c.name)
                    if current is None or not current.active:
                        current = self._models[c.name] = ModelState(config=c, versions=current.versions
                                                                    if current else {})
                    else:
                        current.config = c
                errors = self._sync(current)
                available = [v for v in current.versions.values() if v.state == State.AVAILABLE]
                if errors and not available:
                    raise errors[0]
                self._check_labels(current)
            for name, model in list(self._models.items()):
                if model.active and name not in names:
                    model.active = False
                    for version in list(model.versions.values()):
                        self._unload(model, version)

    def _check_labels(self, model: ModelState) -> None:
        for version in model.config.version_labels.values():
            state = model.versions.get(version)
            if not self.options.allow_labels_for_unavailable and (state is None or state.state != State.AVAILABLE):
                raise failed_precondition(f"Request to assign label to version {version} of model "
                                          f"{model.config.name}, which is not currently available for inference.")

    def model_names(self) -> list[str]:
        with self._lock:
            return sorted(n for n, m in self._models.items() if m.active)

    # -- loading ---------------------------------------------------------------------------------------------

    def _sync(self, model: ModelState) -> list[ServingError]:
        """Loads aspired versions that are not loaded, then unloads unaspired ones (availability first)."""
        try:
            on_disk = list_versions(model.config.base_path)
        except OSError as error:
            log.warning("cannot list base path %s of model %s: %s", model.config.base_path, model.config.name, error)
            return []
        aspired = aspired_versions(model.config, list(on_disk))
        errors = []
        for version in sorted(aspired, reverse=True):
            state = model.versions.get(version)
            replaced = None
            if state is not None and state.state in (State.LOADING, State.AVAILABLE):
                if state.path == on_disk[version] or state.state == State.LOADING:
                    continue
                replaced = state  # the model's base path moved: load the new files, then retire these
            elif state is not None and state.error is not None and state.failures > self.options.max_load_retries:
                continue
            error = self._load(model, version, on_disk[version], state, replacing=replaced is not None)
            if error is not None:
                errors.append(error)
            elif replaced is not None:
                self._unload(model, replaced)
        any_aspired_available = any(model.versions[v].state == State.AVAILABLE for v in aspired if v in model.versions)
        if any_aspired_available or not aspired:
            for version in list(model.versions.values()):
                if version.version not in aspired and version.state == State.AVAILABLE:
                    self._unload(model, version)
        return errors

    def _load(self, model: ModelState, version: int, path: Path, previous: VersionState | None,
              replacing: bool = False):
        state = VersionState(version=version, path=path, state=State.LOADING,
                             failures=previous.failures if previous and not replacing else 0)
        if not replacing:  # a replacement joins only once it can serve, so the old one keeps answering
            with self._lock:
                model.versions[version] = state
        name = model.config.name
        metrics = self.options.metrics
        started, servable = time.monotonic(), None
        try:
            servable = open_servable(path, name, version, self.options.backend, self.options.batch_size,
                                     tags=self.options.tags,
                                     session_config=self.options.session_config,
                                     batcher_factory=self.options.batcher_factory)
            servable.method_name_check = self.options.method_name_check
            if metrics is not None:
                metrics.record_load(str(path), True, time.monotonic() - started)
            if self.options.enable_warmup:
                warm = time.monotonic()
                if replay_warmup(servable, self.options.warmup_iterations) and metrics is not None:
                    metrics.record_warmup(str(path), grpc.StatusCode.OK, time.monotonic() - warm)
        except Exception as error:  # noqa: BLE001 - a bad version must not take the server down
            # The cause names files and exception types: clients (status, reload) get the code and an id only.
            cause = error.detail or error.message if isinstance(error, ServingError) else \
                f"{type(error).__name__}: {error}"
            failure = hidden(error.code if isinstance(error, ServingError) else grpc.StatusCode.UNKNOWN,
                             f"Failed to load version {version} of model {name}", f"from {path}: {cause}")
            if metrics is not None:
                if servable is None:
                    metrics.record_load(str(path), False, time.monotonic() - started)
                else:
                    metrics.record_warmup(str(path), failure.code, time.monotonic() - started)
            if servable is not None:
                servable.close()
            with self._lock:
                state.state, state.error, state.failures = State.END, failure, state.failures + 1
            return failure
        with self._lock:
            state.servable, state.state = servable, State.AVAILABLE
            model.versions[version] = state
        log.info("Successfully loaded servable version {name: %s version: %d} (%s)", name, version, servable.backend)
        return None

    def _unload(self, model: ModelState, state: VersionState) -> None:
        with self._lock:
            if state.state != State.AVAILABLE:
                return
            state.state = State.UNLOADING  # no new requests; those in flight finish
            self._lock.wait_for(lambda: state.refs == 0)
            servable, state.servable = state.servable, None
        if servable is not None:
            servable.close()
        with self._lock:
            state.state = State.END
        log.info("Done unloading servable version {name: %s version: %d}", model.config.name, state.version)

    # -- polling ---------------------------------------------------------------------------------------------

    def poll_once(self) -> None:
        with self._sync_lock:
            for model in [m for m in self._models.values() if m.active]:
                self._sync(model)

    def start(self) -> None:
        if self.options.poll_seconds > 0 and self._poller is None:
            self._poller = threading.Thread(target=self._poll_loop, name="tfpipe-fs-poll", daemon=True)
            self._poller.start()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.options.poll_seconds):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - keep polling
                log.exception("file system poll failed")

    def stop(self) -> None:
        """Stops polling and unloads everything (after in-flight requests finish)."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=30)
        with self._sync_lock:
            for model in self._models.values():
                for version in list(model.versions.values()):
                    self._unload(model, version)

    # -- lookups ---------------------------------------------------------------------------------------------

    def _resolve(self, spec: model_pb2.ModelSpec, removed: bool = False) -> tuple[ModelState | None, int | None]:
        model = self._models.get(spec.name)
        if model is not None and not model.active and not removed:
            model = None
        if spec.WhichOneof("version_choice") == "version_label":
            labels = model.config.version_labels if model is not None else {}
            if spec.version_label not in labels:
                raise invalid_argument(f"Unrecognized servable version label: {spec.version_label}")
            return model, labels[spec.version_label]
        if spec.HasField("version"):
            return model, spec.version.value
        return model, None

    @contextmanager
    def acquire(self, spec: model_pb2.ModelSpec) -> Iterator[Servable]:
        """The servable a ModelSpec names, held (not unloaded) until the block ends."""
        with self._lock:
            model, version = self._resolve(spec)
            candidates = [] if model is None else [s for s in model.versions.values() if s.state == State.AVAILABLE]
            if version is not None:
                candidates = [s for s in candidates if s.version == version]
            if not candidates:
                what = f"Latest({spec.name})" if version is None else f"Specific({spec.name}, {version})"
                raise not_found(f"Servable not found for request: {what}")
            state = max(candidates, key=lambda s: s.version)
            state.refs += 1
        try:
            yield state.servable
        finally:
            with self._lock:
                state.refs -= 1
                self._lock.notify_all()

    def status(self, spec: model_pb2.ModelSpec) -> get_model_status_pb2.GetModelStatusResponse:
        """GetModelStatus: every known version (newest first), or the one the spec names."""
        with self._lock:
            model, version = self._resolve(spec, removed=True)  # unloaded models still report END
            states = sorted(model.versions.values(), key=lambda s: -s.version) if model else []
            if version is not None:
                states = [s for s in states if s.version == version]
                if not states:
                    raise not_found(f"Could not find version {version} of model {spec.name}")
            if not states:
                raise not_found(f"Could not find any versions of model {spec.name}")
            response = get_model_status_pb2.GetModelStatusResponse()
            for s in states:
                entry = response.model_version_status.add(version=s.version, state=s.state)
                entry.status.SetInParent()  # TF Serving always reports a status (OK when healthy)
                if s.error is not None:
                    entry.status.error_code = s.error.code.value[0]
                    entry.status.error_message = s.error.message
            return response

    def servable_states(self, name: str) -> dict[int, int]:
        """version → state for a model (tests and logging)."""
        with self._lock:
            model = self._models.get(name)
            return {} if model is None else {v: s.state for v, s in model.versions.items()}
