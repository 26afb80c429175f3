"""A REST request body → a JSON value, read as TF Serving reads it: rapidjson (python-rapidjson wraps the same C++
library) with NaN/Infinity literals, rapidjson's number rules and its error wording and byte offsets.

TF Serving's ParseJson (util/json_tensor.cc) answers "JSON Parse error: <rapidjson's message> at offset: <byte>";
so does `decode`. Where the two can differ (nesting depth, bytes that are not UTF-8) is in serving/README.md.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

import rapidjson

from tfpipe.serving.errors import invalid_argument

MAX_DEPTH = 1000  # python-rapidjson's fixed limit on nested arrays/objects (TF Serving has none: deep input recurses)
_BOM = b"\xef\xbb\xbf"
_ERROR = re.compile(r"Parse error at offset (\d+): (.*)", re.S)
# A byte that is not UTF-8 becomes \x01: one byte wide (offsets stay put) and invalid anywhere in JSON, so rapidjson
# reports the spot in its own words (inside a string: "Invalid encoding in string.").
codecs.register_error("tfpipe.json", lambda error: ("\x01" * (error.end - error.start), error.end))


class JsonObject(dict):
    """A JSON object as rapidjson's DOM holds it: a repeated name keeps its first value for lookups (rapidjson's
    FindMember finds the first member), and `later` lists the repeated members, for the places where TF Serving
    walks every member (tf.Example features, where the last one wins; `{"b64": ...}`, which must have one member).

    Examples:
    >>> doc = decode(b'{"a": 1, "a": 2}')
    >>> doc["a"], doc.later
    (1, [('a', 2)])
    """

    __slots__ = ("later",)

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self:
            dict.__setitem__(self, key, value)
        elif hasattr(self, "later"):
            self.later.append((key, value))
        else:
            self.later = [(key, value)]


def repeated(value: dict) -> list[tuple[str, Any]]:
    """The members after the first of a repeated name ([] for most objects)."""
    return getattr(value, "later", [])


class _Decoder(rapidjson.Decoder):
    def start_object(self) -> JsonObject:
        return JsonObject()


# NM_NATIVE: rapidjson's own number parsing, as TF Serving's (integers past uint64 become doubles, a double past
# DBL_MAX is "Number too big"); NM_NAN: TF Serving parses with kParseNanAndInfFlag.
_DECODE = _Decoder(number_mode=rapidjson.NM_NAN | rapidjson.NM_NATIVE)


def decode(body: bytes) -> Any:
    """Parses a request body; raises INVALID_ARGUMENT with TF Serving's "JSON Parse error: ..." message.

    Examples:
    >>> decode(b'{"instances": [NaN, 1e3]}')
    {'instances': [nan, 1000.0]}
    >>> decode(b'{"instances": [1e400]}')
    Traceback (most recent call last):
    ...
    tfpipe.serving.errors.ServingError: JSON Parse error: Number too big to be stored in double. at offset: 15
    """
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    shift = 0
    if body.startswith(_BOM):  # rapidjson's UTF-8 input stream skips a byte-order mark; offsets still count it
        body, shift = body[len(_BOM):], len(_BOM)
    try:
        try:
            return _DECODE(body)
        except UnicodeDecodeError as bad:
            _DECODE(body.decode("utf-8", "tfpipe.json"))  # fails, in rapidjson's words, at the first bad byte
            raise invalid_argument(f"JSON Parse error: Invalid encoding in string. at offset: {bad.start + shift}") \
                from None
    except (RecursionError, rapidjson.JSONDecodeError) as error:
        match = _ERROR.fullmatch(str(error))
        reason, offset = (match.group(2), int(match.group(1))) if match else (str(error), 0)
        if isinstance(error, RecursionError):
            reason = f"Arrays and objects nest deeper than {MAX_DEPTH} levels."
        raise invalid_argument(f"JSON Parse error: {reason} at offset: {offset + shift}") from None
