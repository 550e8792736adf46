"""Webhooks over the wire: the app records events, a real `kumpul worker` process signs and
sends them, and a receiver process of the integrator's own verifies every signature with the
`standardwebhooks` verifier. Retries follow a short schedule here (1 s, 1 s)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import MailOutbox, WebhookDelivery, utcnow
from service.settings import Settings
from tests.actors import Actor
from tests.conftest import World, free_port, make_settings, run_db, settings_env, wait_for_port
from tests.studio import Studio
from workers.context import JobContext
from workers.jobs import reconcile


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    """The test's own receiver is on 127.0.0.1: the allow setting lets webhooks reach it."""
    return make_settings(tmp_path, KUMPUL_DATABASE_URL=database_url,
                         KUMPUL_REDIS_URL=redis_url, KUMPUL_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
                         KUMPUL_WEBHOOK_RETRY_SCHEDULE="1,1",
                         KUMPUL_WEBHOOK_TIMEOUT_SECONDS="2")


@dataclass
class Receiver:
    url: str
    log: Path
    secrets: Path

    def trust(self, *secrets: str) -> None:
        self.secrets.write_text("\n".join(secrets))

    def requests(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def wait(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.requests()
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise AssertionError(f"{count} requests expected, got {self.requests()}")


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    port = free_port()
    made = Receiver(f"http://127.0.0.1:{port}", tmp_path / "received.jsonl",
                    tmp_path / "secrets.txt")
    proc = subprocess.Popen([sys.executable, "-m", "tests.webhook_receiver", str(port),
                             str(made.log), str(made.secrets)])
    try:
        wait_for_port(port)
        yield made
    finally:
        proc.terminate()
        proc.wait(10)


def start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("a") as sink:
        return subprocess.Popen([sys.executable, "-m", "service.cli", "worker", "default"],
                                env=settings_env(settings), stdout=sink,
                                stderr=subprocess.STDOUT)


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`kumpul worker default`, with RQ's scheduler (retries wait in it)."""
    proc = start_worker(settings, tmp_path / "worker.log")
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(20)


def hooks(slug: str, path: str = "") -> str:
    return f"/api/communities/{slug}/webhooks{path}"


def until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def end_a_session(host: Actor, slug: str) -> str:
    made = host.post(f"/api/communities/{slug}/live", json={"title": "Sunday long run"})
    assert made.status_code == 201, made.text
    ended = host.post(f"/api/communities/{slug}/live/{made.json()['id']}/end")
    assert ended.status_code == 200, ended.text
    return str(made.json()["id"])


def deliveries(owner: Actor, slug: str, endpoint_id: str) -> list[dict[str, Any]]:
    found = owner.get(hooks(slug, f"/{endpoint_id}/deliveries"))
    assert found.status_code == 200, found.text
    rows: list[dict[str, Any]] = found.json()["deliveries"]
    return rows


@pytest.mark.usefixtures("worker")
def test_events_arrive_signed_and_verify(world: World, receiver: Receiver) -> None:
    """A session's end reaches the receiver with Standard Webhooks headers that its verifier
    accepts; the delivery log shows the 2xx, its latency and one attempt."""
    owner = world.admin()
    slug = world.community(owner)
    endpoint = owner.post(hooks(slug), json={"url": f"{receiver.url}/hook",
                                             "event_types": ["live.ended"]}).json()
    receiver.trust(endpoint["secret"])
    session_id = end_a_session(owner, slug)

    [got] = receiver.wait(1)
    assert got["verified_by"] == [0]
    assert got["headers"]["webhook-id"].startswith("msg_")
    assert got["headers"]["content-type"] == "application/json"
    payload = json.loads(got["body"])
    assert payload["type"] == "live.ended"
    assert payload["data"]["community"] == slug
    assert payload["data"]["session"]["id"] == session_id
    assert payload["data"]["session"]["state"] == "ended"

    log = until(lambda: [d for d in deliveries(owner, slug, endpoint["id"])
                         if d["state"] == "delivered"])
    assert log[0]["status"] == 204 and log[0]["attempts"] == 1
    assert log[0]["message_id"] == got["headers"]["webhook-id"]
    assert log[0]["latency_ms"] is not None and log[0]["latency_ms"] >= 0


@pytest.mark.usefixtures("worker")
def test_rotation_signs_with_both_secrets_for_a_while(world: World,
                                                      receiver: Receiver) -> None:
    """After a rotation each delivery carries two signatures: a receiver that knows only the
    old secret and one that knows only the new one both verify it."""
    owner = world.admin()
    slug = world.community(owner)
    endpoint = owner.post(hooks(slug), json={"url": f"{receiver.url}/hook",
                                             "event_types": ["live.ended"]}).json()
    rotated = owner.post(hooks(slug, f"/{endpoint['id']}/rotate-secret")).json()
    receiver.trust(endpoint["secret"], rotated["secret"])
    end_a_session(owner, slug)
    [got] = receiver.wait(1)
    assert got["verified_by"] == [0, 1]
    assert len(got["headers"]["webhook-signature"].split(" ")) == 2


@pytest.mark.usefixtures("worker")
def test_events_of_clips_follow_moderation(studio: Studio, receiver: Receiver) -> None:
    """Approve, reject and withdraw each send their event, only the types asked for."""
    endpoint = studio.owner.post(hooks(studio.slug), json={
        "url": f"{receiver.url}/hook",
        "event_types": ["clip.approved", "clip.rejected", "clip.withdrawn"]}).json()
    receiver.trust(endpoint["secret"])
    approved, rejected = studio.clips
    assert studio.moderator.post(studio.api(f"/review/{approved}/approve")).status_code == 200
    assert studio.moderator.post(studio.api(f"/review/{rejected}/reject"),
                                 json={"reason": "quality"}).status_code == 200
    assert studio.members[0].post(
        studio.api(f"/clips/{approved}/withdraw")).status_code == 200
    got = receiver.wait(3)
    assert all(r["verified_by"] == [0] for r in got)
    events = sorted((json.loads(r["body"])["type"], json.loads(r["body"])["data"]["clip"]["id"])
                    for r in got)
    assert events == sorted([("clip.approved", approved), ("clip.rejected", rejected),
                             ("clip.withdrawn", approved)])
    time.sleep(1)
    assert len(receiver.requests()) == 3  # nothing else (no live or reel events asked for)


@pytest.mark.usefixtures("worker")
def test_a_failing_endpoint_is_retried_then_disabled(world: World, receiver: Receiver,
                                                     settings: Settings) -> None:
    """503s: the first attempt and two retries (the schedule), then the delivery fails, the
    endpoint is disabled and its owner gets a mail; once the receiver works, the owner
    enables it and sends the delivery again with the same webhook-id."""
    owner = world.admin()
    slug = world.community(owner)
    endpoint = owner.post(hooks(slug), json={"url": f"{receiver.url}/fail",
                                             "event_types": ["live.ended"]}).json()
    receiver.trust(endpoint["secret"])
    end_a_session(owner, slug)

    got = receiver.wait(3)
    assert len({r["headers"]["webhook-id"] for r in got}) == 1  # one message, three tries
    assert all(r["verified_by"] == [0] for r in got)
    shown = until(lambda: (lambda e: e if not e["enabled"] else None)(
        owner.get(hooks(slug, f"/{endpoint['id']}")).json()))
    assert shown["disabled_reason"] == "failing"
    [failed] = deliveries(owner, slug, endpoint["id"])
    assert failed["state"] == "failed" and failed["attempts"] == 3
    assert failed["status"] == 503
    assert failed["response"] == "receiver is down for maintenance"
    time.sleep(1.5)
    assert len(receiver.requests()) == 3  # no fourth try

    async def mails(session: AsyncSession) -> list[MailOutbox]:
        return list(await session.scalars(select(MailOutbox)))

    [mail] = until(lambda: [m for m in run_db(settings, mails) if m.sent_at is not None])
    assert mail.recipient == owner.email  # handed to the transport by the mail job
    assert "Webhook disabled" in mail.subject and f"{receiver.url}/fail" in mail.body
    page = owner.get(f"/c/{slug}/admin/webhooks")
    assert page.status_code == 200 and "Disabled after failing" in page.text

    resend = hooks(slug, f"/{endpoint['id']}/deliveries/{failed['id']}/send-again")
    assert owner.post(resend).json()["error"]["code"] == "webhook_disabled"
    assert owner.patch(hooks(slug, f"/{endpoint['id']}"), json={
        "enabled": True, "url": f"{receiver.url}/hook"}).status_code == 200
    assert owner.post(resend).status_code == 202
    again = receiver.wait(4)[3]
    assert again["path"] == "/hook" and again["verified_by"] == [0]
    assert again["headers"]["webhook-id"] == got[0]["headers"]["webhook-id"]
    until(lambda: deliveries(owner, slug, endpoint["id"])[0]["state"] == "delivered")


@pytest.mark.usefixtures("worker")
def test_redirects_are_not_followed(world: World, receiver: Receiver) -> None:
    """A 307 is a failed attempt ("redirects are not followed"); the target never hears."""
    owner = world.admin()
    slug = world.community(owner)
    endpoint = owner.post(hooks(slug), json={"url": f"{receiver.url}/redirect",
                                             "event_types": ["live.ended"]}).json()
    end_a_session(owner, slug)
    got = receiver.wait(3)
    assert {r["path"] for r in got} == {"/redirect"}
    [failed] = until(lambda: [d for d in deliveries(owner, slug, endpoint["id"])
                              if d["state"] == "failed"])
    assert failed["status"] == 307 and "redirects are not followed" in failed["error"]


def test_delivery_refuses_an_address_that_is_not_allowed(
        world: World, receiver: Receiver, settings: Settings, tmp_path: Path) -> None:
    """The worker checks again when sending: without the allow setting, 127.0.0.1 is
    refused with its reason and the receiver never hears from it."""
    owner = world.admin()
    slug = world.community(owner)
    endpoint = owner.post(hooks(slug), json={"url": f"{receiver.url}/hook",
                                             "event_types": ["live.ended"]}).json()
    strict = settings.replace(webhook_allow_hosts=())
    other = start_worker(strict, tmp_path / "strict-worker.log")
    try:
        end_a_session(owner, slug)
        [failed] = until(lambda: [d for d in deliveries(owner, slug, endpoint["id"])
                                  if d["attempts"] >= 1 and d["error"]
                                  and "refused" in d["error"]], timeout=40)
    finally:
        other.terminate()
        other.wait(20)
    assert "not a public address" in failed["error"] and "127.0.0.1" in failed["error"]
    assert failed["status"] is None


@pytest.mark.usefixtures("worker")
def test_an_attempt_has_a_time_limit(world: World, receiver: Receiver) -> None:
    """A receiver slower than KUMPUL_WEBHOOK_TIMEOUT_SECONDS (2 s here) fails the attempt
    with "no answer within 2 s", and the next try is scheduled."""
    owner = world.admin()
    slug = world.community(owner)
    endpoint = owner.post(hooks(slug), json={"url": f"{receiver.url}/slow",
                                             "event_types": ["live.ended"]}).json()
    started = time.monotonic()
    end_a_session(owner, slug)
    [tried] = until(lambda: [d for d in deliveries(owner, slug, endpoint["id"])
                             if d["attempts"] >= 1])
    assert time.monotonic() - started < 5  # the worker did not wait for the 5 s answer
    assert tried["error"] == "no answer within 2 s" and tried["status"] is None
    assert tried["state"] == "pending" and tried["next_attempt_at"] is not None


def test_a_lost_queue_loses_no_delivery(world: World, receiver: Receiver, settings: Settings,
                                        jobs_here: JobContext) -> None:
    """Redis forgets the queued attempt (flushed); the database still says it is due, so the
    reconciler queues it again and a worker delivers it."""
    owner = world.admin()
    slug = world.community(owner)
    endpoint = owner.post(hooks(slug), json={"url": f"{receiver.url}/hook",
                                             "event_types": ["live.ended"]}).json()
    receiver.trust(endpoint["secret"])
    end_a_session(owner, slug)
    Redis.from_url(settings.redis_url).flushdb()  # the queue is lost, the row is not

    async def overdue(session: AsyncSession) -> None:
        await session.execute(update(WebhookDelivery).values(
            next_attempt_at=utcnow() - timedelta(minutes=10)))

    run_db(settings, overdue)
    assert reconcile() >= 1
    subprocess.run([sys.executable, "-m", "service.cli", "worker", "default", "--burst"],
                   env=settings_env(settings), capture_output=True, timeout=120, check=True)
    [got] = receiver.wait(1)
    assert got["verified_by"] == [0] and json.loads(got["body"])["type"] == "live.ended"
    assert deliveries(owner, slug, endpoint["id"])[0]["state"] == "delivered"
