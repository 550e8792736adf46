"""Load benchmark: the product under a busy hour on this machine - 50 concurrent tus
uploads, two live rooms with 50 viewers each, and workers ingesting what arrives - against
the same API calls on the idle app, in the same run.

Run from the repository root: `.venv/bin/python bench/load.py [--uploads 50] [--viewers 50]
[--nodes 1]` (`--nodes 2`: two web nodes on the one address, as `kumpul serve` runs them on
2 cores; compare runs of both, alternating).

- It starts its own `kumpul web` (PostgreSQL database `kumpul_bench_load`, created and
  dropped here; Redis database 13; a temporary folder), two `kumpul worker ingest`
  processes, one publisher process per room (aiortc sending a generated 640x480 VP8 stream
  through WHIP with the session's stream key) and one viewer process per room (light
  viewers: WHEP with a member's token, ICE, DTLS and SRTP like any viewer, frames counted by
  the RTP marker bit without decoding).
- Uploads: each of 10 members sends 5 stories at once (50 in flight), each a generated
  4 s 640x360 MP4 (about 2 MB, distinct bytes), in 1 MiB PATCHes (`--chunk-kib`; the story
  page sends 8 MiB); a failed request is an error, never retried. Lost: a story that does
  not reach `ready_for_review` with the SHA-256 of the bytes sent.
- API latency: a prober (a process of its own, at normal priority, so that it times the
  server and not the uploaders' event loop) asks `GET /api/communities/{slug}/live` and
  `GET .../clips/mine` every 50 ms, first on the idle app (the baseline), then during the
  load; the tus requests' own latencies are reported too.
- `--cores C` holds each web node to C of a core (a cgroup of its own, as in
  `bench/scale.py`'s room case): one node against two then compares one share of CPU with
  two, where on this machine the load itself would otherwise take the second core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
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

from bench.lightview import Counter  # noqa: E402  (light viewers count frames the same way)
from bench.ports import free_port, wait_port  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/13"
PG_ADMIN = os.environ.get("KUMPUL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
DATABASE = "kumpul_bench_load"
PASSWORD = "benchmark password"  # noqa: S105 - throwaway accounts in a temporary database
MEMBERS = 10


# --- helpers --------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values) - idle) / tick, sum(values) / tick


def remote() -> None:
    """Publishers and viewers stand in for people on other machines: on this one they run
    at a lower priority, so the CPU they need does not count against the server."""
    os.nice(10)


def b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


# --- the publisher and the light viewers (subprocesses) -------------------------------------

async def publish(url: str, token: str, source: str) -> None:
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaPlayer

    from service.live.ice import use_host_addresses

    use_host_addresses(["127.0.0.1"])
    player = MediaPlayer(source, decode=False)
    pc = RTCPeerConnection()
    assert player.video is not None
    pc.addTrack(player.video)
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(url, content=pc.localDescription.sdp, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/sdp"})
    if answer.status_code != 201:
        raise SystemExit(f"publish failed: {answer.status_code} {answer.text}")
    await pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
    await asyncio.Event().wait()


async def view(url: str, tokens: list[str], count: int, seconds: float, report: str) -> None:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from service.live.ice import use_host_addresses

    use_host_addresses(["127.0.0.1"])
    viewers: list[dict[str, Any]] = []
    errors: list[str] = []
    async with httpx.AsyncClient(timeout=60) as client:
        for n in range(count):
            pc = RTCPeerConnection()
            pc.addTransceiver("video", direction="recvonly")
            entry: dict[str, Any] = {"pc": pc, "counter": None}

            @pc.on("track")
            def on_track(track: Any, pc: Any = pc, entry: dict[str, Any] = entry) -> None:
                receiver = next(t.receiver for t in pc.getTransceivers()
                                if t.receiver.track is track)
                counter = Counter()
                receiver._handle_rtp_packet = counter.handle
                entry["counter"] = counter

            await pc.setLocalDescription(await pc.createOffer())
            answer = await client.post(url, content=pc.localDescription.sdp, headers={
                "Authorization": f"Bearer {tokens[n % len(tokens)]}",
                "Content-Type": "application/sdp"})
            if answer.status_code != 201:
                errors.append(f"WHEP {answer.status_code}")
                await pc.close()
                continue
            await pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
            viewers.append(entry)
    await asyncio.sleep(3)  # every viewer's first keyframe
    began = time.monotonic()
    await asyncio.to_thread(Path(report + ".ready").touch)
    await asyncio.sleep(seconds)
    ended = time.monotonic()
    fps = []
    for entry in viewers:
        times = entry["counter"].times if entry["counter"] else []
        fps.append(len([t for t in times if began <= t < ended]) / (ended - began))
    await asyncio.to_thread(Path(report).write_text, json.dumps({"fps": fps,
                                                                 "errors": errors}))
    for entry in viewers:
        await entry["pc"].close()


# --- uploads and the prober -----------------------------------------------------------------

class Latencies:
    def __init__(self) -> None:
        self.api: list[float] = []
        self.tus: list[float] = []
        self.errors: list[str] = []


async def timed(client: httpx.AsyncClient, into: list[float], errors: list[str],
                method: str, url: str, ok: set[int], **kwargs: Any) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        errors.append(f"{method} {url.split('?')[0]}: {exc!r}")
        return None
    into.append((time.perf_counter() - started) * 1000)
    if response.status_code not in ok:
        errors.append(f"{method} {url.split('?')[0]}: {response.status_code} "
                      f"{response.text[:120]}")
        return None
    return response


async def upload(client: httpx.AsyncClient, token: str, slug: str, data: bytes,
                 name: str, lat: Latencies, chunk: int) -> bool:
    auth = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    made = await timed(client, lat.tus, lat.errors, "POST", "/api/uploads", {201}, headers={
        **auth, "Upload-Length": str(len(data)),
        "Upload-Metadata": f"community {b64(slug)},release {b64('1')},filename {b64(name)}"})
    if made is None:
        return False
    location = made.headers["location"]
    for offset in range(0, len(data), chunk):
        sent = await timed(client, lat.tus, lat.errors, "PATCH", location, {204}, headers={
            **auth, "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream"},
            content=data[offset:offset + chunk])
        if sent is None:
            return False
    return True


async def probe_api(client: httpx.AsyncClient, token: str, slug: str, lat: Latencies,
                    stop: asyncio.Event) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    paths = [f"/api/communities/{slug}/live", f"/api/communities/{slug}/clips/mine"]
    n = 0
    while not stop.is_set():
        await timed(client, lat.api, lat.errors, "GET", paths[n % 2], {200}, headers=auth)
        n += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


async def probe_until(url: str, token: str, slug: str, stop: Path, report: Path) -> None:
    """The prober process: asks until the file `stop` exists, then writes its report."""
    lat = Latencies()
    ended = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        task = asyncio.create_task(probe_api(client, token, slug, lat, ended))
        while not await asyncio.to_thread(stop.exists):  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.05)
        ended.set()
        await task
    await asyncio.to_thread(report.write_text, json.dumps({"api": lat.api,
                                                           "errors": lat.errors}))


class Prober:
    """The API prober in a process of its own at normal priority: sharing the uploaders'
    event loop, it timed that loop's own delays (50 uploads pushing their bodies) as well as
    the server's."""

    def __init__(self, folder: Path, url: str, token: str, slug: str) -> None:
        stamp = time.monotonic_ns()
        self.stop, self.report = folder / f"probe-stop-{stamp}", folder / f"probe-{stamp}.json"
        self.proc = subprocess.Popen([sys.executable, __file__, "--probe", url, "--token",
                                      token, "--slug", slug, "--stop", str(self.stop),
                                      "--report", str(self.report)])

    def end(self, into: Latencies) -> Latencies:
        self.stop.write_text("")
        self.proc.wait(120)
        found = json.loads(self.report.read_text())
        into.api += found["api"]
        into.errors += found["errors"]
        return into


