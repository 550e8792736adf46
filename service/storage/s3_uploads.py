"""The S3 store's upload sink: spool on disk, ship multipart parts of PART_SIZE while the
next one fills; the parts shipped so far are kept on the upload's row."""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.storage.base import ObjectInfo
from service.storage.uploads import Sink, UploadRecord, Write, file_size, target_key

if TYPE_CHECKING:
    from service.storage.s3 import S3Store

PART_SIZE = 8 * 1024 * 1024  # S3 needs >= 5 MiB for every part but the last
SHIPPING = 2  # parts uploading at once: most of minio put_object's 3, in less memory


class MultipartSink(Sink):
    def __init__(self, store: S3Store, spool_dir: Path) -> None:
        self.store = store
        self.spool_dir = spool_dir

    @staticmethod
    def _parts(upload: UploadRecord) -> list[list[Any]]:
        parts: list[list[Any]] = list(upload.parts.get("parts", []))  # [number, etag, size]
        return parts

    def spool(self, upload: UploadRecord, number: int) -> Path:
        return self.spool_dir / f"{upload.id}.{number}"

    def open(self, upload: UploadRecord) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        upload.storage_upload_id = self.store.multipart_create(target_key(upload))
        upload.parts = {"parts": []}

    def offset(self, upload: UploadRecord) -> int:
        parts = self._parts(upload)
        shipped = sum(int(p[2]) for p in parts)
        return min(shipped + file_size(self.spool(upload, len(parts) + 1)), upload.length)

    def begin(self, upload: UploadRecord) -> Write:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.spool_dir.glob(f"{upload.id}.*"):  # left by a crash mid-PATCH
            if stale != self.spool(upload, len(self._parts(upload)) + 1):
                stale.unlink(missing_ok=True)
        return _MultipartWrite(self, upload)

    def head(self, upload: UploadRecord, size: int) -> bytes:
        if self._parts(upload):
            raise ValueError("the head of an upload is only kept before its first part ships")
        with self.spool(upload, 1).open("rb") as fh:
            return fh.read(size)

    def ship(self, upload: UploadRecord, path: Path, number: int) -> list[Any]:
        data = path.read_bytes()  # one part: at most PART_SIZE plus one buffer
        etag = self.store.multipart_put(target_key(upload), str(upload.storage_upload_id),
                                        number, data)
        return [number, etag, len(data)]

    def finish(self, upload: UploadRecord) -> ObjectInfo:
        parts = self._parts(upload)
        last = self.spool(upload, len(parts) + 1)
        if file_size(last) or not parts:
            parts.append(self.ship(upload, last, len(parts) + 1))
            upload.parts = {"parts": parts}
        info = self.store.multipart_complete(target_key(upload), str(upload.storage_upload_id),
                                             [(int(n), str(e)) for n, e, _ in parts])
        last.unlink(missing_ok=True)
        return info

    def abort(self, upload: UploadRecord) -> None:
        if upload.storage_upload_id:
            self.store.multipart_abort(target_key(upload), upload.storage_upload_id)
        for path in self.spool_dir.glob(f"{upload.id}.*"):
            path.unlink(missing_ok=True)


class _MultipartWrite(Write):
    def __init__(self, sink: MultipartSink, upload: UploadRecord) -> None:
        self.sink = sink
        self.upload = upload
        self.parts = sink._parts(upload)
        self.start_parts = list(self.parts)
        self.number = len(self.parts) + 1
        self.start_number = self.number
        self.path = sink.spool(upload, self.number)
        self.start_size = file_size(self.path)
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
