"""Which folders HandleReloadConfigRequest may load: the start-up base paths and --allowed_model_roots (and what
lies inside them), resolved before the check; anything else is INVALID_ARGUMENT and leaves the served models as
they were."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, model_management_pb2, predict_pb2

from tests.serving.server_harness import HALF_PLUS_THREE, HALF_PLUS_TWO, config_of, copy_versions, start_server, stubs
from tfpipe.serving.base_paths import allowed_roots, is_under


@pytest.fixture
def layout(tmp_path):
    """models/hp2 (served at start), models/sibling (beside it, never named), extra/ (an --allowed_model_roots
    folder) holding team/hp3 and a symlink `escape` to models/sibling."""
    models = tmp_path / "models"
    copy_versions(HALF_PLUS_TWO, models / "hp2")
    copy_versions(HALF_PLUS_THREE, models / "sibling")
    copy_versions(HALF_PLUS_THREE, tmp_path / "extra" / "team" / "hp3")
    (tmp_path / "extra" / "escape").symlink_to(models / "sibling", target_is_directory=True)
    return tmp_path


@pytest.fixture
def served(layout):
    server = start_server(model_name="hp2", model_base_path=str(layout / "models" / "hp2"),
                          allowed_model_roots=[str(layout / "extra")], rest_api_port=0)
    prediction, model_service, channel = stubs(server)
    yield server, prediction, model_service
    channel.close()
    server.stop(grace=1)


def predict(stub, model: str) -> list[float]:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([2.0], np.float32)))
    return list(stub.Predict(request, timeout=30).outputs["y"].float_val)


def reload(stub, *models: tuple[str, Path | str]):
    return stub.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=config_of(*models)),
                                          timeout=60)


def status(stub, model: str):
    return stub.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec={"name": model}), timeout=30)


@pytest.mark.parametrize("where", ["sibling", "dotdot", "symlink", "outside"])
def test_a_path_outside_the_roots_is_refused_and_nothing_changes(served, layout, where):
    server, prediction, model_service = served
    path = {"sibling": layout / "models" / "sibling",  # the start-up base path's parent is no root
            "dotdot": f"{layout}/extra/team/../../models/sibling",  # lexically under extra/, really beside it
            "symlink": layout / "extra" / "escape",  # inside extra/, pointing out of it
            "outside": "/"}[where]
    before = status(model_service, "hp2")
    with pytest.raises(grpc.RpcError) as error:
        reload(model_service, ("hp2", layout / "models" / "hp2"), ("other", path))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == (f"Model base path {path} of model other is not inside an allowed model root "
                                     "(a start-up base path or --allowed_model_roots)")
    assert server.manager.model_names() == ["hp2"]
    assert status(model_service, "hp2") == before
    assert predict(prediction, "hp2") == [3.0]


def test_the_start_up_base_path_and_folders_inside_a_root_are_accepted(served, layout):
    _, prediction, model_service = served
    relative = os.path.relpath(layout / "extra" / "team" / "hp3")  # resolved against the server's directory
    response = reload(model_service, ("hp2", layout / "models" / "hp2"), ("hp3", relative))
    assert response.status.error_code == 0
    assert predict(prediction, "hp2") == [3.0]
    assert predict(prediction, "hp3") == [4.0]


def test_a_relative_start_up_path_allows_itself_not_its_parents(tmp_path, monkeypatch):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "models" / "hp2").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    roots = allowed_roots([], ["../../models/hp2"])
    assert roots == [Path(os.path.realpath(tmp_path / "models" / "hp2"))]
    assert is_under(tmp_path / "models" / "hp2" / "1", roots)
    assert not is_under(tmp_path / "models", roots)
    assert not is_under("/", roots)
