"""grader/sandbox/frames.py: the grader's decoder of the child's frames, attacked directly.

Whatever the child writes, the decoder either gives back plain values or raises its own
ProtocolError (which fails the task as a broken protocol); anything else would end the grade
as an internal error. The fuzz test below throws seeded random bytes and JSON trees at it.
"""

from __future__ import annotations

import ctypes
import json
import random
import struct
import tracemalloc

import pytest

from grader.sandbox.frames import (
    MAX_BLOBS,
    FrameReader,
    Opaque,
    ProtocolError,
    decode_value,
    encode_frame,
    progress_event,
)


def raw_frame(body: bytes, blobs: list[bytes] = ()) -> bytes:
    return struct.pack(">I", len(body)) + body + b"".join(blobs)


def read_all(data: bytes, chunk: int = 1 << 20, allowance=None) -> list:
    reader = FrameReader(allowance)
    frames = []
    for start in range(0, len(data), chunk):
        reader.feed(data[start : start + chunk])
        while (frame := reader.next_frame()) is not None:
            frames.append(frame)
    return frames


def tensor_tree(index: int, dtype: str, shape: list) -> dict:
    return {"$tensor": index, "dtype": dtype, "shape": shape}


# -- frames ------------------------------------------------------------------------------------


def test_frames_split_at_every_byte_come_back_whole():
    data = (
        encode_frame({"progress": ["training", 1, 2]})
        + encode_frame({"id": 1}, [b"abc", b"", b"defg"])
        + encode_frame({"id": 2})
    )
    frames = read_all(data, chunk=1)
    assert [header.get("id") for header, _ in frames] == [None, 1, 2]
    assert [bytes(blob) for blob in frames[1][1]] == [b"abc", b"", b"defg"]


