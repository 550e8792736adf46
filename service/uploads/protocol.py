"""tus 1.0 headers: parsing and checking, with the protocol's own status codes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import datetime
from email.utils import format_datetime
from typing import Protocol

from starlette.requests import Request

from service.errors import ApiError, BadRequest, UnsupportedMediaType

VERSION = "1.0.0"
EXTENSIONS = "creation,termination,expiration,checksum"
CHECKSUMS = ("sha1", "sha256", "md5")
OFFSET_TYPE = "application/offset+octet-stream"
_META_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_METADATA_BYTES = 4096
MAX_METADATA_KEYS = 16


class PreconditionFailed(ApiError):
    status = 412
    code = "tus_version"


class ChecksumMismatch(ApiError):
    status = 460
    code = "checksum_mismatch"


def base_headers() -> dict[str, str]:
    return {"Tus-Resumable": VERSION, "Cache-Control": "no-store"}


def expires_header(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def check_version(request: Request) -> None:
    sent = request.headers.get("tus-resumable")
    if sent != VERSION:
        raise PreconditionFailed(
            "This server speaks tus %(version)s; the request said %(sent)s.", version=VERSION,
            sent=sent or "nothing",
            hint="Use a tus 1.0 client such as tus-js-client, Uppy or tuspy.",
            headers={"Tus-Version": VERSION})


def number_header(request: Request, name: str) -> int:
    raw = request.headers.get(name)
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise BadRequest("%(name)s must be a non-negative whole number (ASCII digits).",
                         name=name,
                         code=f"bad_{name.lower().replace('-', '_')}")
    return int(raw)


def metadata(request: Request) -> dict[str, str]:
    """Upload-Metadata: comma-separated `key base64value` pairs."""
    raw = request.headers.get("upload-metadata", "")
    if len(raw) > MAX_METADATA_BYTES or raw.count(",") >= MAX_METADATA_KEYS:
        raise BadRequest("Upload-Metadata is limited to %(keys)s keys and %(size_bytes)s.",
                         code="metadata_too_large",
                         hint="Send only community, release, prompt, title and filename.",
                         keys=MAX_METADATA_KEYS, size_bytes=MAX_METADATA_BYTES)
    out: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        key, _, value = pair.partition(" ")
        if not _META_KEY.match(key) or key in out:
            raise BadRequest("Upload-Metadata has a bad or repeated key '%(key)s'.", key=key[:64],
                             code="bad_metadata")
        try:
            out[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            if "\x00" in out[key]:
                raise UnicodeDecodeError("utf-8", b"", 0, 1, "NUL")
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest("Upload-Metadata value of '%(key)s' is not base64 UTF-8 text.",
                             key=key,
                             code="bad_metadata") from None
    return out


def check_patch_type(request: Request) -> None:
    if request.headers.get("content-type", "").split(";")[0].strip() != OFFSET_TYPE:
        raise UnsupportedMediaType("PATCH bodies must be %(type)s.", type=OFFSET_TYPE,
                                   code="bad_content_type",
                                   headers={"Tus-Resumable": VERSION})


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


def checksum(request: Request) -> tuple[Hasher, bytes] | None:
    """The hasher and expected digest from Upload-Checksum, if the client sent one."""
    raw = request.headers.get("upload-checksum")
    if not raw:
        return None
    algorithm, _, value = raw.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise BadRequest("Checksum algorithm '%(algorithm)s' is not supported.",
                         algorithm=algorithm,
                         code="bad_checksum_algorithm",
                         hint="Use one of %(choices)s.", choices=", ".join(CHECKSUMS))
    try:
        expected = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise BadRequest("Upload-Checksum is not base64.", code="bad_checksum") from None
    return hashlib.new(algorithm), expected
