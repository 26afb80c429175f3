"""Stable keys: document ids and hashes that make every output independent of how the work is partitioned.

A document's id is its input file's position in the input list and its position in that file; every random
choice and every output shard is derived from such ids through blake2b, never from Python's `hash()` (salted
per process) or from the order in which a worker happens to see the data.
"""

from __future__ import annotations

import hashlib

# Documents per input file that an id can number (2**40); the input's index sits above them.
_ORDINAL_BITS = 40


def document_id(input_index: int, ordinal: int) -> int:
    """The id of the `ordinal`-th document (0-based) of the `input_index`-th input; ids sort in input order.

    >>> document_id(0, 5) < document_id(1, 0)
    True
    """
    if not 0 <= ordinal < 1 << _ORDINAL_BITS:
        raise ValueError(f"document {ordinal} of input {input_index}: more documents than an id can number")
    return (input_index << _ORDINAL_BITS) | ordinal


def stable_hash(*parts: object) -> int:
    """A 63-bit hash of `parts` (their `str`s), the same on every machine, process and Python version (63: it
    fits Beam's signed 64-bit integer coder).

    >>> stable_hash(12345, "document", 7, 0) == stable_hash(12345, "document", 7, 0)
    True
    """
    data = "\x1f".join(str(part) for part in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") >> 1


def shard_of(key: int, num_shards: int) -> int:
    """The output shard of a record keyed `key` (a document id or an instance key)."""
    return stable_hash("shard", key) % num_shards
