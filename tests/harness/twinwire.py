# SPDX-License-Identifier: Apache-2.0
# The twin.v1 protobuf module for tests (generated with protoc when missing) and a hand encoder of the wire format for malformed payloads.
"""twin_pb2 loading, Telemetry encoding, and Wire: protobuf wire format by hand."""

import importlib
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from twinutil import now_ms

REPO_DIR = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("TWIN_BUILD_DIR") or REPO_DIR / "build")
PROTO_DIR = REPO_DIR / "proto"

_pb = None


def load_proto():
    """The generated twin.v1 module (twin_pb2). Taken from PYTHONPATH (CTest sets it to the
    build's generated dir); otherwise generated with protoc into the build dir (or a temp dir
    when that is not writable), so a test file can also be run by hand."""
    global _pb
    if _pb is not None:
        return _pb
    try:
        _pb = importlib.import_module("twin.v1.twin_pb2")
        return _pb
    except ImportError:
        pass
    out = BUILD_DIR / "tests" / "integration" / "pb"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError:
        out = Path(tempfile.mkdtemp(prefix="twin-pb-"))
    subprocess.run(["protoc", f"--proto_path={PROTO_DIR}", f"--python_out={out}",
                    str(PROTO_DIR / "twin" / "v1" / "twin.proto")],
                   check=True, timeout=60)
    sys.path.insert(0, str(out))
    importlib.invalidate_caches()
    _pb = importlib.import_module("twin.v1.twin_pb2")
    return _pb


def telemetry(samples, asset_id="", seq=0, ts_ms=None):
    """An encoded twin.v1.Telemetry. `samples`: dict or (signal, value) pairs; ts_ms None
    means now."""
    pb = load_proto()
    msg = pb.Telemetry(asset_id=asset_id, seq=seq, ts_ms=now_ms() if ts_ms is None else ts_ms)
    items = samples.items() if isinstance(samples, dict) else samples
    for signal_name, value in items:
        msg.samples.add(signal=signal_name, value=value)
    return msg.SerializeToString()


class Wire:
    """Hand-encoded protobuf wire format, for payloads the protobuf library refuses to build
    (invalid UTF-8, NUL bytes) and for truncated or malformed messages."""

    @staticmethod
    def varint(n):
        n &= (1 << 64) - 1  # int64 negatives are 10-byte two's complement varints
        out = bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            if n:
                out.append(b | 0x80)
            else:
                out.append(b)
                return bytes(out)

    @classmethod
    def key(cls, field, wire_type):
        return cls.varint((field << 3) | wire_type)

    @classmethod
    def f_varint(cls, field, n):
        return cls.key(field, 0) + cls.varint(n)

    @classmethod
    def f_bytes(cls, field, data):
        return cls.key(field, 2) + cls.varint(len(data)) + bytes(data)

    @classmethod
    def f_double(cls, field, value):
        return cls.key(field, 1) + struct.pack("<d", value)

    @classmethod
    def sample(cls, signal_name, value):
        """A Sample body; signal as bytes (anything) or str (UTF-8)."""
        if isinstance(signal_name, str):
            signal_name = signal_name.encode()
        return cls.f_bytes(1, signal_name) + cls.f_double(2, value)

    @classmethod
    def telemetry(cls, samples, asset_id=b"", seq=0, ts_ms=None):
        """A Telemetry with fields in number order, default values omitted as proto3 does."""
        if isinstance(asset_id, str):
            asset_id = asset_id.encode()
        ts_ms = now_ms() if ts_ms is None else ts_ms
        out = b""
        if asset_id:
            out += cls.f_bytes(1, asset_id)
        if ts_ms:
            out += cls.f_varint(2, ts_ms)
        if seq:
            out += cls.f_varint(3, seq)
        items = samples.items() if isinstance(samples, dict) else samples
        for signal_name, value in items:
            out += cls.f_bytes(4, cls.sample(signal_name, value))
        return out
