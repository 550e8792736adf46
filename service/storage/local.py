"""A folder as an object store: the embedded default. Signed URLs point at the app."""

from __future__ import annotations

import mimetypes
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from service import security
from service.storage.base import (
    CHUNK,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    check_key,
    check_prefix,
    check_range,
)
from service.storage.local_uploads import AppendSink

SIGNED_PATH = "/objects/"


class LocalStore(ObjectStore):
    name = "local"

    def __init__(self, root: Path, *, secret: str, base_url: str) -> None:
        self.root = root.resolve()
        self._tmp = self.root / ".tmp"
        self._secret = secret
        self._base_url = base_url.rstrip("/")

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:  # belt and braces beside check_key
            raise StorageError(f"key {key!r} leaves the store")
        return path

    def put(self, key: str, stream: BinaryIO, *, length: int | None = None,
            content_type: str = "application/octet-stream") -> ObjectInfo:
        dest = self._path(key)
        self._tmp.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / uuid.uuid4().hex
        written = 0
        try:
            with tmp.open("wb") as fh:
                while chunk := stream.read(CHUNK):
                    written += len(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            if length is not None and written != length:
                raise StorageError(f"expected {length} bytes for {key!r}, got {written}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)  # whole or not at all
        finally:
            tmp.unlink(missing_ok=True)
        return self.stat(key)

    def get(self, key: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        path = self._path(key)
        try:
            fh = path.open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFound(key) from None
        remaining = check_range(key, os.fstat(fh.fileno()).st_size, offset, length)

        def chunks() -> Iterator[bytes]:
            nonlocal remaining
            with fh:
                fh.seek(offset)
                while remaining > 0:
                    chunk = fh.read(min(CHUNK, remaining))
                    if not chunk:
                        break
                    remaining -= len(chunk)
                    yield chunk

        return chunks()

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        if not path.is_file():
            raise ObjectNotFound(key)
        return ObjectInfo(
            key=key, size=st.st_size, etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
            content_type=mimetypes.guess_type(key)[0] or "application/octet-stream",
            modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != self.root:  # drop folders left empty
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel_dir = Path(dirpath).relative_to(self.root)
            keys = sorted((rel_dir / name).as_posix().removeprefix("./") for name in filenames)
            for key in keys:
                if key.startswith(prefix):
                    yield self.stat(key)

    def signed_url(self, key: str, seconds: int) -> str:
        expires = int(time.time()) + seconds
        query = urlencode({"expires": expires, "sig": self.signature(check_key(key), expires)})
        return f"{self._base_url}{SIGNED_PATH}{quote(key)}?{query}"

    def signature(self, key: str, expires: int) -> str:
        return security.sign(self._secret, f"object:{key}:{expires}")

    def verify(self, key: str, expires: int, signature: str) -> bool:
        return expires >= time.time() and security.signature_ok(
            self._secret, f"object:{key}:{expires}", signature)

    # --- staging for resumable uploads (appended in place, adopted whole) ----------------

    def staging_path(self, name: str) -> Path:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise StorageError(f"bad staging name {name!r}")
        folder = self.root / ".uploads"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def adopt(self, path: Path, key: str) -> ObjectInfo:
        """Move a finished staging file into place as `key`, whole or not at all."""
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)
        return self.stat(key)

    def upload_sink(self, spool_dir: Path) -> AppendSink:
        return AppendSink(self)  # appends in place: no spool needed

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"{self.root} is not writable")
