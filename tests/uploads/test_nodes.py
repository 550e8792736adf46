"""Uploads on any node: two app processes share the database, Redis and the store, and an
upload's PATCHes may land on either. Nothing of an upload lives on one node's disk."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from service.locks import BEAT_SECONDS, RELEASE_WAIT
from service.settings import Settings
from tests import media_files
from tests.conftest import ServerProcess
from tests.remote import member_of_new_community
from tests.uploads.conftest import metadata, tus, unfinished_bytes
from tests.uploads.test_clients import stored_clip, stored_sha256

MIB = 1024 * 1024


@pytest.fixture
def nodes(settings: Settings, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    first = ServerProcess(settings, tmp_path / "node-a.log").start()
    second = ServerProcess(settings, tmp_path / "node-b.log").start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def patch(url: str, headers: dict[str, str], location: str, offset: int,
          content: bytes | Iterator[bytes], timeout: float = 60) -> httpx.Response:
    return httpx.patch(url + location, content=content, timeout=timeout, headers={
        **headers, **tus(**{"Upload-Offset": str(offset),
                            "Content-Type": "application/offset+octet-stream"})})


def head_offset(url: str, headers: dict[str, str], location: str) -> int:
    return int(httpx.head(url + location, headers={**headers, **tus()}).headers["upload-offset"])


def test_patches_alternate_between_nodes_and_survive_a_node_kill(
        nodes: tuple[ServerProcess, ServerProcess], settings: Settings, tmp_path: Path) -> None:
    """1 MiB PATCHes alternate between two nodes; at 60 % the first node is SIGKILLed in the
    middle of a PATCH; the other finishes the upload: identical SHA-256, nothing left over."""
    a, b = nodes
    who = member_of_new_community(a)
    data = media_files.big_mp4(tmp_path / "ride.mp4", 20).read_bytes()
    made = httpx.post(a.url + "/api/uploads", headers={**who.auth, **tus(**{
        "Upload-Length": str(len(data)),
        "Upload-Metadata": metadata(community=who.slug, release=1, filename="ride.mp4")})})
    assert made.status_code == 201, made.text
    location = made.headers["location"]
    offset, turn = 0, 0
    while offset < len(data) * 0.6:
        node = (a, b)[turn % 2]
        sent = patch(node.url, who.auth, location, offset, data[offset:offset + MIB])
        assert sent.status_code == 204, sent.text
        offset = int(sent.headers["upload-offset"])
        assert head_offset((b, a)[turn % 2].url, who.auth, location) == offset  # the other sees it
        turn += 1

    streaming = threading.Event()

    def slow() -> Iterator[bytes]:
        for start in range(offset, len(data), 256 * 1024):
            if start >= offset + 3 * MIB:
                streaming.set()
                time.sleep(30)  # the node dies while we wait
            yield data[start:start + 256 * 1024]

    def send_slowly() -> None:
        with contextlib.suppress(httpx.HTTPError):
            patch(a.url, who.auth, location, offset, slow())

    thread = threading.Thread(target=send_slowly, daemon=True)
    thread.start()
    assert streaming.wait(30)
    time.sleep(0.5)
    a.kill()
    killed = time.monotonic()
    offset = head_offset(b.url, who.auth, location)
    while True:  # as tus-js-client does: 423 means "try again shortly"
        done = patch(b.url, who.auth, location, offset, data[offset:])
        if done.status_code != 423 or time.monotonic() - killed > BEAT_SECONDS + 10:
            break
        time.sleep(0.5)
    assert done.status_code == 204, done.text
    clip = stored_clip(b)
    assert clip.state == "uploaded"
    assert stored_sha256(b, clip) == hashlib.sha256(data).hexdigest()
    assert unfinished_bytes(settings) == []


def test_a_live_holder_lets_go_at_once(nodes: tuple[ServerProcess, ServerProcess],
                                       settings: Settings, tmp_path: Path) -> None:
    """A phone moved networks: its old PATCH still streams (slowly) into one node and holds
    the upload's lock. A PATCH on the other node asks for the lock; the old request keeps
    what it received and lets go, and the new one goes on within a moment, not after the
    lock's two-minute lease."""
    a, b = nodes
    who = member_of_new_community(a)
    data = media_files.big_mp4(tmp_path / "ride.mp4", 12).read_bytes()
    made = httpx.post(a.url + "/api/uploads", headers={**who.auth, **tus(**{
        "Upload-Length": str(len(data)),
        "Upload-Metadata": metadata(community=who.slug, release=1, filename="ride.mp4")})})
    location = made.headers["location"]
    streaming = threading.Event()

    def trickle() -> Iterator[bytes]:
        for start in range(0, len(data), 256 * 1024):
            if start >= 2 * MIB:
                streaming.set()
                time.sleep(1)  # alive, but slow: a stalled mobile link
            yield data[start:start + 256 * 1024]

    def send_slowly() -> None:
        with contextlib.suppress(httpx.HTTPError):
            patch(a.url, who.auth, location, 0, trickle(), timeout=120)

    threading.Thread(target=send_slowly, daemon=True).start()
    assert streaming.wait(30)
    asked = time.monotonic()
    offset = head_offset(b.url, who.auth, location)
    assert offset == 0  # nothing is stored until a request ends
    taken = patch(b.url, who.auth, location, offset, data[offset:])
    waited = time.monotonic() - asked
    assert waited < RELEASE_WAIT, waited
    # the old request stored what it had received when it let go: resume from there
    assert taken.status_code == 409, taken.text
    offset = int(taken.headers["upload-offset"])
    assert offset >= 2 * MIB
    taken = patch(b.url, who.auth, location, offset, data[offset:])
    assert taken.status_code == 204, taken.text
    clip = stored_clip(b)
    assert clip.state == "uploaded"
    assert stored_sha256(b, clip) == hashlib.sha256(data).hexdigest()
    assert unfinished_bytes(settings) == []
