"""Password reset, over the wire against a real server and a real SMTP server (aiosmtpd in
its own process, writing what it receives to a maildir): the mail and its headers, a link
that works once and ends every other login, an owner's link for a member, the `log`
transport with the admin's outbox page, and the answer that never tells whether an account
exists."""

from __future__ import annotations

import mailbox
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import httpx2 as httpx
import pytest

from service.settings import Settings
from tests.conftest import PASSWORD, ServerProcess, free_port, make_settings, wait_for_port
from tests.mail_support import part, worker
from tests.remote import member_of_new_community

NEW_PASSWORD = "a brand new long password"


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """aiosmtpd's own command: an SMTP server on 127.0.0.1 delivering into a maildir."""
    port, folder = free_port(), tmp_path / "maildir"
    proc = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l",
                             f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Mailbox",
                             str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield port, folder
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str,
             request: pytest.FixtureRequest) -> Settings:
    env = {"KUMPUL_DATABASE_URL": database_url, "KUMPUL_REDIS_URL": redis_url,
           "KUMPUL_MAIL_FROM": "Kumpul Test <noreply@kumpul.example>",
           "KUMPUL_METRICS_TOKEN": "x" * 20}
    if "smtp" in request.node.name:
        port, _ = request.getfixturevalue("smtp_server")
        env.update(KUMPUL_MAIL_TRANSPORT="smtp", KUMPUL_SMTP_PORT=str(port),
                   KUMPUL_SMTP_TLS="none")
    return make_settings(tmp_path, **env)


def received(folder: Path, count: int) -> list[Message]:
    for _ in range(100):
        if folder.exists() and len(box := mailbox.Maildir(folder, create=False)) >= count:
            return [box[key] for key in sorted(box.keys())]
        time.sleep(0.1)
    raise AssertionError("no mail arrived")


def log_in(server: ServerProcess, email: str, password: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/auth/login", timeout=30,
                      json={"email": email, "password": password})


@pytest.fixture
def mail_worker(server_process: ServerProcess, tmp_path: Path) -> Iterator[None]:
    """A worker delivering the outbox's mails."""
    with worker(server_process.settings, tmp_path / "worker.log"):
        yield


def test_reset_by_mail_through_smtp(server_process: ServerProcess, settings: Settings,
                                    smtp_server: tuple[int, Path], mail_worker: None) -> None:
    """The mail arrives (sent by a worker's job) with its headers; its link sets the password
    once, ends the other logins and signs this one in; an unknown address gets the same
    answer and no mail."""
    who = member_of_new_community(server_process)
    other_login = log_in(server_process, "member@example.com", PASSWORD)
    assert other_login.status_code == 200
    with httpx.Client(base_url=server_process.url, timeout=30) as client:
        asked = client.post("/api/auth/password-reset", json={"email": "Member@Example.com"})
        unknown = client.post("/api/auth/password-reset", json={"email": "nobody@example.com"})
        assert asked.status_code == unknown.status_code == 202
        assert asked.json() == unknown.json() == {"status": "sent_if_account",
                                                  "mail_delivered": True}
        (mail,) = received(smtp_server[1], 1)
        assert mail["To"] == "member@example.com"
        assert mail["From"] == "Kumpul Test <noreply@kumpul.example>"
        assert mail["Subject"] == "Reset your Kumpul password"
        assert mail["Message-ID"].endswith("@kumpul.example>") and mail["Date"]
        assert mail["Auto-Submitted"] == "auto-generated"
        body = part(mail, "plain")
        assert "/reset/" in part(mail, "html")
        assert "List-Unsubscribe" not in mail  # a mail the person asked for
        link = re.search(rf"{re.escape(server_process.url)}/reset/(\S+)", body)
        assert link, body
        token = link.group(1)
        assert client.get(f"/reset/{token}").status_code == 200
        weak = client.post(f"/api/auth/password-reset/{token}", json={"password": "short"})
        assert weak.status_code == 422  # the link survives a refused password
        done = client.post(f"/api/auth/password-reset/{token}", json={"password": NEW_PASSWORD})
        assert done.status_code == 200 and done.json()["user"]["email"] == "member@example.com"
        assert client.get("/api/me").status_code == 200  # signed in by the reset
        again = client.post(f"/api/auth/password-reset/{token}", json={"password": NEW_PASSWORD})
        assert again.status_code == 410
    stale = httpx.get(f"{server_process.url}/api/me", cookies=other_login.cookies, timeout=30)
    assert stale.status_code == 401  # the other login ended
    assert log_in(server_process, "member@example.com", PASSWORD).status_code == 401
    assert log_in(server_process, "member@example.com", NEW_PASSWORD).status_code == 200
    assert len(received(smtp_server[1], 1)) == 1  # nothing went to the unknown address
    del who


