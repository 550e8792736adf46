"""The local store's upload sink: append in place to a staging file, adopt it whole."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from service.storage.base import ObjectInfo
from service.storage.uploads import Sink, UploadRecord, Write, file_size, target_key

if TYPE_CHECKING:
    from service.storage.local import LocalStore


class AppendSink(Sink):
    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def _path(self, upload: UploadRecord) -> Path:
        return self.store.staging_path(upload.id)

    def open(self, upload: UploadRecord) -> None:
        self._path(upload).touch()

    def offset(self, upload: UploadRecord) -> int:
        return min(file_size(self._path(upload)), upload.length)

    def begin(self, upload: UploadRecord) -> Write:
        return _AppendWrite(self._path(upload))

    def head(self, upload: UploadRecord, size: int) -> bytes:
        with self._path(upload).open("rb") as fh:
            return fh.read(size)

    def finish(self, upload: UploadRecord) -> ObjectInfo:
        return self.store.adopt(self._path(upload), target_key(upload))

    def abort(self, upload: UploadRecord) -> None:
        self._path(upload).unlink(missing_ok=True)


class _AppendWrite(Write):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = file_size(path)
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
