"""Where an unfinished upload's bytes live, so that they survive restarts and never sit in memory.

- Local store: bytes are appended to one staging file, adopted as the object at the end.
- S3 store: bytes are spooled on disk and shipped as multipart parts of PART_SIZE; the
  parts shipped so far are kept on the upload row (`upload.parts`).

Every PATCH is a `Write`: it appends, and then either commits (the caller saves the row)
or rolls back to where it started (a failed checksum). The offset a sink reports is always
data that is safely stored: committed parts plus the current spool file, so a crash at
any point can only make the offset go back to a part boundary, never past real data.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from service.db.models import Upload
from service.storage import ObjectInfo, ObjectStore
from service.storage.keys import clip_source
from service.storage.local import LocalStore
from service.storage.s3 import S3Store

PART_SIZE = 8 * 1024 * 1024  # S3 needs >= 5 MiB for every part but the last
SHIPPING = 2  # parts uploading at once: most of minio put_object's 3, in less memory


class Sink(ABC):
    @abstractmethod
    def open(self, upload: Upload) -> None:
        """Prepare storage for a new upload (sets fields on the row)."""

    @abstractmethod
    def offset(self, upload: Upload) -> int:
        """Bytes safely stored for this upload."""

    @abstractmethod
    def begin(self, upload: Upload) -> Write: ...

    @abstractmethod
    def head(self, upload: Upload, size: int) -> bytes:
        """The first bytes stored (only asked while fewer than a part have arrived)."""

    @abstractmethod
    def finish(self, upload: Upload) -> ObjectInfo:
        """Make the complete upload the clip's source object."""

    @abstractmethod
    def abort(self, upload: Upload) -> None:
        """Remove every byte of an upload that will not finish."""


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


def open_sink(store: ObjectStore, spool_dir: Path) -> Sink:
    if isinstance(store, LocalStore):
        return AppendSink(store)
    if isinstance(store, S3Store):
        return MultipartSink(store, spool_dir)
    raise TypeError(f"no upload sink for {type(store).__name__}")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


# --- local: append in place ---------------------------------------------------------------

class AppendSink(Sink):
    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def _path(self, upload: Upload) -> Path:
        return self.store.staging_path(upload.id)

    def open(self, upload: Upload) -> None:
        self._path(upload).touch()

    def offset(self, upload: Upload) -> int:
        return min(_size(self._path(upload)), upload.length)

    def begin(self, upload: Upload) -> Write:
        return _AppendWrite(self._path(upload))

    def head(self, upload: Upload, size: int) -> bytes:
        with self._path(upload).open("rb") as fh:
            return fh.read(size)

    def finish(self, upload: Upload) -> ObjectInfo:
        return self.store.adopt(self._path(upload), clip_source(upload.clip_id))

    def abort(self, upload: Upload) -> None:
        self._path(upload).unlink(missing_ok=True)


