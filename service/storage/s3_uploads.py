"""The S3 store's upload sink, after tusd's S3 store: nothing of an upload lives on one
host's disk between requests, so any node can take its next PATCH.

- The object is an S3 multipart upload. A PATCH ships every full part (PART_SIZE) as it
  fills, up to SHIPPING at once, from a spool file that lives only for that request.
- What is left past the last full part when the PATCH ends (the tail) is stored as a
  temporary object, `clips/{id}/upload/tail-{parts}.part`; the next PATCH, on whichever node,
  reads it back first.
- The row records what counts: the parts shipped (number, etag, size) and the tail's size.
  It is saved after the objects are stored, so a crash in between loses nothing: the row
  still names the previous parts and tail, and those objects are still there (a new tail of
  the same part count only ever extends the old one; a tail of a new count has a new key).
- A PATCH that completes the upload ships its last bytes as the final part: no tail.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.storage.base import ObjectInfo
from service.storage.keys import clip_upload, clip_upload_tail
from service.storage.uploads import Sink, UploadRecord, Write, file_size, target_key

if TYPE_CHECKING:
    from service.storage.s3 import S3Store

PART_SIZE = 8 * 1024 * 1024  # S3 needs >= 5 MiB for every part but the last
SHIPPING = 2  # parts uploading at once: most of minio put_object's 3, in less memory


def committed_parts(upload: UploadRecord) -> list[list[Any]]:
    parts: list[list[Any]] = list(upload.parts.get("parts", []))  # [number, etag, size]
    return parts


def tail_size(upload: UploadRecord) -> int:
    return int(upload.parts.get("tail", 0))


class MultipartSink(Sink):
    def __init__(self, store: S3Store, spool_dir: Path) -> None:
        self.store = store
        self.spool_dir = spool_dir  # this node's scratch for the part being filled

    def spool(self, upload: UploadRecord) -> Path:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        return self.spool_dir / f"{upload.id}.{uuid.uuid4().hex}"

    def tail_key(self, upload: UploadRecord, parts: int | None = None) -> str:
        count = len(committed_parts(upload)) if parts is None else parts
        return clip_upload_tail(upload.clip_id, count)

    def open(self, upload: UploadRecord) -> None:
        upload.storage_upload_id = self.store.multipart_create(target_key(upload))
        upload.parts = {"parts": [], "tail": 0}

    def offset(self, upload: UploadRecord) -> int:
        shipped = sum(int(p[2]) for p in committed_parts(upload))
        return min(shipped + tail_size(upload), upload.length)

    def begin(self, upload: UploadRecord) -> Write:
        for stale in self.spool_dir.glob(f"{upload.id}.*"):  # left by a crash mid-PATCH
            stale.unlink(missing_ok=True)
        return _MultipartWrite(self, upload)

    def sweep(self, idle_seconds: float = 3600) -> None:
        """Spool files idle this long belong to no running request (one writes its spool
        all the time): a crashed process's. Their uploads go on from the store."""
        if not self.spool_dir.exists():
            return
        cutoff = time.time() - idle_seconds
        for path in self.spool_dir.iterdir():
            with contextlib.suppress(OSError):
                if path.is_file() and not path.name.startswith("asset-") \
                        and path.stat().st_mtime < cutoff:
                    path.unlink()

    def head(self, upload: UploadRecord, size: int) -> bytes:
        if committed_parts(upload):
            raise ValueError("the head of an upload is only kept before its first part ships")
        return b"".join(self.store.get(self.tail_key(upload), 0, min(size, tail_size(upload))))

    def ship(self, upload: UploadRecord, path: Path, number: int) -> list[Any]:
        data = path.read_bytes()  # one part: at most PART_SIZE plus one buffer
        etag = self.store.multipart_put(target_key(upload), str(upload.storage_upload_id),
                                        number, data)
        return [number, etag, len(data)]

    def finish(self, upload: UploadRecord) -> ObjectInfo:
        parts = committed_parts(upload)
        if tail_size(upload) or not parts:  # completed without its last PATCH: rare
            path = self.spool(upload)
            try:
                self._read_tail(upload, path)
                parts.append(self.ship(upload, path, len(parts) + 1))
            finally:
                path.unlink(missing_ok=True)
            upload.parts = {"parts": parts, "tail": 0}
        info = self.store.multipart_complete(target_key(upload), str(upload.storage_upload_id),
                                             [(int(n), str(e)) for n, e, _ in parts])
        self.store.delete_prefix(clip_upload(upload.clip_id))
        return info

    def _read_tail(self, upload: UploadRecord, path: Path) -> None:
        with path.open("ab") as fh:
            if tail_size(upload):
                for chunk in self.store.get(self.tail_key(upload), 0, tail_size(upload)):
                    fh.write(chunk)

    def abort(self, upload: UploadRecord) -> None:
        if upload.storage_upload_id:
            self.store.multipart_abort(target_key(upload), upload.storage_upload_id)
        self.store.delete_prefix(clip_upload(upload.clip_id))
        for path in self.spool_dir.glob(f"{upload.id}.*"):
            path.unlink(missing_ok=True)


