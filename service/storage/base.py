"""The storage interface every adapter implements, and its errors.

Calls are synchronous (the minio SDK is, and workers are); the app runs them in a
thread pool so its event loop never waits on storage.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from service.storage.uploads import Sink

CHUNK = 1024 * 1024
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class StorageError(Exception):
    pass


class ObjectNotFound(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no object at {key!r}")
        self.key = key


class InvalidKey(StorageError, ValueError):
    pass


class InvalidRange(StorageError, ValueError):
    pass


def check_key(key: str) -> str:
    """Keys are relative paths of safe segments: no '..', no leading '/', no empty parts."""
    if len(key) > 512 or not _KEY.match(key) or any(p in {".", ".."} for p in key.split("/")):
        raise InvalidKey(f"invalid object key {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    if prefix == "":
        return prefix
    check_key(prefix.rstrip("/"))
    return prefix


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    content_type: str
    modified: datetime


class ObjectStore(ABC):
    """What Kumpul needs of object storage."""

    name: str

    @abstractmethod
    def put(self, key: str, stream: BinaryIO, *, length: int | None = None,
            content_type: str = "application/octet-stream") -> ObjectInfo:
        """Store a stream of unknown or known length without holding it whole in memory.

        The object appears whole or not at all."""

    def put_file(self, key: str, path: Path,
                 content_type: str = "application/octet-stream") -> ObjectInfo:
        with path.open("rb") as fh:
            return self.put(key, fh, length=path.stat().st_size, content_type=content_type)

    @abstractmethod
    def get(self, key: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream the bytes [offset, offset+length) of an object."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo: ...

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object; removing a missing one is not an error."""

    def delete_prefix(self, prefix: str) -> int:
        keys = [info.key for info in self.list(check_key(prefix.rstrip("/")) + "/")]
        for key in keys:
            self.delete(key)
        return len(keys)

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with prefix, in key order."""

    @abstractmethod
    def signed_url(self, key: str, seconds: int) -> str:
        """A short-lived URL that lets its holder GET one object, Range requests included."""

    @abstractmethod
    def check(self) -> None:
        """Raise StorageError unless the store is reachable and usable."""

    @abstractmethod
    def upload_sink(self, spool_dir: Path) -> Sink:
        """Where resumable uploads into this store keep their bytes until they finish."""


def check_range(key: str, size: int, offset: int, length: int | None) -> int:
    """Validate a byte range against an object size; returns the byte count to read."""
    if offset < 0 or (length is not None and length < 0):
        raise InvalidRange(f"negative range for {key!r}")
    if offset > size or (offset == size and size > 0 and length != 0):
        raise InvalidRange(f"range starts at {offset}, past the end of {key!r} ({size} bytes)")
    available = size - offset
    return available if length is None else min(length, available)
