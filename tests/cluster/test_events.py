"""Server-sent events with two node processes: what happens through one node reaches a page
listening on the other (events go through Redis, never through one process)."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from typing import Any

import httpx2 as httpx

from tests.conftest import ServerProcess
from tests.remote import member_of_new_community
from tests.uploads.conftest import metadata, tus


def listen(url: str, headers: dict[str, str], into: queue.Queue[dict[str, Any]],
           stop: threading.Event) -> None:
    with contextlib.suppress(httpx.HTTPError), \
            httpx.Client(timeout=httpx.Timeout(5, read=30)) as client, \
            client.stream("GET", url, headers=headers) as response:  # ends with the node
        for line in response.iter_lines():
            if line.startswith("data: "):
                into.put(json.loads(line[6:]))
            if stop.is_set():
                return


def test_a_clip_change_through_one_node_reaches_a_page_on_the_other(
        two_nodes: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = two_nodes
    who = member_of_new_community(a)
    made = httpx.post(a.url + "/api/uploads", headers={**who.auth, **tus(**{
        "Upload-Length": "1000000",
        "Upload-Metadata": metadata(community=who.slug, release=1, filename="ride.mp4")})})
    assert made.status_code == 201, made.text
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=listen, daemon=True, args=(
        f"{b.url}/api/communities/{who.slug}/clips/events", who.auth, events, stop))
    thread.start()
    first = events.get(timeout=20)  # the snapshot: node B's page is subscribed now
    assert first["state"] == "uploading"
    gone = httpx.post(f"{a.url}/api/communities/{who.slug}/clips/{first['id']}/withdraw",
                      headers=who.auth)
    assert gone.status_code == 200, gone.text
    changed = events.get(timeout=10)
    stop.set()
    assert (changed["id"], changed["state"]) == (first["id"], "withdrawn")
