"""REST bodies that are bad (or odd) JSON, against a real server: each case answers TF Serving's status and message
(as read from its json_tensor.cc and rapidjson), or the deliberate difference serving/README.md's parity table
gives; no client mistake is a 500. The README's table lists exactly these cases, with these statuses."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
import requests

from tests.serving.server_harness import example, multi_model_config, rest_url, start_server

P, CL, SLOW = "/v1/models/default:predict", "/v1/models/default:classify", "/v1/models/slow:predict"
EL = "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
SERIALIZED = base64.b64encode(example(x=2.0).SerializeToString()).decode()  # ends in one "=" of padding
README = Path(__file__).resolve().parents[2] / "serving" / "README.md"


def j(doc) -> bytes:
    return json.dumps(doc).encode()


def deep(levels: int) -> bytes:
    return b'{"inputs": ' + b"[" * levels + b"1.0" + b"]" * levels + b"}"


# (id, path, body, status, expected): expected is the exact error message, "~part" of it, or for 200 the exact
# response text.
CASES = [
    ("empty", P, b"", 400, "JSON Parse error: The document is empty"),
    ("whitespace", P, b" \n", 400, "JSON Parse error: The document is empty. at offset: 2"),
    ("not-object", P, b"[1.0]", 400, "JSON Value: [1.0] Is not object"),
    ("unterminated", P, b'{"instances": [1.0', 400,
     "JSON Parse error: Missing a comma or ']' after an array element. at offset: 18"),
    ("trailing-bytes", P, b'{"instances": [1.0]} x', 400,
     "JSON Parse error: The document root must not be followed by other values. at offset: 21"),
    ("trailing-space", P, b'{"instances": [1.0]}\r\n ', 200, '{"predictions": [2.5]}'),
    ("trailing-nul", P, b'{"instances": [1.0]}\x00junk', 200, '{"predictions": [2.5]}'),
    ("depth-1001", P, deep(1000), 400,
     "JSON Parse error: Arrays and objects nest deeper than 1000 levels. at offset: 1011"),
    ("depth-999", P, deep(998), 400,
     "JSON Value nests lists 998 deep: tensors here have at most 32 dimensions"),
    ("rank-33", P, deep(33), 400, "JSON Value nests lists 33 deep: tensors here have at most 32 dimensions"),
    ("lone-high-surrogate", P, b'{"instances": ["\\ud800"]}', 400,
     "JSON Parse error: The surrogate pair in string is invalid. at offset: 16"),
    ("lone-low-surrogate", P, b'{"instances": ["\\udc00"]}', 400,
     "JSON Parse error: The surrogate pair in string is invalid. at offset: 16"),
    ("surrogate-pair", P, b'{"instances": ["\\ud83d\\ude00"]}', 400,
     EL + 'JSON Value: "\U0001f600" Type: String is not of expected type: float'),
    ("1e400", P, b'{"instances": [1e400]}', 400,
     "JSON Parse error: Number too big to be stored in double. at offset: 15"),
    ("-1e400", P, b'{"instances": [-1e400]}', 400,
     "JSON Parse error: Number too big to be stored in double. at offset: 15"),
    ("400-digits", P, b'{"instances": [' + b"9" * 400 + b"]}", 400,
     "JSON Parse error: Number too big to be stored in double. at offset: 15"),
    ("nan-literal", P, b'{"instances": [NaN]}', 200, '{"predictions": [NaN]}'),
    ("infinity-literals", P, b'{"instances": [Infinity, -Infinity]}', 200,
     '{"predictions": [Infinity,-Infinity]}'),
    ("lowercase-nan", P, b'{"instances": [nan]}', 400, "JSON Parse error: Invalid value. at offset: 16"),
    ("utf8-bom", P, b'\xef\xbb\xbf{"instances": [1.0]}', 200, '{"predictions": [2.5]}'),
    ("utf8-bom-then-junk", P, b"\xef\xbb\xbf{x", 400,
     "JSON Parse error: Missing a name for object member. at offset: 4"),
    ("utf16-bom", P, '{"instances": [1.0]}'.encode("utf-16"), 400, "JSON Parse error: Invalid value. at offset: 0"),
    ("utf16-no-bom", P, '{"instances": [1.0]}'.encode("utf-16-le"), 400,
     "JSON Parse error: Missing a name for object member. at offset: 1"),
    ("latin1-in-string", P, b'{"instances": ["caf\xe9"]}', 400,
     "JSON Parse error: Invalid encoding in string. at offset: 19"),
    ("byte-ff-outside-string", P, b'{"instances": [1.0]\xff}', 400,
     "JSON Parse error: Missing a comma or '}' after an object member. at offset: 19"),
    ("control-char", P, b'{"instances": ["a\x01"]}', 400,
     "JSON Parse error: Invalid encoding in string. at offset: 17"),
    ("repeated-top-key", P, b'{"instances": [1.0], "instances": [5.0]}', 200, '{"predictions": [2.5]}'),
    ("repeated-inputs-name", P, b'{"inputs": {"x": [1.0], "x": [5.0]}}', 200, '{"outputs": [2.5]}'),
    ("repeated-instance-name", P, b'{"instances": [{"x": 1.0, "x": 2.0}, {"x": 3.0}]}', 200,
     '{"predictions": [2.5,3.5]}'),
    ("repeated-b64", P, b'{"signature_name": "classify_x_to_y", "instances": [{"b64": "YQ==", "b64": "Yg=="}]}',
     400, "Failed to process element: 0 key: b64 of 'instances' list. Error: INVALID_ARGUMENT: JSON object: does "
     "not have named input: b64"),
    ("repeated-feature", CL, b'{"signature_name": "classify_x_to_y", "examples": [{"x": 1.0, "x": 3.0}]}', 200,
     '{"results": [[["", 3.5]]]}'),
    ("instances-object", P, j({"instances": {"x": 1.0}}), 400,
     'JSON Value: {"instances":{"x":1.0}} Excepting \'instances\' to be an list/array'),
    ("instances-empty", P, j({"instances": []}), 400, 'JSON Value: {"instances":[]} No values in \'instances\' array'),
    ("inputs-string", P, j({"inputs": "a"}), 400, 'JSON Value: "a" Type: String is not of expected type: float'),
    ("inputs-null", P, j({"inputs": None}), 400, "JSON Value: null Type: Null is not of expected type: float"),
    ("ragged-instances", P, j({"instances": [[1.0], [1.0, 2.0]]}), 400,
     "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 1 but got: 2"),
    ("ragged-inputs", P, j({"inputs": [[1.0], [1.0, 2.0]]}), 400,
     "Encountered list at unexpected size: 2 at level: 1 expected size: 1"),
    ("int-past-float-precision", P, j({"instances": [16777217]}), 400,
     EL + "Cannot convert JSON value: 16777217 to float without loss of precision."),
    ("int-past-uint64-float-input", P, j({"instances": [2**64]}), 200, '{"predictions": [9.22337204e+18]}'),
    ("int-past-int64", SLOW, j({"instances": [2**63]}), 400,
     EL + "JSON Value: 9223372036854775808 Type: Number is not of expected type: int64"),
    ("int-past-uint64", SLOW, j({"instances": [2**64]}), 400,
     EL + "JSON Value: 1.8446744073709552e+19 Type: Number is not of expected type: int64"),
    ("both-keys", P, j({"instances": [1.0], "inputs": [1.0]}), 400,
     'JSON Value: {"instances":[1.0],"inputs":[1.0]} Not formatted correctly expecting only one of \'inputs\' or '
     "'instances' keys to exist "),
    ("neither-key", P, j({"data": [1.0]}), 400, "Missing 'inputs' or 'instances' key"),
    ("signature-number", P, j({"signature_name": 3, "instances": [1.0]}), 400,
     'JSON Value: {"signature_name":3,"instances":[1.0]} not formatted correctly. \'signature_name\' key must be a '
     "string value."),
    ("signature-null", P, j({"signature_name": None, "instances": [1.0]}), 400,
     "~'signature_name' key must be a string value."),
    ("b64-invalid", P, j({"signature_name": "classify_x_to_y", "instances": [{"b64": "!!!"}]}), 400,
     EL + "Unable to base64 decode"),
    ("b64-unpadded", P, j({"signature_name": "classify_x_to_y", "instances": [{"b64": SERIALIZED.rstrip("=")}]}),
     200, '{"predictions": [[3.0]]}'),
    ("b64-wrong-padding", P, j({"signature_name": "classify_x_to_y", "instances": [{"b64": "YQ="}]}), 400,
     EL + "Unable to base64 decode"),
    ("b64-not-string", P, j({"signature_name": "classify_x_to_y", "instances": [{"b64": 1}]}), 400,
     "Failed to process element: 0 key: b64 of 'instances' list. Error: INVALID_ARGUMENT: JSON object: does not "
     "have named input: b64"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(model_config_file=str(multi_model_config(tmp_path_factory.mktemp("parity"))))
    yield server
    server.stop(grace=1)


@pytest.mark.parametrize("path, body, status, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rest_json_case(server, path, body, status, expected):
    response = requests.post(rest_url(server, path), data=body, timeout=60)
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"] == "application/json"
    if status == 200:
        assert response.text == expected
    elif expected.startswith("~"):
        assert expected[1:] in response.json()["error"]
    else:
        assert response.json()["error"] == expected


def readme_rows() -> dict[str, int]:
    """The parity table in serving/README.md: case id → tfpipe's status."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## REST JSON parity", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and (match := re.fullmatch(r"`([^`]+)`", cells[0])):
            rows[match.group(1)] = int(re.match(r"\**(\d{3})", cells[3]).group(1))
    return rows


def test_the_readme_table_lists_these_cases_with_these_statuses():
    assert readme_rows() == {c[0]: c[3] for c in CASES}
    assert len(CASES) >= 15
