"""Object storage: one interface (`ObjectStore`), a local-folder and an S3/MinIO adapter."""

from __future__ import annotations

from service.settings import Settings
from service.storage.base import InvalidKey, InvalidRange, ObjectInfo, ObjectNotFound, ObjectStore

__all__ = ["InvalidKey", "InvalidRange", "ObjectInfo", "ObjectNotFound", "ObjectStore",
           "open_store"]


def open_store(settings: Settings) -> ObjectStore:
    """The adapter the settings choose."""
    if settings.storage == "s3":
        from service.storage.s3 import S3Store

        return S3Store(endpoint=settings.s3_endpoint, access_key=settings.s3_access_key,
                       secret_key=settings.s3_secret_key, bucket=settings.s3_bucket,
                       region=settings.s3_region, secure=settings.s3_secure)
    from service.storage.local import LocalStore

    return LocalStore(settings.storage_dir, secret=settings.secret_key,
                      base_url=settings.public_url)
