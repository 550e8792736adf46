"""Mail delivery in RQ jobs, through a real SMTP server process: a refused mail is retried by
RQ after its backoff and then arrives; one still refused on its last try shows as failed on
the site admin's outbox page."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.testclient import TestClient

from service.db.models import MailOutbox
from service.mail import MailError
from service.settings import Settings
from tests.actors import Actor
from tests.conftest import World, free_port, jobs_using, make_settings, run_db
from tests.mail_support import burst, part, received, smtp_server
from workers.mail import send_mails


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str, smtp_port: int) -> Settings:
    return make_settings(tmp_path, KUMPUL_DATABASE_URL=database_url, KUMPUL_REDIS_URL=redis_url,
                         KUMPUL_MAIL_TRANSPORT="smtp", KUMPUL_SMTP_PORT=str(smtp_port),
                         KUMPUL_SMTP_TLS="none",
                         KUMPUL_MAIL_FROM="Kumpul Test <noreply@kumpul.example>")


def outbox_rows(settings: Settings) -> list[MailOutbox]:
    async def work(session: AsyncSession) -> list[MailOutbox]:
        return list(await session.scalars(select(MailOutbox).order_by(MailOutbox.id)))

    return run_db(settings, work)


def ask_reset(client: TestClient, admin: Actor) -> None:
    asked = client.post("/api/auth/password-reset", json={"email": admin.email})
    assert asked.status_code == 202, asked.text


def test_a_refused_mail_is_retried_then_arrives(world: World, client: TestClient,
                                                 settings: Settings, smtp_port: int,
                                                 tmp_path: Path) -> None:
    """With the SMTP server down the job fails, the row says why and RQ schedules a retry;
    once the server is up the retry delivers it, headers and both parts."""
    admin = world.admin()
    ask_reset(client, admin)
    (row,) = outbox_rows(settings)
    assert row.sent_at is None and row.attempts == 0  # recorded; a job sends it
    burst(settings)
    (row,) = outbox_rows(settings)
    assert row.sent_at is None and row.failed_at is None and row.attempts == 1
    assert row.error and "refused" in row.error
    redis = Redis.from_url(settings.redis_url)
    registry = ScheduledJobRegistry("default", connection=redis)  # type: ignore[no-untyped-call]
    scheduled = registry.get_job_ids()
    assert len(scheduled) == 1  # the retry waits out its backoff
    job = Job.fetch(scheduled[0], connection=redis)
    assert job.retries_left == 4 and job.func_name == "workers.mail.send_mails"
    with smtp_server(tmp_path / "maildir", smtp_port):
        # the backoff's wait is RQ's business: hand the retry to the queue now
        registry.remove(job)
        Queue("default", connection=redis).enqueue_job(job)
        burst(settings)
        (mail,) = received(tmp_path / "maildir", 1)
    (row,) = outbox_rows(settings)
    assert row.sent_at is not None and row.error is None and row.attempts == 2
    assert mail["To"] == admin.email and mail["Subject"] == "Reset your Kumpul password"
    assert mail.get_content_type() == "multipart/alternative"
    assert "/reset/" in part(mail, "plain") and "/reset/" in part(mail, "html")


def test_a_mail_refused_on_its_last_try_shows_as_failed(world: World, client: TestClient,
                                                        settings: Settings) -> None:
    """The job's last try (here run as a worker would, without retries left) marks the mail
    failed; the outbox page shows it with the server's reason."""
    admin = world.admin()
    ask_reset(client, admin)
    (row,) = outbox_rows(settings)
    with jobs_using(settings), pytest.raises(MailError, match="1 of 1 mails were not sent"):
        send_mails(str(row.id))
    (row,) = outbox_rows(settings)
    assert row.failed_at is not None and row.sent_at is None
    page = admin.get("/admin/outbox")
    assert page.status_code == 200
    assert "failed after 1 tries" in page.text and "refused" in page.text