def idle_baseline(folder: Path, url: str, token: str, slug: str, seconds: float) -> Latencies:
    prober = Prober(folder, url, token, slug)
    time.sleep(seconds)
    return prober.end(Latencies())


async def busy(prober: Prober, url: str, members: list[str], slug: str,
               stories: list[tuple[str, bytes]], per_member: int,
               chunk: int) -> tuple[Latencies, int]:
    lat = Latencies()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        jobs = [upload(client, members[i // per_member], slug, data, name, lat, chunk)
                for i, (name, data) in enumerate(stories)]
        done = await asyncio.gather(*jobs)
    await asyncio.sleep(2)
    await asyncio.to_thread(prober.end, lat)
    return lat, sum(done)


# --- the run --------------------------------------------------------------------------------

class Stack:
    """Kumpul's processes for the run: web, workers; and the database they share."""

    def __init__(self, folder: Path, nodes: int = 1, cores: float = 0.0) -> None:
        import psycopg

        from bench.scale import Share

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
            "KUMPUL_LOG_LEVEL": "warning", "KUMPUL_ICE_HOST_ADDRESSES": "127.0.0.1",
            "KUMPUL_SECRET_KEY": "bench-secret-key-that-is-long-enough-01234567"})
        from redis import Redis

        Redis.from_url(REDIS_URL).flushdb()
        subprocess.run([sys.executable, "-m", "service.cli", "migrate"], env=self.env,
                       check=True, capture_output=True)
        self.procs: list[subprocess.Popen[bytes]] = []
        if nodes == 1:
            self.webs = [self.start(["web"], "web.log")]
        else:  # as `kumpul serve` runs them: one public port, a node port each
            self.webs = [self.start(["web", "--share-port"], f"web-{i}.log",
                                    KUMPUL_NODE_PORT=str(free_port()))
                         for i in range(nodes)]
        self.shares: list[Share] = []
        if cores:  # each node held to the same CPU share, as machines of their own would be
            for i, web in enumerate(self.webs):
                share = Share(f"load-web-{i}", cores, i % (os.cpu_count() or 1))
                share.apply(web.pid)
                self.shares.append(share)
        wait_port(self.port)

    def web_cpu(self) -> float:
        """CPU seconds of every web node."""
        return sum(cpu_seconds(web.pid) for web in self.webs)

    def start(self, args: list[str], log: str, **env: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", *args],
                                env={**self.env, **env},
                                stdout=(self.folder / log).open("w"), stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

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
        for share in self.shares:
            share.remove()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        Redis.from_url(REDIS_URL).flushdb()


def seed(stack: Stack) -> dict[str, Any]:
    """An owner, a host with two sessions, and members with personal tokens."""
    from service.db.engine import async_sessions, make_async_engine
    from service.domain import accounts
    from service.settings import driver_url

    async def admin() -> None:
        engine = make_async_engine(driver_url(stack.env["KUMPUL_DATABASE_URL"], sync=False))
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
        slug = http.post("/api/communities", json={"name": "Load"}, headers=owner).json()["slug"]
        people: dict[str, list[str]] = {"host": [], "member": []}
        for role, count in (("host", 1), ("member", MEMBERS)):
            link = http.post(f"/api/communities/{slug}/invites", headers=owner, json={
                "role": role, "max_uses": count}).json()["url"]
            for n in range(count):
                email = f"{role}{n}@example.com"
                http.post(f"/api/invites/{link.rsplit('/', 1)[1]}/accept", json={
                    "email": email, "display_name": f"{role.title()} {n}",
                    "password": PASSWORD})
                http.cookies.clear()
                people[role].append(token(email))
        host = {"Authorization": f"Bearer {people['host'][0]}"}
        sessions = [http.post(f"/api/communities/{slug}/live", headers=host,
                              json={"title": f"Room {n}"}).json() for n in range(2)]
    return {"slug": slug, "members": people["member"], "sessions": sessions}


def stories(folder: Path, count: int) -> list[tuple[str, bytes]]:
    base = folder / "story.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=s=640x360:r=30:d=4", "-f", "lavfi", "-i", "sine=f=440:d=4",
                    "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "4M", "-pix_fmt",
                    "yuv420p", "-c:a", "aac", "-shortest", str(base)], check=True)
    made = []
    for n in range(count):  # distinct bytes: a comment in the header
        path = folder / f"story-{n}.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(base), "-c", "copy",
                        "-metadata", f"comment=load story {n}", str(path)], check=True)
        made.append((path.name, path.read_bytes()))
    return made


