"""Jobs enqueued by the app run in a separate worker process against the real Redis."""

from __future__ import annotations

import os
import subprocess
import sys

from service.settings import Settings
from tests.conftest import World, settings_env
from tests.service.test_error_shape import assert_error


def test_job_runs_in_a_worker_process(world: World, settings: Settings) -> None:
    """The app enqueues by dotted path; `kumpul worker` runs it; the app sees the result."""
    admin = world.admin()
    queued = admin.post("/api/admin/jobs/ping", json={"note": "hello worker"})
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["id"]
    assert admin.get(f"/api/admin/jobs/{job_id}").json()["status"] == "queued"

    done = subprocess.run([sys.executable, "-m", "service.cli", "worker", "--burst"],
                          env=settings_env(settings), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    job = admin.get(f"/api/admin/jobs/{job_id}").json()
    assert job["status"] == "finished", job
    assert job["result"]["note"] == "hello worker"
    assert job["result"]["pid"] not in (os.getpid(), None)
    assert job["meta"]["progress"] == 1.0


def test_jobs_are_for_admins(world: World) -> None:
    owner = world.admin()
    slug = world.community(owner)
    member = world.join(owner, slug)
    assert_error(member.post("/api/admin/jobs/ping", json={}), 403, "admin_only")
    assert_error(owner.get("/api/admin/jobs/no-such-job"), 404, "job_not_found")


def test_worker_refuses_unknown_queue(settings: Settings) -> None:
    done = subprocess.run([sys.executable, "-m", "service.cli", "worker", "nope", "--burst"],
                          env=settings_env(settings), capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "unknown queue 'nope'" in done.stderr


def test_operator_sees_and_retries_failed_jobs(world: World, settings: Settings) -> None:
    """`kumpul jobs failed` shows a failed job with its error; `kumpul jobs retry` requeues it."""
    from service.queue import Queues, redis_client

    queues = Queues(redis_client(settings.redis_url))
    job_id = queues.enqueue("default", "workers.jobs.ping", job_id="broken-ping", retries=0)
    env = settings_env(settings)
    subprocess.run([sys.executable, "-m", "service.cli", "worker", "default", "--burst"],
                   env=env, capture_output=True, timeout=120, check=True)

    def kumpul(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "service.cli", "jobs", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    listed = kumpul("failed")
    assert "broken-ping" in listed.stdout and "workers.jobs.ping" in listed.stdout
    assert "missing 1 required positional argument" in listed.stdout
    retried = kumpul("retry", job_id)
    assert retried.returncode == 0 and "back on the default queue" in retried.stdout
    assert queues.job(job_id).status == "queued"  # type: ignore[union-attr]
    assert "no failed jobs" in kumpul("failed").stdout
    assert kumpul("retry", "no-such-job").returncode == 1