def test_without_mail_the_owner_hands_over_a_link(server_process: ServerProcess) -> None:
    """The embedded `log` transport: the page says mail is not set up and whom to ask; the
    mail is in the site admin's outbox, marked as logged only; an owner's link for the member
    works once; a member cannot make one."""
    who = member_of_new_community(server_process)
    with httpx.Client(base_url=server_process.url, timeout=30) as client:
        page = client.get("/reset")
        assert 'id="no-mail"' in page.text and "Ask your community" in page.text
        sent = client.post("/reset", data={"email": "member@example.com"},
                           headers={"Origin": server_process.url})
        assert sent.status_code == 200 and 'id="sent"' in sent.text
        assert client.post("/api/auth/password-reset",
                           json={"email": "member@example.com"}).json()["mail_delivered"] is False
    owner = httpx.Client(base_url=server_process.url, timeout=30,
                         headers={"Authorization": f"Bearer {who.owner_token}"})
    outbox = owner.get("/admin/outbox")
    assert outbox.status_code == 200
    assert "member@example.com" in outbox.text and "logged only" in outbox.text
    assert "/reset/" in outbox.text  # the admin can read what would have been sent
    members = owner.get(f"/api/communities/{who.slug}/members").json()["members"]
    member_id = next(m["user_id"] for m in members if m["role"] == "member")
    owner_id = next(m["user_id"] for m in members if m["role"] == "owner")
    # the form redirects to the page, which shows the link (a refresh makes no second one)
    on_page = owner.post(f"/c/{who.slug}/admin/members/{member_id}/reset-link",
                         follow_redirects=True)
    assert on_page.status_code == 200 and "Password reset link" in on_page.text
    earlier = re.search(r'value="[^"]*/reset/([^"]+)" id="new-reset"', on_page.text)
    assert earlier, on_page.text
    made = owner.post(f"/api/communities/{who.slug}/members/{member_id}/reset-link")
    assert made.status_code == 201, made.text
    token = made.json()["url"].rsplit("/", 1)[1]
    with httpx.Client(base_url=server_process.url, timeout=30) as browser:
        assert browser.get(f"/reset/{earlier.group(1)}").status_code == 410  # superseded
    member = httpx.Client(base_url=server_process.url, timeout=30,
                          headers={"Authorization": f"Bearer {who.token}"})
    refused = member.post(f"/api/communities/{who.slug}/members/{owner_id}/reset-link")
    assert refused.status_code == 403
    with httpx.Client(base_url=server_process.url, timeout=30) as browser:
        chosen = browser.post(f"/reset/{token}", data={"password": NEW_PASSWORD},
                              headers={"Origin": server_process.url}, follow_redirects=False)
        assert chosen.status_code == 303
        assert browser.get("/api/me").json()["user"]["email"] == "member@example.com"
        assert browser.get(f"/reset/{token}").status_code == 410
    assert log_in(server_process, "member@example.com", NEW_PASSWORD).status_code == 200
    assert owner.get("/admin/outbox").status_code == 200
    assert member.get("/api/me").status_code == 401  # the member's old token ended too
    member_session = log_in(server_process, "member@example.com", NEW_PASSWORD)
    assert httpx.get(f"{server_process.url}/admin/outbox", cookies=member_session.cookies,
                     timeout=30).status_code == 403
