"""Job (de)serialization for arq with msgspec msgpack — never pickle; exceptions travel as JobError."""

from __future__ import annotations

from typing import Any

import msgspec

EXCEPTION_EXT = 1
"""msgpack extension code of an exception stored as a job result."""


class JobError(Exception):
    """A job's exception after a trip through Redis: the original type name and message, nothing executable."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, BaseException):
        if isinstance(obj, JobError):
            payload = [obj.type_name, obj.message]
        else:
            payload = [f"{type(obj).__module__}.{type(obj).__qualname__}", str(obj)]
        return msgspec.msgpack.Ext(EXCEPTION_EXT, msgspec.msgpack.encode(payload))
    raise TypeError(f"a job cannot carry {type(obj).__name__}; pass ids and plain data")


def _ext_hook(code: int, data: memoryview) -> Any:
    if code == EXCEPTION_EXT:
        type_name, message = msgspec.msgpack.decode(data, type=tuple[str, str])
        return JobError(type_name, message)
    raise NotImplementedError(f"unknown msgpack extension {code}")


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_decoder = msgspec.msgpack.Decoder(ext_hook=_ext_hook)


def serialize(data: dict[str, Any]) -> bytes:
    """arq job_serializer: a job or result dict as msgpack."""
    return _encoder.encode(data)


def deserialize(data: bytes) -> dict[str, Any]:
    """arq job_deserializer: msgpack back to a dict (tuples come back as lists, datetimes as datetimes)."""
    decoded = _decoder.decode(data)
    if not isinstance(decoded, dict):
        raise ValueError("a job payload must be a msgpack map")
    return decoded