def test_a_header_that_claims_huge_tensor_data_allocates_nothing_before_it_arrives():
    # 400 MB claimed, 1 KB sent: the reader must not reserve the claim (a child that then hangs
    # would hold the grader's memory until the deadline).
    tracemalloc.start()
    try:
        reader = FrameReader()
        reader.feed(raw_frame(json.dumps({"id": 1, "blobs": [400_000_000]}).encode()) + b"x" * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reader.next_frame() is None and reader.pending
    assert peak < 1_000_000, peak


def test_a_large_tensor_costs_the_grader_its_size_once():
    """64 MB of tensor data, read in 1 MiB chunks as the sandbox does and decoded: the old reader
    held the buffer, a bytes copy of it and a bytearray copy for the tensor (3x)."""
    size = 64 * 1024**2
    data = encode_frame({"id": 1, "reply": tensor_tree(0, "uint8", [size])}, [bytes(size)])
    tracemalloc.start()
    try:
        ((header, blobs),) = read_all(data)
        value = decode_value(header["reply"], blobs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del data
    assert value.shape == (size,)
    assert peak < 1.3 * size, f"peak {peak / size:.2f}x the tensor's size"
    # No copy: the tensor's storage is the reader's buffer.
    address = ctypes.addressof(ctypes.c_char.from_buffer(blobs[0]))
    assert value.untyped_storage().data_ptr() == address


def test_allowance_bounds_what_a_task_may_receive():
    frame = encode_frame({"id": 1}, [bytes(1000)])
    assert len(read_all(frame * 3, allowance=3 * len(frame))) == 3
    with pytest.raises(ProtocolError, match="a task may receive"):
        read_all(frame * 3, allowance=3 * len(frame) - 1)


@pytest.mark.parametrize(
    "data, phrase",
    [
        (b"\xff\xff\xff\xff", "frame header of"),
        (raw_frame(b"[" * 200_000 + b"]" * 200_000), "not JSON"),  # RecursionError in json.loads
        (raw_frame(b'{"a": NaN}'), "not JSON"),
        (raw_frame(b"\xff\xfe"), "not JSON"),
        (raw_frame(b"[1, 2]"), "not an object"),
        (raw_frame(b'{"blobs": [-1]}'), "malformed or oversized"),
        (raw_frame(json.dumps({"blobs": [MAX_BLOBS, 1]}).encode()), "malformed or oversized"),
        (raw_frame(b'{"blobs": [true]}'), "malformed or oversized"),
    ],
)
def test_malformed_frames_raise_protocol_errors(data, phrase):
    with pytest.raises(ProtocolError, match=phrase):
        read_all(data)


# -- values ------------------------------------------------------------------------------------


def test_plain_values_and_tensors_decode():
    tree = {
        "$dict": {
            "a": {"$tuple": [1, 2.5, "s", None, True]},
            "t": tensor_tree(0, "float32", [2, 1]),
            "o": {"$opaque": "Model"},
            "n": {"$float": "nan"},
        }
    }
    value = decode_value(tree, [bytearray(struct.pack("<2f", 1.0, -2.0))])
    assert value["a"] == (1, 2.5, "s", None, True) and value["o"] == Opaque("Model")
    assert value["t"].tolist() == [[1.0], [-2.0]] and value["n"] != value["n"]


@pytest.mark.parametrize(
    "tree, blobs, phrase",
    [
        # a 0-element tensor whose strides overflow int64 (torch.empty raised RuntimeError: exit 3)
        (tensor_tree(0, "float32", [0, 2**62, 2**62]), [b""], "absurd shape"),
        (tensor_tree(0, "float32", [2**31, 2**31, 0, 1024]), [b""], "absurd shape"),
        (tensor_tree(0, ["float32"], [1]), [bytes(4)], "malformed tensor"),  # unhashable dtype: TypeError
        (tensor_tree(0, "complex64", [1]), [bytes(8)], "malformed tensor"),
        (tensor_tree(0, "float32", [1.0]), [bytes(4)], "malformed tensor"),
        (tensor_tree(0, "float32", [-1]), [bytes(4)], "malformed tensor"),
        (tensor_tree(True, "float32", [1]), [bytes(4)], "malformed tensor"),
        (tensor_tree(0, "float32", [1] * 9), [bytes(4)], "malformed tensor"),
        (tensor_tree(0, "float32", [3]), [bytes(4)], "don't match"),
        ({"$tuple": [tensor_tree(0, "uint8", [1]), tensor_tree(0, "uint8", [1])]}, [b"x"], "share the same bytes"),
        ({"$opaque": {"$dict": {}}}, [], "malformed value"),
        ({"$float": "1e400"}, [], "malformed float"),
        ({"$float": ["nan"]}, [], "malformed float"),
        ([1, 2], [], "bare list"),
        ({}, [], "malformed value"),
        ({"$set": [1]}, [], "malformed value"),
    ],
)
def test_malformed_values_raise_protocol_errors(tree, blobs, phrase):
    with pytest.raises(ProtocolError, match=phrase):
        decode_value(tree, [bytearray(blob) for blob in blobs])


def test_deep_values_raise_protocol_errors():
    deep = 1
    for _ in range(100_000):
        deep = {"$list": [deep]}
    with pytest.raises(ProtocolError, match="nested too deeply"):
        decode_value(deep, [])


# -- progress frames -----------------------------------------------------------------------------


def test_a_progress_frame_is_read():
    assert progress_event({"progress": ["training", 3, 10], "blobs": []}) == ("training", 3, 10)


@pytest.mark.parametrize(
    "header",
    [
        {"progress": ["training", "1", 10]},  # int("1") worked, int("x") was exit 3
        {"progress": ["training", 1.5, 10]},
        {"progress": ["training", True, 10]},
        {"progress": ["training", -1, 10]},
        {"progress": ["training", 11, 10]},
        {"progress": ["training", 1, 10**30]},
        {"progress": [["deep"], 1, 10]},
        {"progress": ["x" * 201, 1, 10]},
        {"progress": ["training", 1]},
        {"progress": "training 1/10"},
        {"progress": ["training", 1, 10], "reply": {"$dict": {"ok": True}}},
        {"progress": ["training", 1, 10], "blobs": [4]},
    ],
)
def test_malformed_progress_frames_raise_protocol_errors(header):
    with pytest.raises(ProtocolError, match="progress frame"):
        progress_event(header)


# -- fuzz ------------------------------------------------------------------------------------------


def random_tree(rng: random.Random, depth: int = 0):
    """A random JSON tree that leans towards what the decoder looks for."""
    choice = rng.randrange(12 if depth < 6 else 5)
    if choice == 0:
        return rng.choice([None, True, False, 0, -1, 2**63, 10**400, 1.5, -0.0, "", "nan", "\x1b[2J::error::x"])
    if choice == 1:
        return rng.randrange(-3, 2**64)
    if choice == 2:
        return rng.choice(["$tensor", "$list", "$tuple", "$dict", "$opaque", "$float", "inf", "bool", "x" * 300])
    if choice == 3:
        return [rng.randrange(-2, 2**63) for _ in range(rng.randrange(10))]
    if choice == 4:
        return {"$float": rng.choice(["nan", "inf", "-inf", "1", 1, None, ["nan"]])}
    if choice == 5:
        return {
            "$tensor": rng.choice([0, 1, -1, 99, True, "0", 2**70]),
            "dtype": rng.choice(["float32", "bool", "int64", "bfloat16", "x", 1, ["bool"], None]),
            "shape": rng.choice(
                [
                    [],
                    [0],
                    [1],
                    [2, 2],
                    [0, 2**62, 2**62],
                    [2**40, 2**40],
                    [-1],
                    [1.0],
                    "1",
                    [1] * 9,
                    [rng.randrange(0, 5) for _ in range(rng.randrange(9))],
                ]
            ),
        }
    if choice == 6:
        return {"$opaque": random_tree(rng, depth + 1)}
    if choice in (7, 8):
        kind = rng.choice(["$list", "$tuple", "$dict", "$set"])
        items = [random_tree(rng, depth + 1) for _ in range(rng.randrange(4))]
        return {kind: {str(i): item for i, item in enumerate(items)} if kind == "$dict" else items}
    if choice == 9:
        keys = ["$tensor", "dtype", "shape", "$list", "$dict", "blobs", "x"]
        return {rng.choice(keys): random_tree(rng, depth + 1) for _ in range(rng.randrange(4))}
    if choice == 10:
        return [random_tree(rng, depth + 1) for _ in range(rng.randrange(3))]
    nested = 1
    for _ in range(rng.choice([10, 30, 2_000])):
        nested = {rng.choice(["$list", "$tuple"]): [nested]}
    return nested


def random_blobs(rng: random.Random) -> list:
    return [bytearray(rng.randbytes(rng.choice([0, 1, 2, 4, 8, 16]))) for _ in range(rng.randrange(4))]


def test_fuzz_values_and_progress_only_raise_protocol_errors():
    rng = random.Random(20261206)
    outcomes = {"decoded": 0, "refused": 0}
    for _ in range(4000):
        tree, blobs = random_tree(rng), random_blobs(rng)
        try:
            decode_value(tree, blobs)
            outcomes["decoded"] += 1
        except ProtocolError:
            outcomes["refused"] += 1
        try:
            progress_event({"progress": rng.choice([tree, [tree, 1, 2], ["p", tree, 2 ** rng.randrange(70)]])})
        except ProtocolError:
            pass
    assert min(outcomes.values()) > 200, outcomes  # the generator reaches both sides


def test_fuzz_bytes_only_raise_protocol_errors():
    rng = random.Random(61206)
    valid = [
        encode_frame({"progress": ["training", 1, 2]}),
        encode_frame({"id": 1, "reply": {"$dict": {"ok": True, "value": tensor_tree(0, "float32", [2])}}}, [bytes(8)]),
    ]
    outcomes = {"frames": 0, "refused": 0}
    for _ in range(3000):
        kind = rng.randrange(3)
        if kind == 0:
            data = rng.randbytes(rng.randrange(64))
        else:
            data = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 4)):  # flip, cut or insert bytes
                at = rng.randrange(len(data))
                if rng.random() < 0.6:
                    data[at] = rng.randrange(256)
                elif rng.random() < 0.5:
                    del data[at:]
                    break
                else:
                    data[at:at] = rng.randbytes(rng.randrange(1, 4))
            if kind == 2:
                try:
                    body = json.dumps({"id": 1, "reply": random_tree(rng)}, allow_nan=False).encode()
                except RecursionError:  # too deep for json.dumps: the same, written by hand
                    body = b'{"id": 1, "reply": ' + b'{"$list": [' * 5000 + b"1" + b"]}" * 5000 + b"}"
                data = raw_frame(body)
        try:
            for header, blobs in read_all(bytes(data), chunk=rng.choice([1, 7, 1 << 20])):
                outcomes["frames"] += 1
                if "progress" in header:
                    progress_event(header)
                decode_value(header.get("reply"), blobs)
        except ProtocolError:
            outcomes["refused"] += 1
    assert min(outcomes.values()) > 100, outcomes
