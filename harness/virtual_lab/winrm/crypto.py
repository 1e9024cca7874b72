"""MS-WSMV 2.2.9.1 message encryption framing (`multipart/encrypted`) over an NTLM/SPNEGO context.

An encrypted request or response body looks like this (the boundary is fixed by the clients):

    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/HTTP-SPNEGO-session-encrypted\\r\\n
    \\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=N\\r\\n
    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/octet-stream\\r\\n
    <int32 LE signature length><signature><sealed bytes>--Encrypted Boundary--\\r\\n

The `Sealer` role is what pyspnego's accepting context offers (`wrap`/`unwrap`).

>>> body, ctype = seal(ctx, b"<s:Envelope/>")                        # doctest: +SKIP
>>> unseal(ctx, body) == b"<s:Envelope/>"                           # doctest: +SKIP
True
"""

from __future__ import annotations

import struct
from typing import Any, Protocol

PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
BOUNDARY = b"--Encrypted Boundary"
CONTENT_TYPE = f'multipart/encrypted;protocol="{PROTOCOL}";boundary="Encrypted Boundary"'


class EncryptionError(ValueError):
    """The body is not a well-formed MS-WSMV encrypted message or does not verify."""


class Sealer(Protocol):
    """The part of a security context that seals and unseals messages."""

    def wrap(self, data: bytes, encrypt: bool = ...) -> Any: ...

    def unwrap(self, data: bytes) -> Any: ...


def is_encrypted(content_type: str) -> bool:
    """True if the Content-Type announces an SPNEGO session-encrypted body."""
    lowered = content_type.lower()
    return lowered.startswith("multipart/encrypted") and PROTOCOL.lower() in lowered


def unseal(ctx: Sealer, body: bytes) -> bytes:
    """Decrypt one MS-WSMV encrypted body; the length in `OriginalContent` must match."""
    parts = [p for p in body.split(BOUNDARY + b"\r\n") if p]
    if len(parts) < 2:
        raise EncryptionError("encrypted body has no header and payload parts")
    header, payload = parts[0], parts[1]
    try:
        expected = int(header.split(b"Length=")[1].split(b"\r\n")[0])
    except (IndexError, ValueError) as exc:
        raise EncryptionError("encrypted body has no OriginalContent Length") from exc
    if payload.endswith(BOUNDARY + b"--\r\n"):
        payload = payload[: -len(BOUNDARY + b"--\r\n")]
    prefix = b"\tContent-Type: application/octet-stream\r\n"
    if not payload.startswith(prefix):
        raise EncryptionError("encrypted payload part has no octet-stream header")
    data = payload[len(prefix) :]
    if len(data) < 4:
        raise EncryptionError("encrypted payload is truncated")
    sig_len = struct.unpack("<i", data[:4])[0]
    try:
        plain = ctx.unwrap(data[4 : 4 + sig_len] + data[4 + sig_len :]).data
    except Exception as exc:  # pyspnego raises several types for bad signatures
        raise EncryptionError(f"cannot unseal message: {type(exc).__name__}") from exc
    if len(plain) != expected:
        raise EncryptionError("decrypted length does not match OriginalContent")
    return bytes(plain)


def seal(ctx: Sealer, plain: bytes) -> tuple[bytes, str]:
    """Encrypt `plain` into an MS-WSMV body; returns (body, Content-Type)."""
    wrapped = ctx.wrap(plain).data
    # NTLM: the first 16 bytes of the wrapped token are the signature, the rest is sealed data.
    signature, sealed = wrapped[:16], wrapped[16:]
    body = (
        BOUNDARY + b"\r\n"
        b"\tContent-Type: " + PROTOCOL.encode() + b"\r\n"
        b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
        + str(len(plain)).encode()
        + b"\r\n"
        + BOUNDARY
        + b"\r\n"
        b"\tContent-Type: application/octet-stream\r\n"
        + struct.pack("<i", len(signature))
        + signature
        + sealed
        + BOUNDARY
        + b"--\r\n"
    )
    return body, CONTENT_TYPE
