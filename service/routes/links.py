"""Short-lived signed links to stored media, for people with rights to it. Every link lives
`KUMPUL_SIGNED_URL_SECONDS`.

A clip's objects (source, renditions, pieces) are linked through the app for both stores
(`/objects/...`, served by `routes/objects.py`), which checks the clip at every request: a
withdrawal ends every link at once. An S3 presigned URL cannot be revoked before it
expires, so clips never get one; other objects (reels, recordings) use the store's own
signed URLs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from service import security
from service.db.models import LiveSession
from service.domain.recording_state import RecordingState
from service.storage import ObjectStore
from service.storage.keys import RENDITION_FILES, file, live_rendition
from service.web import Services

OBJECTS_PATH = "/objects/"


def object_signature(secret: str, key: str, expires: int) -> str:
    return security.sign(secret, f"object:{key}:{expires}")


@dataclass(frozen=True)
class Links:
    store: ObjectStore
    seconds: int
    secret: str
    base_url: str

    def to(self, key: str) -> str:
        if key.startswith("clips/"):
            return self.through_app(key)
        return self.store.signed_url(key, self.seconds)

    def through_app(self, key: str) -> str:
        expires = int(time.time()) + self.seconds
        query = urlencode({"expires": expires,
                           "sig": object_signature(self.secret, key, expires)})
        return f"{self.base_url}{OBJECTS_PATH}{quote(key)}?{query}"

    def rendition(self, folder: str) -> dict[str, str]:
        """A rendition's web video, poster and filmstrip (a clip's version, or a live
        session's recording), named `web`, `poster` and `filmstrip`."""
        return {name.split(".")[0]: self.to(file(folder, name)) for name in RENDITION_FILES}

    def replay(self, row: LiveSession) -> dict[str, str] | None:
        """A live session's recording (`web`, `poster`, `filmstrip`) once it is ready."""
        if row.recording_state != RecordingState.ready:
            return None
        return self.rendition(live_rendition(row.id))


def links(svc: Services) -> Links:
    return Links(svc.store, svc.settings.signed_url_seconds, svc.settings.secret_key,
                 svc.settings.public_url)
