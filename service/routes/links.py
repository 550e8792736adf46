"""Short-lived signed links to stored media, for people with rights to it. Every link lives
`KUMPUL_SIGNED_URL_SECONDS`."""

from __future__ import annotations

from dataclasses import dataclass

from service.storage import ObjectStore
from service.storage.keys import RENDITION_FILES, file
from service.web import Services


@dataclass(frozen=True)
class Links:
    store: ObjectStore
    seconds: int

    def to(self, key: str) -> str:
        return self.store.signed_url(key, self.seconds)

    def rendition(self, folder: str) -> dict[str, str]:
        """A rendition's web video, poster and filmstrip (a clip's version, or a live
        session's recording), named `web`, `poster` and `filmstrip`."""
        return {name.split(".")[0]: self.to(file(folder, name)) for name in RENDITION_FILES}


def links(svc: Services) -> Links:
    return Links(svc.store, svc.settings.signed_url_seconds)