def ingested(stack: Stack) -> list[tuple[str, str | None, str]]:
    import psycopg

    with psycopg.connect(stack.env["KUMPUL_DATABASE_URL"]) as conn:
        rows = conn.execute("SELECT filename, sha256, state FROM clips").fetchall()
    return [(str(f), s, str(st)) for f, s, st in rows]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--publish")
    parser.add_argument("--token")
    parser.add_argument("--source")
    parser.add_argument("--view")
    parser.add_argument("--tokens")
    parser.add_argument("--count", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--report")
    parser.add_argument("--probe")
    parser.add_argument("--slug")
    parser.add_argument("--stop")
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--viewers", type=int, default=50, help="per room")
    parser.add_argument("--chunk-kib", type=int, default=1024, help="bytes per PATCH, KiB")
    parser.add_argument("--nodes", type=int, default=1,
                        help="web nodes on the one address (as KUMPUL_WEB_NODES runs them)")
    parser.add_argument("--cores", type=float, default=0.0,
                        help="hold each web node to this much CPU (a cgroup; 0: no cap)")
    args = parser.parse_args()
    if args.publish:
        asyncio.run(publish(args.publish, args.token, args.source))
        return 0
    if args.probe:
        asyncio.run(probe_until(args.probe, args.token, args.slug, Path(args.stop),
                                Path(args.report)))
        return 0
    if args.view:
        asyncio.run(view(args.view, args.tokens.split(","), args.count, args.seconds,
                         args.report))
        return 0

    folder = Path(tempfile.mkdtemp(prefix="kumpul-bench-load-"))
    stack = None
    helpers: list[subprocess.Popen[bytes]] = []
    try:
        stack = Stack(folder, args.nodes, args.cores)
        world = seed(stack)
        slug, members = world["slug"], world["members"]
        per_member = -(-args.uploads // MEMBERS)
        made = stories(folder, args.uploads)
        sent = {name: hashlib.sha256(data).hexdigest() for name, data in made}
        source = folder / "live.webm"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=s=640x480:r=30:d=600", "-c:v", "libvpx", "-b:v", "1M",
                        "-g", "15", "-deadline", "realtime", "-cpu-used", "8", "-an",
                        str(source)], check=True)

        idle = idle_baseline(folder, stack.url, members[0], slug, 10)
        for _ in range(2):
            stack.start(["worker", "ingest"], f"worker-{len(stack.procs)}.log")
        for live in world["sessions"]:
            helpers.append(subprocess.Popen([sys.executable, __file__, "--publish",
                                             live["whip_url"], "--token",
                                             live["publish_token"], "--source", str(source)],
                                            preexec_fn=remote))
        time.sleep(3)
        reports = []
        watch_seconds = 50.0
        for n, live in enumerate(world["sessions"]):
            report = folder / f"viewers-{n}.json"
            reports.append(report)
            helpers.append(subprocess.Popen([sys.executable, __file__, "--view",
                                             live["whep_url"], "--tokens", ",".join(members),
                                             "--count", str(args.viewers), "--seconds",
                                             str(watch_seconds), "--report", str(report)],
                                            preexec_fn=remote))
        deadline = time.monotonic() + 120
        while not all(Path(str(r) + ".ready").exists() for r in reports):
            if time.monotonic() > deadline:
                raise RuntimeError("the viewers did not all join")
            time.sleep(0.2)

        live0 = stack.web_cpu()
        time.sleep(5)  # the rooms alone
        live_pct = (stack.web_cpu() - live0) / 5 * 100
        prober = Prober(folder, stack.url, members[0], slug)
        time.sleep(1)  # its first requests go out before the uploads begin
        started = time.monotonic()
        web0, (busy0, total0) = stack.web_cpu(), machine_busy()
        lat, completed = asyncio.run(busy(prober, stack.url, members, slug, made, per_member,
                                          args.chunk_kib * 1024))
        upload_s = time.monotonic() - started
        (busy1, total1), wall = machine_busy(), time.monotonic() - started
        web_pct = (stack.web_cpu() - web0) / wall * 100
        machine_pct = (busy1 - busy0) / max(total1 - total0, 0.001) * 100
        deadline = time.monotonic() + 300
        while True:
            rows = ingested(stack)
            waiting = [r for r in rows if r[2] in ("uploading", "uploaded", "processing")]
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(1)
        ingest_s = time.monotonic() - started
        for report in reports:
            for _ in range(600):
                if report.exists():
                    break
                time.sleep(0.2)
        viewer_data = [json.loads(r.read_text()) for r in reports]
    finally:
        for proc in helpers:
            proc.kill()
        if stack is not None:
            stack.stop()
        out = ROOT / "bench" / "out"  # the processes' logs outlive the run
        out.mkdir(exist_ok=True)
        for log in folder.glob("*.log"):
            shutil.copy(log, out / f"load-{log.name}")

    fps = [f for d in viewer_data for f in d["fps"]]
    viewer_errors = [e for d in viewer_data for e in d["errors"]]
    stalled = [f for f in fps if f < 1]
    good = {name for name, sha, state in rows
            if state == "ready_for_review" and sha == sent.get(name)}
    lost = args.uploads - len(good)
    for name, sha, state in rows:
        if name not in good:
            print(f"lost: {name} is {state}, SHA-256 "
                  f"{'as sent' if sha == sent.get(name) else repr(sha)}")
    errors = len(lat.errors) + len(viewer_errors) + len(stalled)
    p95_idle, p95_busy = percentile(idle.api, 95), percentile(lat.api, 95)

    print(f"\nLoad on this machine: {args.uploads} tus uploads at once from {MEMBERS} members "
          f"({args.chunk_kib} KiB PATCHes), 2 live rooms x {args.viewers} light viewers, "
          f"2 ingest workers; {args.nodes} web node(s)"
          + (f", each held to {args.cores:g} of a core" if args.cores else "") + "\n")
    print(f"{'API latency (GET live, GET clips/mine)':42} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8} {'requests':>9} {'ratio p95':>10}")
    for label, values in (("idle app (baseline)", idle.api), ("under load", lat.api)):
        print(f"{label:42} {percentile(values, 50):8.1f} {percentile(values, 95):8.1f} "
              f"{percentile(values, 99):8.1f} {len(values):9d} "
              f"{percentile(values, 95) / max(p95_idle, 0.001):10.2f}")
    print(f"{'tus requests (POST, PATCH) under load':42} {percentile(lat.tus, 50):8.1f} "
          f"{percentile(lat.tus, 95):8.1f} {percentile(lat.tus, 99):8.1f} {len(lat.tus):9d}")
    print(f"\nuploads completed {completed}/{args.uploads} in {upload_s:.1f} s; ready with the "
          f"sent SHA-256: {len(good)}; all ingested after {ingest_s:.1f} s")
    print(f"viewers {len(fps)}/{2 * args.viewers}: fps p10 {percentile(fps, 10):.1f}, median "
          f"{statistics.median(fps) if fps else 0:.1f}; stalled (< 1 fps) {len(stalled)}")
    print(f"the web node(s) used {live_pct:.0f}% of one core for the two rooms alone, "
          f"{web_pct:.0f}% while the uploads came; the machine's "
          f"{os.cpu_count()} cores were {machine_pct:.0f}% busy (web, workers, publishers, "
          "viewers and this client share them)")
    for error in (lat.errors + viewer_errors)[:10]:
        print("error:", error)
    print(f"RESULT errors={errors} lost_uploads={lost} p95_ms={p95_busy:.1f} "
          f"uploads={len(good)} viewers={len(fps) - len(stalled)} "
          f"p95_idle_ms={p95_idle:.1f} p95_ratio={p95_busy / max(p95_idle, 0.001):.2f} "
          f"viewer_fps_p10={percentile(fps, 10):.1f} ingest_s={ingest_s:.1f} "
          f"web_cpu_pct={web_pct:.0f} web_cpu_rooms_only_pct={live_pct:.0f} "
          f"machine_busy_pct={machine_pct:.0f} web_nodes={args.nodes} "
          f"web_cores={args.cores:g} "
          f"viewer_kind=light")
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