class _AppendWrite(Write):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = _size(path)
        self.fh = path.open("ab")

    def append(self, pieces: Sequence[bytes]) -> None:
        self.fh.writelines(pieces)

    def commit(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()

    def rollback(self) -> None:
        self.fh.close()
        os.truncate(self.path, self.start)


# --- S3: spool and ship multipart parts ---------------------------------------------------

class MultipartSink(Sink):
    def __init__(self, store: S3Store, spool_dir: Path) -> None:
        self.store = store
        self.spool_dir = spool_dir

    @staticmethod
    def _parts(upload: Upload) -> list[list[Any]]:
        parts: list[list[Any]] = list(upload.parts.get("parts", []))  # [number, etag, size]
        return parts

    def spool(self, upload: Upload, number: int) -> Path:
        return self.spool_dir / f"{upload.id}.{number}"

    def open(self, upload: Upload) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        upload.storage_upload_id = self.store.multipart_create(clip_source(upload.clip_id))
        upload.parts = {"parts": []}

    def offset(self, upload: Upload) -> int:
        parts = self._parts(upload)
        shipped = sum(int(p[2]) for p in parts)
        return min(shipped + _size(self.spool(upload, len(parts) + 1)), upload.length)

    def begin(self, upload: Upload) -> Write:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.spool_dir.glob(f"{upload.id}.*"):  # left by a crash mid-PATCH
            if stale != self.spool(upload, len(self._parts(upload)) + 1):
                stale.unlink(missing_ok=True)
        return _MultipartWrite(self, upload)

    def head(self, upload: Upload, size: int) -> bytes:
        if self._parts(upload):
            raise ValueError("the head of an upload is only kept before its first part ships")
        with self.spool(upload, 1).open("rb") as fh:
            return fh.read(size)

    def ship(self, upload: Upload, path: Path, number: int) -> list[Any]:
        data = path.read_bytes()  # one part: at most PART_SIZE plus one buffer
        etag = self.store.multipart_put(clip_source(upload.clip_id), str(upload.storage_upload_id),
                                        number, data)
        return [number, etag, len(data)]

    def finish(self, upload: Upload) -> ObjectInfo:
        parts = self._parts(upload)
        last = self.spool(upload, len(parts) + 1)
        if _size(last) or not parts:
            parts.append(self.ship(upload, last, len(parts) + 1))
            upload.parts = {"parts": parts}
        info = self.store.multipart_complete(clip_source(upload.clip_id),
                                             str(upload.storage_upload_id),
                                             [(int(n), str(e)) for n, e, _ in parts])
        last.unlink(missing_ok=True)
        return info

    def abort(self, upload: Upload) -> None:
        if upload.storage_upload_id:
            self.store.multipart_abort(clip_source(upload.clip_id), upload.storage_upload_id)
        for path in self.spool_dir.glob(f"{upload.id}.*"):
            path.unlink(missing_ok=True)


class _MultipartWrite(Write):
    def __init__(self, sink: MultipartSink, upload: Upload) -> None:
        self.sink = sink
        self.upload = upload
        self.parts = sink._parts(upload)
        self.start_parts = list(self.parts)
        self.number = len(self.parts) + 1
        self.start_number = self.number
        self.path = sink.spool(upload, self.number)
        self.start_size = _size(self.path)
        self.fh = self.path.open("ab")
        # Full parts ship on helper threads while the next spool fills, as minio's own
        # put_object does: at most SHIPPING parts in memory, recorded in order.
        self._shipper = ThreadPoolExecutor(SHIPPING, thread_name_prefix="kumpul-part")
        self._shipping: deque[Future[list[Any]]] = deque()

    def append(self, pieces: Sequence[bytes]) -> None:
        for piece in pieces:
            self._append(piece)

    def _append(self, data: bytes) -> None:
        self.fh.write(data)
        if self.fh.tell() >= PART_SIZE:
            self.fh.close()
            if len(self._shipping) >= SHIPPING:
                self._landed(1)
            self._shipping.append(self._shipper.submit(self.sink.ship, self.upload, self.path,
                                                       self.number))
            self.number += 1
            self.path = self.sink.spool(self.upload, self.number)
            self.fh = self.path.open("ab")

    def _landed(self, count: int | None = None) -> None:
        """Wait for the oldest `count` parts in flight (all by default), in order."""
        for _ in range(len(self._shipping) if count is None else count):
            self.parts.append(self._shipping.popleft().result())

    def commit(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        try:
            self._landed()
        finally:
            self._shipper.shutdown()
        self.upload.parts = {"parts": self.parts}
        # Spools of shipped parts stay until the row is saved; the next `begin` clears them.

    def rollback(self) -> None:
        self.fh.close()
        with contextlib.suppress(Exception):
            self._landed()
        self._shipper.shutdown()
        for number in range(self.start_number + 1, self.number + 1):
            self.sink.spool(self.upload, number).unlink(missing_ok=True)
        os.truncate(self.sink.spool(self.upload, self.start_number), self.start_size)
        self.upload.parts = {"parts": self.start_parts}
