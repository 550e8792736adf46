"""MinIO/S3 through the minio SDK: the deployed default."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import urllib3
from minio import Minio
from minio.datatypes import Part
from minio.error import S3Error

from service.storage.base import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    check_key,
    check_prefix,
    check_range,
)
from service.storage.s3_uploads import MultipartSink

PART_SIZE = 16 * 1024 * 1024  # multipart part size: bounds memory per upload
_MISSING = {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}


class S3Store(ObjectStore):
    name = "s3"

    def __init__(self, *, endpoint: str, access_key: str, secret_key: str, bucket: str,
                 region: str = "us-east-1", secure: bool = False) -> None:
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=60), maxsize=16,
            retries=urllib3.Retry(total=3, backoff_factor=0.2,
                                  status_forcelist=(500, 502, 503, 504)))
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key,
                            secure=secure, region=region, http_client=http)
        self.bucket = bucket

    def ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)

    def put(self, key: str, stream: BinaryIO, *, length: int | None = None,
            content_type: str = "application/octet-stream") -> ObjectInfo:
        check_key(key)
        # Unknown length: the SDK reads PART_SIZE at a time into multipart parts.
        self.client.put_object(self.bucket, key, stream, -1 if length is None else length,
                               content_type=content_type, part_size=PART_SIZE)
        return self.stat(key)

    def get(self, key: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        size = self.stat(key).size
        count = check_range(key, size, offset, length)

        def chunks() -> Iterator[bytes]:
            if count == 0:
                return
            response = self.client.get_object(self.bucket, key, offset=offset, length=count)
            try:
                yield from response.stream(256 * 1024)
            finally:
                response.close()
                response.release_conn()

        return chunks()

    def stat(self, key: str) -> ObjectInfo:
        try:
            st = self.client.stat_object(self.bucket, check_key(key))
        except S3Error as exc:
            if exc.code in _MISSING:
                raise ObjectNotFound(key) from None
            raise StorageError(str(exc)) from exc
        return ObjectInfo(key=key, size=int(st.size or 0), etag=str(st.etag or ""),
                          content_type=st.content_type or "application/octet-stream",
                          modified=st.last_modified or datetime.now(UTC))

    def delete(self, key: str) -> None:
        self.client.remove_object(self.bucket, check_key(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for obj in self.client.list_objects(self.bucket, prefix=check_prefix(prefix) or None,
                                            recursive=True):
            if obj.object_name is None or obj.is_dir:
                continue
            yield ObjectInfo(key=obj.object_name, size=int(obj.size or 0),
                             etag=str(obj.etag or ""),
                             content_type=obj.content_type or "application/octet-stream",
                             modified=obj.last_modified or datetime.now(UTC))

    def signed_url(self, key: str, seconds: int) -> str:
        return self.client.presigned_get_object(self.bucket, check_key(key),
                                                expires=timedelta(seconds=seconds))

    # --- multipart, for resumable uploads (the SDK keeps these calls underscored) ---------

    def multipart_create(self, key: str, content_type: str = "application/octet-stream") -> str:
        return self.client._create_multipart_upload(
            self.bucket, check_key(key), {"Content-Type": content_type})

    def multipart_put(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        return self.client._upload_part(
            self.bucket, check_key(key), data, None, upload_id, number)

    def multipart_complete(self, key: str, upload_id: str,
                           parts: Sequence[tuple[int, str]]) -> ObjectInfo:
        self.client._complete_multipart_upload(
            self.bucket, check_key(key), upload_id, [Part(n, etag) for n, etag in parts])
        return self.stat(key)

    def multipart_abort(self, key: str, upload_id: str) -> None:
        try:
            self.client._abort_multipart_upload(self.bucket, check_key(key), upload_id)
        except S3Error as exc:
            if exc.code != "NoSuchUpload":
                raise

    def upload_sink(self, spool_dir: Path) -> MultipartSink:
        return MultipartSink(self, spool_dir)

    def check(self) -> None:
        try:
            found = self.client.bucket_exists(self.bucket)
        except Exception as exc:
            raise StorageError(f"S3 unreachable: {exc}") from exc
        if not found:
            raise StorageError(f"bucket {self.bucket!r} does not exist")
