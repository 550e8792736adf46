"""Upload benchmark: a 1 GiB story through the app (tus) against a direct put, same store.

Run from the repository root: `.venv/bin/python bench/upload.py [--mib 1024] [--reps 3]`.
The uploading client is curl (native, like a browser's network stack) sending the whole
file in one PATCH, as tus-js-client does by default.
It starts its own app process (`kumpul web`), moto's S3 server, and uses Redis database
12 and a temporary folder; everything is removed at the end. Direct puts and tus uploads
alternate and the medians are compared. The app's peak RSS growth during the tus uploads
is read from /proc (VmHWM, reset before each upload).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx
from redis import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ports import free_port, wait_port  # noqa: E402
from service.db.engine import async_sessions, make_async_engine  # noqa: E402
from service.domain import accounts  # noqa: E402
from service.settings import Settings, load_settings  # noqa: E402
from service.storage import open_store  # noqa: E402
from service.storage.s3 import S3Store  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/12"
PASSWORD = "benchmark password"  # noqa: S105 - a throwaway account in a temp database


def env_of(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMPUL_")}
    return {**env, **settings.as_environ()}


def make_source(path: Path, mib: int) -> str:
    """A file that starts like an MP4 (the app checks the first bytes), then random data."""
    digest = hashlib.sha256()
    block = os.urandom(8 * 1024 * 1024)
    with path.open("wb") as fh:
        head = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
        fh.write(head)
        digest.update(head)
        written = len(head)
        while written < mib * 1024 * 1024:
            chunk = block[: mib * 1024 * 1024 - written]
            fh.write(chunk)
            digest.update(chunk)
            written += len(chunk)
    return digest.hexdigest()


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


class App:
    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.url = settings.public_url
        subprocess.run([sys.executable, "-m", "service.cli", "migrate"], env=env_of(settings),
                       check=True, capture_output=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "web"],
                                     env=env_of(settings), stdout=log.open("w"),
                                     stderr=subprocess.STDOUT)
        wait_port(settings.port)
        self.token, self.slug = self._seed()

    def _seed(self) -> tuple[str, str]:
        async def admin() -> None:
            engine = make_async_engine(self.settings.async_database_url)
            async with async_sessions(engine).begin() as session:
                await accounts.create_user(session, email="bench@example.com",
                                           display_name="Bench", password=PASSWORD,
                                           is_admin=True)
            await engine.dispose()

        asyncio.run(admin())
        with httpx.Client(base_url=self.url) as http:
            csrf = http.post("/api/auth/login", json={"email": "bench@example.com",
                                                      "password": PASSWORD}).json()["csrf_token"]
            slug = http.post("/api/communities", json={"name": "Bench"},
                             headers={"X-CSRF-Token": csrf}).json()["slug"]
            token = http.post("/api/tokens", json={"name": "bench"},
                              headers={"X-CSRF-Token": csrf}).json()["token"]
        return token, slug

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def curl_patch(url: str, source: Path, headers: dict[str, str]) -> None:
    """Send the whole file as one PATCH with curl: a native client, as a browser's network
    stack is, and one request, as tus-js-client sends by default (chunkSize Infinity)."""
    args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH", "-T",
            str(source)]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    done = subprocess.run([*args, url], capture_output=True, text=True, timeout=900)
    if done.stdout.strip() not in {"200", "204"}:
        raise RuntimeError(f"upload failed: {done.stdout} {done.stderr}")


def tus_upload(app: App, source: Path) -> float:
    import base64

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    auth = {"Authorization": f"Bearer {app.token}", "Tus-Resumable": "1.0.0"}
    with httpx.Client(base_url=app.url, headers=auth) as http:
        started = time.perf_counter()
        made = http.post("/api/uploads", headers={
            "Upload-Length": str(source.stat().st_size),
            "Upload-Metadata": f"community {b64(app.slug)},release {b64('1')},"
                               f"filename {b64('bench.mp4')}"})
        assert made.status_code == 201, made.text
    curl_patch(app.url + made.headers["location"], source, {
        **auth, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    return time.perf_counter() - started


def direct_put(settings: Settings, source: Path, key: str) -> float:
    store = open_store(settings)
    started = time.perf_counter()
    with source.open("rb") as fh:
        store.put(key, fh, length=source.stat().st_size)
    elapsed = time.perf_counter() - started
    store.delete(key)
    return elapsed


def clear_clips(settings: Settings) -> None:
    store = open_store(settings)
    for info in list(store.list("clips/")):
        store.delete(info.key)


def run_store(kind: str, work: Path, source: Path, reps: int,
              moto: dict[str, str] | None) -> tuple[list[float], list[float], float]:
    port = free_port()
    env = {"KUMPUL_DATA_DIR": str(work / kind), "KUMPUL_REDIS_URL": REDIS_URL,
           "KUMPUL_PORT": str(port), "KUMPUL_PUBLIC_URL": f"http://127.0.0.1:{port}",
           "KUMPUL_LOG_LEVEL": "warning", "KUMPUL_UPLOAD_MAX_BYTES": str(64 * 1024**3),
           "KUMPUL_SECRET_KEY": "bench-secret-key-that-is-long-enough-01234567"}
    if moto:
        env.update(moto)
    settings = load_settings(env, env_file=None)
    store = open_store(settings)
    if isinstance(store, S3Store):
        store.ensure_bucket()
    app = App(settings, work / f"{kind}.log")
    direct, through, growth = [], [], 0.0
    try:
        for rep in range(reps):
            direct.append(direct_put(settings, source, f"bench/direct-{rep}"))
            baseline = rss_kib(app.proc.pid, "VmRSS")
            reset_peak(app.proc.pid)
            through.append(tus_upload(app, source))
            growth = max(growth, (rss_kib(app.proc.pid, "VmHWM") - baseline) / 1024)
            clear_clips(settings)
    finally:
        app.stop()
    return direct, through, growth


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    Redis.from_url(REDIS_URL).flushdb()
    work = Path(tempfile.mkdtemp(prefix="kumpul-bench-upload-"))
    moto_port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(moto_port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(moto_port)
        source = work / "source.mp4"
        make_source(source, args.mib)
        s3 = {"KUMPUL_STORAGE": "s3", "KUMPUL_S3_ENDPOINT": f"127.0.0.1:{moto_port}",
              "KUMPUL_S3_ACCESS_KEY": "bench", "KUMPUL_S3_SECRET_KEY": "bench-secret",
              "KUMPUL_S3_BUCKET": "bench"}
        results = {kind: run_store(kind, work, source, args.reps, cfg)
                   for kind, cfg in (("local", None), ("s3", s3))}
    finally:
        moto.terminate()
        moto.wait(10)
        shutil.rmtree(work, ignore_errors=True)
        Redis.from_url(REDIS_URL).flushdb()

    mib = args.mib
    print(f"\nUpload of {mib} MiB, median of {args.reps} interleaved runs "
          "(client: curl, one PATCH for the whole file)\n")
    print(f"{'store':6} {'method':18} {'median s':>9} {'MiB/s':>8} {'ratio':>7}")
    ratios = {}
    growth = 0.0
    for kind, (direct, through, grown) in results.items():
        d, t = statistics.median(direct), statistics.median(through)
        ratios[kind] = d / t
        growth = max(growth, grown)
        print(f"{kind:6} {'direct put':18} {d:9.2f} {mib / d:8.1f} {1.0:7.2f}")
        print(f"{kind:6} {'tus through app':18} {t:9.2f} {mib / t:8.1f} {d / t:7.2f}")
    print(f"\napp peak RSS growth during a tus upload: {growth:.1f} MB")
    print(f"RESULT throughput_ratio_local={ratios['local']:.3f} "
          f"throughput_ratio_s3={ratios['s3']:.3f} rss_growth_mb={growth:.1f} mib={mib}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
