"""Fan-out benchmark: a "live now" notice to every member of one large community.

Run from the repository root: `.venv/bin/python bench/notify.py [--members 5000] [--reps 3]`.

- It starts its own `kumpul web` (PostgreSQL database `kumpul_bench_notify`, created and
  dropped here; Redis database 11; a temporary folder) and two `kumpul worker default`
  processes with the `log` mail transport (each mail is built, multipart text and HTML with
  its unsubscribe headers, and written to the worker's log at info level; nothing leaves).
- Members are written straight into the database (one password hash shared by all, so the
  seeding takes seconds); their language and zone alternate between Indonesian/WITA and the
  community's English/WIB, so the mails are composed in both.
- Each repetition takes a scheduled session live through the domain call the WHIP route
  makes (`domain.live.go_live`, then the unit of work's effects), and measures:
  `enqueue_s`, from the call until every chunk job of the audience is on the queue (the
  `announce` job runs in a worker and queues one job per 500 people); `mails_per_s`, members
  divided by the time from the call until every mail is marked sent in the outbox (so it
  includes composing the mails, the bulk inserts of notices and mails, and delivery);
  `delivery_mails_per_s`, the same over the time from the first mail recorded to the last
  sent; and the API's p95 (`GET /api/communities/{slug}/live` and `GET /api/notifications`
  as a member, every 50 ms) during the fan-out against the same prober on the idle app just
  before it (interleaved, one idle window per repetition).
- Medians of the repetitions are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ports import free_port, wait_port  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/11"
PG_ADMIN = os.environ.get("KUMPUL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
DATABASE = "kumpul_bench_notify"
PASSWORD = "benchmark password"  # noqa: S105 - throwaway accounts in a temporary database
PROBE_EVERY = 0.05
IDLE_SECONDS = 5.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Stack:
    """The web app, two workers, and the database they share."""

    def __init__(self, folder: Path, workers: int) -> None:
        import psycopg
        from redis import Redis

        self.folder = folder
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {DATABASE}")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KUMPUL_")}
        self.env.update({
            "KUMPUL_DATA_DIR": str(folder / "data"), "KUMPUL_REDIS_URL": REDIS_URL,
            "KUMPUL_DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + "/" + DATABASE,
            "KUMPUL_PORT": str(self.port), "KUMPUL_PUBLIC_URL": self.url,
            "KUMPUL_LOG_LEVEL": "warning", "KUMPUL_MAIL_TRANSPORT": "log",
            "KUMPUL_LANGUAGE": "en",
            "KUMPUL_SECRET_KEY": "bench-secret-key-that-is-long-enough-01234567"})
        Redis.from_url(REDIS_URL).flushdb()
        subprocess.run([sys.executable, "-m", "service.cli", "migrate"], env=self.env,
                       check=True, capture_output=True)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.start(["web"], "web.log")
        wait_port(self.port)
        self.workers = [  # the log transport writes each mail at info level
            self.start(["worker", "default"], f"worker-{n}.log", KUMPUL_LOG_LEVEL="info")
            for n in range(workers)]

    def start(self, args: list[str], log: str, **env: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", *args],
                                env={**self.env, **env},
                                stdout=(self.folder / log).open("w"), stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def settings(self) -> Any:
        from service.settings import load_settings

        return load_settings({k: v for k, v in self.env.items() if k.startswith("KUMPUL_")},
                             env_file=None)

    def stop(self) -> None:
        import psycopg
        from redis import Redis

        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        Redis.from_url(REDIS_URL).flushdb()


def seed(stack: Stack, members: int, reps: int) -> dict[str, Any]:
    """An owner and a host through the API; `members` members in bulk; a session per
    repetition; a member's token for the prober."""
    from sqlalchemy import insert, select

    from service import security
    from service.db.engine import async_sessions, make_async_engine
    from service.db.models import Community, Membership, User, utcnow
    from service.domain import accounts
    from service.settings import driver_url

    url = driver_url(stack.env["KUMPUL_DATABASE_URL"], sync=False)

    async def admin() -> None:
        engine = make_async_engine(url)
        async with async_sessions(engine).begin() as session:
            await accounts.create_user(session, email="owner@example.com", display_name="Owner",
                                       password=PASSWORD, is_admin=True)
        await engine.dispose()

    asyncio.run(admin())
    with httpx.Client(base_url=stack.url, timeout=60) as http:
        def token(email: str) -> str:
            login = http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
            made = http.post("/api/tokens", json={"name": "bench"},
                             headers={"X-CSRF-Token": login.json()["csrf_token"]})
            http.cookies.clear()
            return str(made.json()["token"])

        owner = {"Authorization": f"Bearer {token('owner@example.com')}"}
        slug = http.post("/api/communities", json={"name": "Fan-out"},
                         headers=owner).json()["slug"]
        link = http.post(f"/api/communities/{slug}/invites", headers=owner,
                         json={"role": "host"}).json()["url"]
        http.post(f"/api/invites/{link.rsplit('/', 1)[1]}/accept", json={
            "email": "host@example.com", "display_name": "Host", "password": PASSWORD})
        http.cookies.clear()
        host = {"Authorization": f"Bearer {token('host@example.com')}"}

    async def bulk() -> None:
        engine = make_async_engine(url)
        hashed = security.hash_password(PASSWORD)
        async with async_sessions(engine).begin() as session:
            community = await session.scalar(select(Community).where(Community.slug == slug))
            assert community is not None
            now = utcnow()
            for start in range(0, members, 1000):
                rows = [{"email": f"member{n}@example.com", "display_name": f"Member {n}",
                         "password_hash": hashed, "is_admin": False, "created_at": now,
                         "language": "id" if n % 2 else None,
                         "time_zone": "Asia/Makassar" if n % 2 else None}
                        for n in range(start, min(members, start + 1000))]
                ids = list(await session.scalars(insert(User).returning(User.id), rows))
                await session.execute(insert(Membership), [
                    {"community_id": community.id, "user_id": uid, "role": "member",
                     "created_at": now} for uid in ids])
        await engine.dispose()

    asyncio.run(bulk())
    with httpx.Client(base_url=stack.url, timeout=60) as http:
        sessions = [http.post(f"/api/communities/{slug}/live", headers=host,
                              json={"title": f"Fan-out {n}"}).json()["id"] for n in range(reps)]
        probe = token("member0@example.com")
    return {"slug": slug, "sessions": sessions, "probe": probe}