class _MultipartWrite(Write):
    def __init__(self, sink: MultipartSink, upload: UploadRecord) -> None:
        self.sink = sink
        self.upload = upload
        self.parts = committed_parts(upload)
        self.start = (list(self.parts), tail_size(upload))
        self.shipped_bytes = sum(int(p[2]) for p in self.parts)
        self.number = len(self.parts) + 1
        self.path = sink.spool(upload)
        sink._read_tail(upload, self.path)  # the stored tail starts this PATCH's spool
        self.fh = self.path.open("ab")
        self.spools = [self.path]
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
            self._ship_spool()

    def _ship_spool(self) -> None:
        self.fh.close()
        if len(self._shipping) >= SHIPPING:
            self._landed(1)
        self._shipping.append(self._shipper.submit(self.sink.ship, self.upload, self.path,
                                                   self.number))
        self.number += 1
        self.path = self.sink.spool(self.upload)
        self.spools.append(self.path)
        self.fh = self.path.open("ab")

    def _landed(self, count: int | None = None) -> None:
        """Wait for the oldest `count` parts in flight (all by default), in order."""
        for _ in range(len(self._shipping) if count is None else count):
            part = self._shipping.popleft().result()
            self.shipped_bytes += int(part[2])
            self.parts.append(part)

    def commit(self) -> None:
        """Ship the full parts; store the rest as the tail, or, when the upload is complete,
        as its final part. The caller then saves the row."""
        self.fh.close()
        try:
            self._landed()
            rest = file_size(self.path)
            if self.shipped_bytes + rest == self.upload.length and rest:
                self._shipping.append(self._shipper.submit(self.sink.ship, self.upload,
                                                           self.path, self.number))
                self._landed()
                rest = 0
            elif rest:
                self.sink.store.put_file(self.sink.tail_key(self.upload, len(self.parts)),
                                         self.path)
        finally:
            self._shipper.shutdown()
            self._forget_spools()
        self.upload.parts = {"parts": self.parts, "tail": rest}

    def rollback(self) -> None:
        self.fh.close()
        with contextlib.suppress(Exception):
            self._landed()
        self._shipper.shutdown()
        self._forget_spools()
        parts, tail = self.start
        self.upload.parts = {"parts": parts, "tail": tail}

    def saved(self) -> None:
        """The row names the new parts: the tail this PATCH started from is not needed."""
        before, tail = len(self.start[0]), self.start[1]
        if tail and len(self.parts) != before:
            self.sink.store.delete(self.sink.tail_key(self.upload, before))

    def _forget_spools(self) -> None:
        for path in self.spools:
            with contextlib.suppress(OSError):
                os.unlink(path)
