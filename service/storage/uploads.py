"""Where an unfinished upload's bytes live, so that they survive restarts and never sit in
memory. Each store makes its own sink (`ObjectStore.upload_sink`):

- local store: bytes are appended to one staging file, adopted as the object at the end;
- S3 store: full parts ship as S3 multipart parts, the rest is kept as a temporary object;
  the row records both (`parts`), so any node can take the next PATCH.

Every PATCH is a `Write`: it appends, and then either commits (the caller saves the row)
or rolls back to where it started (a failed checksum). The offset a sink reports is always
data that is safely stored, so a crash at any point can only make the offset go back to a
part boundary, never past real data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from service.storage.base import ObjectInfo
from service.storage.keys import clip_source


class UploadRecord(Protocol):
    """What a sink reads and writes of an upload's row."""

    id: str
    clip_id: str
    length: int
    parts: dict[str, Any]
    storage_upload_id: str | None


def target_key(upload: UploadRecord) -> str:
    """The object an upload becomes: its clip's source."""
    return clip_source(upload.clip_id)


class Sink(ABC):
    @abstractmethod
    def open(self, upload: UploadRecord) -> None:
        """Prepare storage for a new upload (sets fields on the row)."""

    @abstractmethod
    def offset(self, upload: UploadRecord) -> int:
        """Bytes safely stored for this upload."""

    @abstractmethod
    def begin(self, upload: UploadRecord) -> Write: ...

    @abstractmethod
    def head(self, upload: UploadRecord, size: int) -> bytes:
        """The first bytes stored (only asked while fewer than a part have arrived)."""

    @abstractmethod
    def finish(self, upload: UploadRecord) -> ObjectInfo:
        """Make the complete upload its target object."""

    @abstractmethod
    def abort(self, upload: UploadRecord) -> None:
        """Remove every byte of an upload that will not finish."""

    def sweep(self) -> None:  # noqa: B027 - most sinks keep nothing on this host
        """At start: remove this host's scratch left by a process that crashed."""


class Write(ABC):
    """One PATCH's worth of appends."""

    @abstractmethod
    def append(self, pieces: Sequence[bytes]) -> None:
        """Append the pieces in order (as received: no joining, no copies)."""

    @abstractmethod
    def commit(self) -> None:
        """Make the appended bytes durable (fsync); the caller then saves the row."""

    @abstractmethod
    def rollback(self) -> None:
        """Forget everything appended since `begin`."""

    def saved(self) -> None:  # noqa: B027 - most writes have nothing to tidy
        """The caller saved the row after `commit`: objects it no longer names may go."""


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