# --- the prober ---------------------------------------------------------------------------

async def probe(url: str, token: str, slug: str, stop: asyncio.Event,
                into: list[float], errors: list[str]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    paths = [f"/api/communities/{slug}/live", "/api/notifications?limit=20"]
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as client:
        n = 0
        while not stop.is_set():
            started = time.perf_counter()
            try:
                answer = await client.get(paths[n % 2])
                if answer.status_code != 200:
                    errors.append(f"{paths[n % 2]}: {answer.status_code}")
                else:
                    into.append((time.perf_counter() - started) * 1000)
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
            n += 1
            await asyncio.sleep(max(0.0, PROBE_EVERY - (time.perf_counter() - started)))


async def idle(url: str, token: str, slug: str, errors: list[str]) -> list[float]:
    found: list[float] = []
    stop = asyncio.Event()
    task = asyncio.create_task(probe(url, token, slug, stop, found, errors))
    await asyncio.sleep(IDLE_SECONDS)
    stop.set()
    await task
    return found


# --- one fan-out ----------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its finished children (RQ's forked work horses)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def chunk_jobs(redis: Any, session_id: str) -> int:
    return sum(1 for _ in redis.scan_iter(match=f"rq:job:notify-session_live_{session_id}-*",
                                          count=1000))


def outbox_counts(engine: Any, since: Any) -> tuple[int, int]:
    from sqlalchemy import func, select

    from service.db.models import MailOutbox

    with engine.connect() as conn:
        recorded = conn.scalar(select(func.count()).select_from(MailOutbox).where(
            MailOutbox.kind == "session_live", MailOutbox.created_at >= since))
        sent = conn.scalar(select(func.count()).select_from(MailOutbox).where(
            MailOutbox.kind == "session_live", MailOutbox.created_at >= since,
            MailOutbox.sent_at.is_not(None)))
    return int(recorded or 0), int(sent or 0)


async def fan_out(stack: Stack, world: dict[str, Any], session_id: str, members: int,
                  errors: list[str]) -> dict[str, float]:
    from redis import Redis
    from sqlalchemy import create_engine

    from service import jobs
    from service.db.models import utcnow
    from service.domain import live
    from service.settings import driver_url
    from workers.context import JobContext

    redis = Redis.from_url(REDIS_URL)
    engine = create_engine(driver_url(stack.env["KUMPUL_DATABASE_URL"], sync=True))
    chunks = -(-members // jobs.NOTIFY_CHUNK)
    latencies: list[float] = []
    stop = asyncio.Event()
    prober = asyncio.create_task(probe(stack.url, world["probe"], world["slug"], stop,
                                       latencies, errors))
    await asyncio.sleep(0.5)
    ctx = JobContext(stack.settings())
    cpu_before = sum(cpu_seconds(p.pid) for p in stack.workers)
    since = utcnow()
    began = time.perf_counter()
    await asyncio.to_thread(ctx.db, lambda session: live.go_live(session, session_id))
    called = time.perf_counter() - began
    enqueued = first_recorded = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        now = time.perf_counter() - began
        if enqueued is None and (members <= jobs.NOTIFY_CHUNK or
                                 await asyncio.to_thread(chunk_jobs, redis, session_id) >= chunks):
            enqueued = now
        recorded, sent = await asyncio.to_thread(outbox_counts, engine, since)
        if first_recorded is None and recorded:
            first_recorded = now
        if sent >= members:
            break
        await asyncio.sleep(0.02 if enqueued is None else 0.1)
    else:
        raise RuntimeError(f"only {sent} of {members} mails were sent in 300 s")
    done = time.perf_counter() - began
    await asyncio.sleep(0.5)
    worker_cpu = sum(cpu_seconds(p.pid) for p in stack.workers) - cpu_before
    stop.set()
    await prober
    await asyncio.to_thread(ctx.close)
    engine.dispose()
    redis.close()
    assert enqueued is not None and first_recorded is not None
    return {"call_s": called, "enqueue_s": enqueued, "all_sent_s": done,
            "mails_per_s": members / done,
            "delivery_mails_per_s": members / max(done - first_recorded, 1e-6),
            "p95_ms": percentile(latencies, 95), "probes": len(latencies),
            "worker_cpu_ms_per_mail": worker_cpu * 1000 / members}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="kumpul-bench-notify-"))
    stack = None
    try:
        stack = Stack(folder, args.workers)
        seeded = time.perf_counter()
        world = seed(stack, args.members, args.reps)
        print(f"seeded {args.members} members in {time.perf_counter() - seeded:.1f} s; "
              f"{args.workers} workers, log transport")
        errors: list[str] = []
        rows = []
        for n, session_id in enumerate(world["sessions"]):
            idle_ms = asyncio.run(idle(stack.url, world["probe"], world["slug"], errors))
            run = asyncio.run(fan_out(stack, world, session_id, args.members, errors))
            run["p95_idle_ms"] = percentile(idle_ms, 95)
            run["p95_ratio"] = run["p95_ms"] / max(run["p95_idle_ms"], 0.001)
            rows.append(run)
            print(f"rep {n + 1}: go-live call {run['call_s']:.3f} s, all chunks queued "
                  f"{run['enqueue_s']:.2f} s, all sent {run['all_sent_s']:.2f} s "
                  f"({run['mails_per_s']:.0f} mails/s end to end, "
                  f"{run['delivery_mails_per_s']:.0f}/s from the first recorded; workers "
                  f"used {run['worker_cpu_ms_per_mail']:.2f} ms of CPU per mail); "
                  f"API p95 {run['p95_idle_ms']:.1f} ms idle, {run['p95_ms']:.1f} ms during "
                  f"({int(run['probes'])} probes)")
    finally:
        if stack is not None:
            stack.stop()
    med = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    print()
    print(f"{'measure':<34}{'median':>12}{'goal':>10}")
    for key, goal in (("enqueue_s", "<= 2"), ("mails_per_s", ">= 500"),
                      ("delivery_mails_per_s", ""), ("worker_cpu_ms_per_mail", ""),
                      ("p95_idle_ms", ""), ("p95_ms", ""),
                      ("p95_ratio", "<= 2")):
        print(f"{key:<34}{med[key]:>12.2f}{goal:>10}")
    for error in errors[:10]:
        print("error:", error)
    shutil.rmtree(folder, ignore_errors=True)
    print(f"RESULT enqueue_s={med['enqueue_s']:.3f} mails_per_s={med['mails_per_s']:.1f} "
          f"api_p95_ratio={med['p95_ratio']:.2f} members={args.members} "
          f"workers={args.workers} reps={len(rows)} "
          f"delivery_mails_per_s={med['delivery_mails_per_s']:.1f} "
          f"p95_idle_ms={med['p95_idle_ms']:.1f} p95_ms={med['p95_ms']:.1f} "
          f"worker_cpu_ms_per_mail={med['worker_cpu_ms_per_mail']:.3f} "
          f"load_avg_1m={os.getloadavg()[0]:.1f} "
          f"errors={len(errors)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
