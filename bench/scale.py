"""Scale benchmark (issue 19): uploads on any node, one room beyond one process, routing.

Run from the repository root: `.venv/bin/python bench/scale.py [--case upload|room|routing|chat]`
(each `--case` adds one; all four by default).

It starts real `kumpul web` nodes (two, on their own ports, one SQLite database, a
redis-server of its own, one store), moto's S3 server behind a byte-counting TCP proxy,
a publisher process and light viewer processes; everything is removed at the end.

- `upload_case`: a 100 MiB story in 1 MiB PATCHes alternating between the two nodes; at 60%
  the first is SIGKILLed in the middle of a PATCH and the other finishes the upload; the
  stored object's SHA-256 is compared with the file's, and no unfinished tail (`.part`
  object) or spool file may be left. Then a second upload in 8 MiB PATCHes: bytes S3
  received (counted by the proxy, headers included) / file size.
- `room_case`: one publisher (640x480 30 fps VP8, ~1 Mbps, sent as encoded by ffmpeg) and
  light viewers (`bench/lightview.py`'s `srtp` kind: ICE, DTLS and SRTP keys like any
  viewer, then frames counted by the RTP marker bit read before decryption; several per
  process) against the origin alone, then against the origin plus one edge, each node held
  to the same CPU share (a cgroup `cpu.max`, else `taskset` to one core each). The
  viewers' WHEP POSTs alternate between the nodes and the nodes route them; each step's
  window begins once every viewer has joined. A step holds when the slowest tenth of the
  viewers gets >= 29 fps with no freeze (WebRTC's `freezeCount`: a gap of max(3x, +150 ms)
  the average): a node at its cap still passes every frame along, late and in bursts.
  Also: the origin's CPU with one edge's relay against none (interleaved), and how much
  later edge viewers get each frame than origin viewers.
- `routing_case`: 300 WHEP POSTs spread over both nodes: how many answer 201 and play; the
  viewer counts in Redis against each node's own; every DELETE through the node that does
  not serve the viewer, and the time until Redis counts none; a second WHIP through the
  other node.
- `chat`: the room channel across nodes (`bench/scale_chat.py`): 200 sockets over two nodes,
  1000 messages in one order, a mute across nodes, a node killed and its people's presence
  cleared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import lightview as light  # noqa: E402
from bench.load import machine_busy  # noqa: E402
from bench.ports import free_port, wait_port  # noqa: E402

REDIS_URL = ""  # a redis-server of this run's own (`own_redis`): other benchmarks flush theirs
SECRET = "bench-scale-secret-key-that-is-long-enough-0123"  # noqa: S105 - a throwaway key
PASSWORD = "benchmark password"  # noqa: S105 - a throwaway account in a temp database
MIB = 1024 * 1024
WINDOW = 5.0
VIEWER_PROCESSES = 4


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def own_redis() -> Iterator[None]:
    """A redis-server of this run's own, on a free port."""
    global REDIS_URL
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        wait_port(port)
        REDIS_URL = f"redis://127.0.0.1:{port}/0"
        yield
    finally:
        proc.terminate()
        proc.wait(10)


# --- CPU shares ------------------------------------------------------------------------------

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_V1_CPU = CGROUP_ROOT / "cpu"
PERIOD_US = 20_000


def cgroup_kind() -> str:
    """"v2", "v1" (the cpu controller's own hierarchy) or "" (none writable here)."""
    controllers = CGROUP_ROOT / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split() and \
            os.access(CGROUP_ROOT, os.W_OK):
        return "v2"
    if (CGROUP_V1_CPU / "cpu.cfs_quota_us").exists() and os.access(CGROUP_V1_CPU, os.W_OK):
        return "v1"
    return ""


class Share:
    """A process held to `cores` of CPU: a cgroup of its own (CFS quota), else one core by
    taskset."""

    def __init__(self, name: str, cores: float, cpu_index: int) -> None:
        self.name, self.cores, self.cpu_index = name, cores, cpu_index
        self.group: Path | None = None
        found = cgroup_kind()
        self.kind = f"cgroup-{found}" if found else "taskset"

    def apply(self, pid: int) -> None:
        quota = int(self.cores * PERIOD_US)  # a short period: throttling stays short too
        if self.kind == "cgroup-v2":
            with contextlib.suppress(OSError):
                (CGROUP_ROOT / "cgroup.subtree_control").write_text("+cpu")
            self.group = CGROUP_ROOT / f"kumpul-bench-{self.name}-{os.getpid()}"
            self.group.mkdir(exist_ok=True)
            (self.group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        elif self.kind == "cgroup-v1":
            self.group = CGROUP_V1_CPU / f"kumpul-bench-{self.name}-{os.getpid()}"
            self.group.mkdir(exist_ok=True)
            (self.group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.group / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            subprocess.run(["taskset", "-a", "-p", "-c", str(self.cpu_index), str(pid)],
                           check=True, capture_output=True)
            return
        (self.group / "cgroup.procs").write_text(str(pid))

    def lift(self, pid: int) -> None:
        """No cap any more (the process goes back to the root group, or to every core)."""
        if self.kind == "cgroup-v2":
            (CGROUP_ROOT / "cgroup.procs").write_text(str(pid))
        elif self.kind == "cgroup-v1":
            (CGROUP_V1_CPU / "cgroup.procs").write_text(str(pid))
        else:
            every = f"0-{(os.cpu_count() or 1) - 1}"
            subprocess.run(["taskset", "-a", "-p", "-c", every, str(pid)], check=True,
                           capture_output=True)

    def remove(self) -> None:
        if self.group is not None:
            with contextlib.suppress(OSError):
                self.group.rmdir()


# --- the cluster -----------------------------------------------------------------------------

class Node:
    """One `kumpul web` process."""

    def __init__(self, env: dict[str, str], log: Path, share: Share | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**env, "KUMPUL_PORT": str(self.port), "KUMPUL_PUBLIC_URL": self.url}
        self.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "web"], env=env,
                                     stdout=log.open("w"), stderr=subprocess.STDOUT)
        self.share = share
        if share is not None:
            share.apply(self.proc.pid)
        wait_port(self.port)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.share is not None:
            self.share.remove()


class Cluster:
    """The shared parts (database, Redis index, store) and the nodes on them."""

    def __init__(self, work: Path, **extra: str) -> None:
        from redis import Redis

        from service.settings import load_settings

        self.work = work
        self.env_values = {
            "KUMPUL_DATA_DIR": str(work / "data"), "KUMPUL_REDIS_URL": REDIS_URL,
            "KUMPUL_LOG_LEVEL": "warning", "KUMPUL_SECRET_KEY": SECRET,
            "KUMPUL_ICE_HOST_ADDRESSES": "127.0.0.1", "KUMPUL_LANGUAGE": "en",
            "KUMPUL_LIVE_MAX_VIEWERS": "1000", "KUMPUL_UPLOADS_PER_HOUR": "1000", **extra}
        self.settings = load_settings(self.env_values, env_file=None)
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("KUMPUL_")},
                    **self.settings.as_environ()}
        Redis.from_url(REDIS_URL).flushdb()
        subprocess.run([sys.executable, "-m", "service.cli", "migrate"], env=self.env,
                       check=True, capture_output=True)
        self.nodes: list[Node] = []
        self.token = ""
        self.slug = ""

    def node(self, name: str, share: Share | None = None) -> Node:
        made = Node(self.env, self.work / f"node-{name}-{len(self.nodes)}.log", share)
        self.nodes.append(made)
        if not self.token:
            self.token, self.slug = self._seed(made)
        return made

    def _seed(self, node: Node) -> tuple[str, str]:
        import httpx2 as httpx

        from service.db.engine import async_sessions, make_async_engine
        from service.domain import accounts

        async def admin() -> None:
            engine = make_async_engine(self.settings.async_database_url)
            async with async_sessions(engine).begin() as session:
                await accounts.create_user(session, email="bench@example.com",
                                           display_name="Bench", password=PASSWORD,
                                           is_admin=True)
            await engine.dispose()

        asyncio.run(admin())
        with httpx.Client(base_url=node.url, timeout=30) as http:
            csrf = http.post("/api/auth/login", json={"email": "bench@example.com",
                                                      "password": PASSWORD}).json()["csrf_token"]
            slug = http.post("/api/communities", json={"name": "Bench"},
                             headers={"X-CSRF-Token": csrf}).json()["slug"]
            token = http.post("/api/tokens", json={"name": "bench"},
                              headers={"X-CSRF-Token": csrf}).json()["token"]
        return token, slug

    def schedule(self, node: Node) -> dict[str, Any]:
        import httpx2 as httpx

        made = httpx.post(f"{node.url}/api/communities/{self.slug}/live", timeout=30,
                          headers={"Authorization": f"Bearer {self.token}"},
                          json={"title": "Bench session"})
        assert made.status_code == 201, made.text
        found: dict[str, Any] = made.json()
        return found

    def redis_counts(self, session_id: str) -> dict[str, int]:
        from redis import Redis

        found = Redis.from_url(REDIS_URL).hgetall(f"kumpul:live:{session_id}:viewers")
        return {text(k): int(v) for k, v in found.items()}

    def node_viewers(self) -> dict[str, int]:
        """Each node's own count of its viewers, as its last beat carried it."""
        from redis import Redis

        redis = Redis.from_url(REDIS_URL)
        out = {}
        for raw in redis.smembers("kumpul:nodes"):
            node_id = text(raw)
            out[node_id] = int(redis.hget(f"kumpul:node:{node_id}", "viewers") or 0)
        return out

    def close(self) -> None:
        from redis import Redis

        for node in self.nodes:
            node.stop()
        Redis.from_url(REDIS_URL).flushdb()


# --- the upload case -------------------------------------------------------------------------

class CountingProxy:
    """A TCP proxy in front of the S3 server that counts the bytes sent to it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.sent = 0
        self._lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False),
                             daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, counted: bool) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = src.recv(256 * 1024)
                if not data:
                    break
                if counted:
                    with self._lock:
                        self.sent += len(data)
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()


def make_source(path: Path, mib: int) -> str:
    """A file that starts like an MP4 (the app checks the first bytes), then random data."""
    digest = hashlib.sha256()
    head = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    data = head + os.urandom(mib * MIB - len(head))
    path.write_bytes(data)
    digest.update(data)
    return digest.hexdigest()


def tus_headers(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", **extra}


def create_upload(node: Node, cluster: Cluster, size: int, name: str) -> str:
    import base64

    import httpx2 as httpx

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    made = httpx.post(node.url + "/api/uploads", timeout=30, headers=tus_headers(
        cluster.token, **{"Upload-Length": str(size), "Upload-Metadata":
                          f"community {b64(cluster.slug)},release {b64('1')},"
                          f"filename {b64(name)}"}))
    assert made.status_code == 201, made.text
    return str(made.headers["location"])


def patch(node: Node, cluster: Cluster, location: str, offset: int, body: Any,
          timeout: float = 120) -> Any:
    import httpx2 as httpx

    return httpx.patch(node.url + location, content=body, timeout=timeout,
                       headers=tus_headers(cluster.token, **{
                           "Upload-Offset": str(offset),
                           "Content-Type": "application/offset+octet-stream"}))


def stored_sha256(cluster: Cluster) -> str | None:
    """The SHA-256 of the one stored story source."""
    from service.storage import open_store

    store = open_store(cluster.settings)
    for info in store.list("clips/"):
        if info.key.endswith("/source"):
            digest = hashlib.sha256()
            for chunk in store.get(info.key):
                digest.update(chunk)
            return digest.hexdigest()
    return None


def leftovers(cluster: Cluster) -> list[str]:
    from service.storage import open_store

    settings = cluster.settings
    found = [i.key for i in open_store(settings).list("clips/")
             if "/upload/" in i.key or i.key.endswith(".part")]
    for folder in (settings.spool_dir, settings.storage_dir / ".uploads"):
        found += [str(p) for p in folder.iterdir()] if folder.exists() else []
    return found


def clear_clips(cluster: Cluster) -> None:
    from service.storage import open_store

    store = open_store(cluster.settings)
    for info in list(store.list("clips/")):
        store.delete(info.key)


def upload_case(mib: int = 100) -> dict[str, Any]:
    """100 MiB in 1 MiB PATCHes alternating between two nodes, the first SIGKILLed at 60%;
    then bytes to S3 per file byte at 8 MiB PATCHes."""
    from service.storage import open_store
    from service.storage.s3 import S3Store

    work = Path(tempfile.mkdtemp(prefix="kumpul-bench-scale-upload-"))
    moto_port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(moto_port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    cluster: Cluster | None = None
    proxy: CountingProxy | None = None
    try:
        wait_port(moto_port)
        proxy = CountingProxy(moto_port)
        cluster = Cluster(work, KUMPUL_STORAGE="s3",
                          KUMPUL_S3_ENDPOINT=f"127.0.0.1:{proxy.port}",
                          KUMPUL_S3_ACCESS_KEY="bench",
                          KUMPUL_S3_SECRET_KEY="bench-secret",  # noqa: S106 - moto's
                          KUMPUL_S3_BUCKET="bench", KUMPUL_UPLOAD_MAX_BYTES=str(4 * 1024 * MIB))
        store = open_store(cluster.settings)
        if isinstance(store, S3Store):
            store.ensure_bucket()
        a, b = cluster.node("a"), cluster.node("b")
        source = work / "source.mp4"
        sha = make_source(source, mib)
        data = source.read_bytes()
        location = create_upload(a, cluster, len(data), "failover.mp4")
        offset, turn, began = 0, 0, time.monotonic()
        while offset < len(data) * 0.6:
            answer = patch((a, b)[turn % 2], cluster, location, offset,
                           data[offset:offset + MIB])
            assert answer.status_code == 204, answer.text
            offset = int(answer.headers["upload-offset"])
            turn += 1
        streaming = threading.Event()

        def slow() -> Iterator[bytes]:
            for start in range(offset, len(data), 256 * 1024):
                if start >= offset + MIB // 2:
                    streaming.set()
                    time.sleep(30)  # the node dies meanwhile
                yield data[start:start + 256 * 1024]

        def send_slowly() -> None:
            with contextlib.suppress(Exception):
                patch(a, cluster, location, offset, slow(), timeout=60)

        threading.Thread(target=send_slowly, daemon=True).start()
        streaming.wait(30)
        time.sleep(0.3)
        a.kill()
        killed = time.monotonic()
        import httpx2 as httpx
        offset = int(httpx.head(b.url + location, headers=tus_headers(cluster.token),
                                timeout=30).headers["upload-offset"])
        while offset < len(data):
            answer = patch(b, cluster, location, offset, data[offset:offset + MIB])
            if answer.status_code == 423 and time.monotonic() - killed < 20:
                time.sleep(0.5)  # the dead node's lock: tus clients retry
                continue
            assert answer.status_code == 204, answer.text
            offset = int(answer.headers["upload-offset"])
        failover_s = time.monotonic() - began
        got = stored_sha256(cluster)
        left = leftovers(cluster)
        sha_ok = int(got == sha and not left)
        clear_clips(cluster)

        # bytes S3 receives for a file sent in 8 MiB PATCHes (both nodes alive: b and a new a)
        c = cluster.node("c")
        location = create_upload(b, cluster, len(data), "ratio.mp4")
        before = proxy.sent
        offset, turn = 0, 0
        while offset < len(data):
            answer = patch((b, c)[turn % 2], cluster, location, offset,
                           data[offset:offset + 8 * MIB])
            assert answer.status_code == 204, answer.text
            offset = int(answer.headers["upload-offset"])
            turn += 1
        ratio = (proxy.sent - before) / len(data)
        ratio_sha_ok = int(stored_sha256(cluster) == sha)
        return {"upload_failover_sha_ok": sha_ok, "s3_write_ratio": round(ratio, 3),
                "failover_s": round(failover_s, 1), "leftovers": len(left),
                "ratio_upload_sha_ok": ratio_sha_ok, "upload_mib": mib}
    finally:
        if cluster is not None:
            cluster.close()
        if proxy is not None:
            proxy.close()
        moto.terminate()
        moto.wait(10)
        shutil.rmtree(work, ignore_errors=True)


# --- publisher and light viewers (subprocesses) ----------------------------------------------

async def publish(whip_url: str, token: str, source: str) -> None:
    import httpx2 as httpx
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
        answer = await client.post(whip_url, content=pc.localDescription.sdp, headers={
            "Content-Type": "application/sdp", "Authorization": f"Bearer {token}"})
    assert answer.status_code == 201, answer.text
    await pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
    ended = asyncio.Event()  # SIGTERM: the publisher stops as an encoder does (DELETE)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, ended.set)
    await ended.wait()
    resource = httpx.URL(whip_url).join(answer.headers["location"])
    async with httpx.AsyncClient(timeout=30) as client:
        await client.delete(resource, headers={"Authorization": f"Bearer {token}"})
    await pc.close()


class Counter:
    """Counts a receiver's frames by the RTP marker bit after aiortc's SRTP (the last packet
    of each frame): each frame is known by the tail of its last packet (the same bytes on
    every node), for comparing arrival times across nodes."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.keys: list[tuple[str, float]] = []

    async def handle(self, packet: Any, arrival_time_ms: int) -> None:
        if packet.marker:
            now = time.monotonic()
            self.times.append(now)
            self.keys.append((bytes(packet.payload[-24:]).hex(), now))


async def view(urls: list[str], token: str, count: int, go: str, report: str,
               keep: bool, concurrency: int, hold: str) -> None:
    """`count` viewers, their WHEP POSTs alternating over `urls`; once all joined, says so
    (`report`.ready) and waits for the file `go`, which holds when the window begins (every
    process joined by then); counts frames for `WINDOW` s from then; writes a report; stays
    connected until `hold` exists."""
    import httpx2 as httpx
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from service.live.ice import use_host_addresses

    use_host_addresses(["127.0.0.1"])
    viewers: list[dict[str, Any]] = []
    gate = asyncio.Semaphore(concurrency)

    async with httpx.AsyncClient(timeout=120) as client:
        async def one(i: int) -> None:
            try:
                await join(i)
            except Exception as exc:  # counted as not answered
                viewers.append({"pc": None, "counter": None, "status": 0, "location": "",
                                "asked": time.monotonic(), "error": str(exc)})

        async def join(i: int) -> None:
            async with gate:
                pc = RTCPeerConnection()
                pc.addTransceiver("video", direction="recvonly")
                entry: dict[str, Any] = {"pc": pc, "counter": None, "status": 0,
                                         "location": ""}
                if keep:  # frames known by their decrypted payload: aiortc's own path
                    @pc.on("track")
                    def on_track(track: Any) -> None:
                        receiver = next(t.receiver for t in pc.getTransceivers()
                                        if t.receiver.track is track)
                        counter = Counter()
                        receiver._handle_rtp_packet = counter.handle  # type: ignore[method-assign]
                        entry["counter"] = counter

                await pc.setLocalDescription(await pc.createOffer())
                if not keep:  # the cheapest viewer: RTP headers read before SRTP
                    entry["counter"] = light.Counter()
                    light.count_frames(pc, entry["counter"], "srtp")
                entry["asked"] = time.monotonic()
                try:
                    answer = await client.post(urls[i % len(urls)],
                                               content=pc.localDescription.sdp, headers={
                                                   "Content-Type": "application/sdp",
                                                   "Authorization": f"Bearer {token}"})
                except httpx.HTTPError as exc:
                    entry["error"] = f"{type(exc).__name__}: {exc}"
                    viewers.append(entry)
                    return
                entry["status"] = answer.status_code
                if answer.status_code == 201:
                    entry["location"] = answer.headers["location"]
                    await pc.setRemoteDescription(RTCSessionDescription(answer.text,
                                                                        "answer"))
                else:
                    entry["error"] = answer.text[:200]
                viewers.append(entry)

        await asyncio.gather(*(one(i) for i in range(count)))
    await asyncio.to_thread(Path(report + ".ready").write_text, "")
    while not await asyncio.to_thread(Path(go).exists):  # noqa: ASYNC110 - another process
        await asyncio.sleep(0.1)
    start_at = float(await asyncio.to_thread(Path(go).read_text))
    await asyncio.sleep(max(start_at - time.time(), 0))
    began = time.monotonic()
    await asyncio.sleep(WINDOW)
    ended = time.monotonic()
    out = []
    for entry in viewers:
        counter = entry["counter"]
        times = counter.times if counter else []
        inside = [i for i, t in enumerate(times) if began <= t < ended]
        first = (times[0] - entry["asked"]) if times else None
        row = {"fps": len(inside) / (ended - began), "first_frame_s": first,
               "status": entry["status"], "location": entry["location"],
               "error": entry.get("error", ""),
               "keys": [k for k in getattr(counter, "keys", []) if began <= k[1] < ended]}
        if isinstance(counter, light.Counter) and inside:
            # the frame before the window too: a gap that ends inside it counts
            span = slice(max(inside[0] - 1, 0), inside[-1] + 1)
            row["freezes"] = light.freezes(times[span])
            late = light.lateness_ms(times[span], counter.stamps[span])
            row["late_p95_ms"] = sorted(late)[int(len(late) * 0.95)]
        out.append(row)
    await asyncio.to_thread(Path(report).write_text, json.dumps(out))
    while not await asyncio.to_thread(Path(hold).exists):  # noqa: ASYNC110 - another process
        await asyncio.sleep(0.2)
    for entry in viewers:
        if entry["pc"] is not None:
            await entry["pc"].close()


def node_of(location: str) -> str:
    return location.rsplit("/", 1)[1].split(".", 1)[0] if location else ""


class Crowd:
    """Light viewers in `VIEWER_PROCESSES` processes."""

    def __init__(self, folder: Path, urls: list[str], token: str, viewers: int,
                 keep: bool = False, concurrency: int = 4, processes: int = VIEWER_PROCESSES,
                 settle: float = 2.0) -> None:
        per = [viewers // processes + (1 if i < viewers % processes else 0)
               for i in range(processes)]
        self.settle = settle
        self.start_at = 0.0  # set once every process has joined its viewers
        self.go = folder / f"go-{time.monotonic_ns()}"
        self.hold = folder / f"hold-{time.monotonic_ns()}"
        self.reports: list[Path] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        for i, count in enumerate(c for c in per if c):
            report = folder / f"viewers-{time.monotonic_ns()}-{i}.json"
            self.reports.append(report)
            shifted = urls[i % len(urls):] + urls[:i % len(urls)]  # spread the first POSTs
            self.procs.append(subprocess.Popen([
                sys.executable, __file__, "--view", ",".join(shifted), "--token", token,
                "--count", str(count), "--go", str(self.go), "--report",
                str(report), "--hold", str(self.hold), "--concurrency", str(concurrency)]
                + (["--keep"] if keep else [])))

    def start_window(self, timeout: float = 300) -> float:
        """Wait until every process has joined its viewers (a CPU-capped node sets them up
        slowly: a window that overlapped the joins would count their cost), then begin the
        counting window `settle` s later; returns when (unix time)."""
        if not self.start_at:
            deadline = time.monotonic() + timeout
            while not all(Path(f"{r}.ready").exists() for r in self.reports):
                if time.monotonic() > deadline or all(p.poll() is not None
                                                       for p in self.procs):
                    break
                time.sleep(0.1)
            self.start_at = time.time() + self.settle
            self.go.write_text(repr(self.start_at))
        return self.start_at

    def results(self, timeout: float = 300) -> list[dict[str, Any]]:
        self.start_window(timeout)
        deadline = time.monotonic() + timeout
        while not all(r.exists() for r in self.reports):
            if time.monotonic() > deadline or all(p.poll() is not None for p in self.procs):
                break
            time.sleep(0.2)
        return [v for r in self.reports if r.exists() for v in json.loads(r.read_text())]

    def leave(self) -> None:
        self.hold.write_text("")
        for proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_publisher(cluster: Cluster, node: Node, session_id: str, token: str,
                    source: Path) -> subprocess.Popen[bytes]:
    """The publisher process; returns once the session lists it as publishing."""
    proc = subprocess.Popen([sys.executable, __file__, "--publish",
                             f"{node.url}/api/live/{session_id}/whip", "--token", token,
                             "--source", str(source)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if publishing(cluster, node):
            time.sleep(1)
            return proc
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the publisher never went live")


def publishing(cluster: Cluster, node: Node) -> bool:
    """Whether the community's session lists a publisher with its video."""
    import httpx2 as httpx

    listed = httpx.get(f"{node.url}/api/communities/{cluster.slug}/live", timeout=30,
                       headers={"Authorization": f"Bearer {cluster.token}"})
    return any(s["publishing"] and s["video_codec"] for s in listed.json()["sessions"])


def republish(cluster: Cluster, node: Node, session_id: str, token: str, source: Path,
              proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    """A new publisher after a ladder: its last step overloads the CPU-capped origin, which
    may then release the publisher (ICE consent unanswered) some seconds later. The old
    one ends with a DELETE; the new one is live before the next ladder."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 30
    while publishing(cluster, node) and time.monotonic() < deadline:
        time.sleep(0.5)
    return start_publisher(cluster, node, session_id, token, source)


def an_offer() -> str:
    """A real WHIP offer (video), made by aiortc."""
    from aiortc import RTCPeerConnection

    async def make() -> str:
        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = str(pc.localDescription.sdp)
        await pc.close()
        return sdp

    return asyncio.run(make())


def make_video(folder: Path, seconds: int = 240, size: str = "640x480",
               rate: str = "1M") -> Path:
    """A VP8 file sent as it is, keyframe every 0.5 s."""
    source = folder / "source.webm"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=s={size}:r=30:d={seconds}", "-c:v", "libvpx", "-b:v", rate,
                    "-g", "15", "-deadline", "realtime", "-cpu-used", "16", "-an",
                    str(source)], check=True)
    return source


# --- the room case ---------------------------------------------------------------------------

def ladder(folder: Path, cluster: Cluster, urls: list[str], session_id: str,
           pids: list[int], counts: list[int]) -> list[dict[str, Any]]:
    rows = []
    for viewers in counts:
        crowd = Crowd(folder, [f"{u}/api/live/{session_id}/whep" for u in urls],
                      cluster.token, viewers)
        time.sleep(max(crowd.start_window() - time.time(), 0))
        before = [cpu_seconds(p) for p in pids]
        crowd_before = sum(cpu_seconds(p.pid) for p in crowd.procs)
        busy_before = machine_busy()
        t0 = time.monotonic()
        time.sleep(WINDOW)
        span = time.monotonic() - t0
        cpu = [(cpu_seconds(p) - b) / span * 100 for p, b in zip(pids, before, strict=True)]
        crowd_cpu = (sum(cpu_seconds(p.pid) for p in crowd.procs) - crowd_before) / span * 100
        busy_after = machine_busy()
        machine = (busy_after[0] - busy_before[0]) / (busy_after[1] - busy_before[1]) * 100
        results = crowd.results()
        crowd.leave()
        left = time.monotonic()  # the next step begins with no viewer of this one served
        while any(cluster.redis_counts(session_id).values()) and time.monotonic() - left < 60:
            time.sleep(0.2)
        gone_s = time.monotonic() - left
        time.sleep(1.5)
        fps = sorted(r["fps"] for r in results if r["status"] == 201)
        fps += [0.0] * (viewers - len(fps))
        fps.sort()
        # a viewer whose picture froze (WebRTC's count) counts 0 fps here
        smooth = [r["fps"] if r.get("freezes", 1) == 0 else 0.0
                  for r in results if r["status"] == 201]
        smooth = sorted(smooth + [0.0] * (viewers - len(smooth)))
        late = sorted(r["late_p95_ms"] for r in results if "late_p95_ms" in r)
        row: dict[str, Any] = {
            "viewers": viewers, "fps_p10": fps[len(fps) // 10] if fps else 0.0,
            "fps_median": statistics.median(fps) if fps else 0.0,
            "smooth_p10": smooth[len(smooth) // 10] if smooth else 0.0,
            "frozen": sum(1 for r in results if r.get("freezes", 0)),
            "late_p95_ms": statistics.median(late) if late else float("nan"),
            "cpu": [round(c, 1) for c in cpu], "viewers_cpu": round(crowd_cpu, 1),
            "machine_busy": round(machine, 1),
            "per_node": {n: sum(1 for r in results if node_of(r["location"]) == n)
                         for n in {node_of(r["location"]) for r in results if r["location"]}}}
        rows.append(row)
        refused: dict[str, int] = {}
        for r in results:
            if r["status"] != 201:
                why = f"{r['status']} {r.get('error', '')}"[:120]
                refused[why] = refused.get(why, 0) + 1
        print(f"  {viewers:4d} viewers over {len(urls)} node(s): fps p10 {row['fps_p10']:5.1f} "
              f"median {row['fps_median']:5.1f}  without a freeze p10 {row['smooth_p10']:5.1f} "
              f"({row['frozen']} froze)  "
              f"late p95 {row['late_p95_ms']:6.1f} ms  node CPU {row['cpu']}%  viewers' "
              f"{row['viewers_cpu']}%  machine {row['machine_busy']}% busy  "
              f"{sorted(row['per_node'].values())}"
              + (f"  not answered: {refused}" if refused else "")
              + f"  (all released in {gone_s:.1f} s)", flush=True)
        if row["smooth_p10"] < 25:
            break
    return rows


def held(rows: list[dict[str, Any]]) -> int:
    """The most viewers at which the slowest tenth got >= 29 fps without a freeze (a node
    at its CPU cap can still pass every frame along, late and in bursts)."""
    good = [r["viewers"] for r in rows if r["smooth_p10"] >= 29.0]
    return max(good) if good else 0


def edge_cost(folder: Path, cluster: Cluster, origin: Node, edge: Node, session_id: str,
              reps: int = 3) -> float:
    """The origin's CPU (% of a core) with one edge reading the room against none,
    interleaved: the edge gets one viewer placed on it directly (a node-signed WHEP)."""
    import httpx2 as httpx
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from service.cluster import auth

    def measure(seconds: float = 8.0) -> float:
        before, t0 = cpu_seconds(origin.pid), time.monotonic()
        time.sleep(seconds)
        return (cpu_seconds(origin.pid) - before) / (time.monotonic() - t0) * 100

    async def edge_viewer(stop: asyncio.Event, joined: asyncio.Event) -> None:
        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        path = f"/api/live/{session_id}/whep"
        body = pc.localDescription.sdp.encode()
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.post(edge.url + path, content=body, headers={
                "Content-Type": "application/sdp", "Authorization": f"Bearer {cluster.token}",
                auth.HEADER: auth.sign(SECRET, "POST", path, body)})
        assert answer.status_code == 201, answer.text
        assert node_of(answer.headers["location"]) != origin_id, answer.headers
        await pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
        joined.set()
        await stop.wait()
        await pc.close()

    from redis import Redis

    from service.live.ice import use_host_addresses

    use_host_addresses(["127.0.0.1"])
    origin_id = Redis.from_url(REDIS_URL, decode_responses=True).get(
        f"kumpul:live:{session_id}:origin")
    began = time.monotonic()  # the ladder's last step overloaded it: let it finish that
    while measure(2.0) > 8.0 and time.monotonic() - began < 60:
        pass
    without, with_edge = [], []
    for _ in range(reps):
        without.append(measure())

        async def run() -> float:
            stop, joined = asyncio.Event(), asyncio.Event()
            task = asyncio.ensure_future(edge_viewer(stop, joined))
            await asyncio.wait_for(joined.wait(), 30)
            await asyncio.sleep(2)
            value = await asyncio.to_thread(measure)
            stop.set()
            await task
            return value

        with_edge.append(asyncio.run(run()))
        time.sleep(12)  # the edge lets go of the relay 10 s after its last viewer
    cost = statistics.median(with_edge) - statistics.median(without)
    print(f"  origin CPU without an edge {[round(x, 2) for x in without]}%, with one "
          f"{[round(x, 2) for x in with_edge]}%: {cost:.2f}% of a core per edge", flush=True)
    return cost


def latency(folder: Path, cluster: Cluster, origin: Node, edge: Node,
            session_id: str, viewers: int = 16) -> dict[str, float]:
    """How much later edge viewers get each frame than origin viewers (same clock)."""
    urls = [f"{n.url}/api/live/{session_id}/whep" for n in (origin, edge)]
    crowd = Crowd(folder, urls, cluster.token, viewers, keep=True)
    results = crowd.results()
    crowd.leave()
    origin_id = node_of(next((r["location"] for r in results if r["location"]), ""))
    placed = {node_of(r["location"]) for r in results if r["location"]}
    by_frame: dict[str, dict[str, list[float]]] = {}
    for r in results:
        side = "origin" if node_of(r["location"]) == origin_id else "edge"
        for key, at in r["keys"]:
            by_frame.setdefault(key, {"origin": [], "edge": []})[side].append(at)
    delays = []
    for seen in by_frame.values():
        if seen["origin"] and seen["edge"]:
            base = statistics.median(seen["origin"])
            delays += [(t - base) * 1000 for t in seen["edge"]]
    delays.sort()
    firsts_edge = [r["first_frame_s"] for r in results if r["first_frame_s"] is not None
                   and node_of(r["location"]) != origin_id]
    del placed
    return {"edge_extra_latency_ms": round(delays[int(len(delays) * 0.95)], 1)
            if delays else float("nan"),
            "edge_extra_latency_median_ms": round(statistics.median(delays), 1)
            if delays else float("nan"),
            "edge_first_frame_s": round(statistics.median(firsts_edge), 2)
            if firsts_edge else float("nan")}


def room_case(cores: float = 0.3, max_viewers: int = 320) -> dict[str, Any]:
    """Origin alone against origin + one edge, each held to `cores` of CPU."""
    work = Path(tempfile.mkdtemp(prefix="kumpul-bench-scale-room-"))
    cluster = Cluster(work)
    publisher: subprocess.Popen[bytes] | None = None
    try:
        source = make_video(work)
        origin = cluster.node("origin", Share("origin", cores, 0))
        live = cluster.schedule(origin)
        sid = live["id"]
        publisher = start_publisher(cluster, origin, sid, live["publish_token"], source)
        counts = [c for c in (16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 192, 224, 256, 320)
                  if c <= max_viewers]
        print(f"origin alone ({cores:g} core, {origin.share.kind if origin.share else '-'})",
              flush=True)
        alone = ladder(work, cluster, [origin.url], sid, [origin.pid], counts)
        publisher = republish(cluster, origin, sid, live["publish_token"], source, publisher)
        edge = cluster.node("edge", Share("edge", cores, 1))
        time.sleep(3)  # its first beat
        print(f"origin + one edge ({cores:g} core each)", flush=True)
        pair = ladder(work, cluster, [origin.url, edge.url], sid, [origin.pid, edge.pid],
                      [c * 2 for c in counts])
        publisher = republish(cluster, origin, sid, live["publish_token"], source, publisher)
        one, two = held(alone), held(pair)
        print("edge cost", flush=True)
        cost = edge_cost(work, cluster, origin, edge, sid)
        print("edge latency (CPU caps lifted: throttling would add its own delays)",
              flush=True)
        for node in (origin, edge):
            if node.share is not None:
                node.share.lift(node.pid)
        late = latency(work, cluster, origin, edge, sid)
        return {"room_viewer_ratio": round(two / one, 2) if one else float("nan"),
                "viewers_alone": one, "viewers_with_edge": two,
                "edge_cost_pct": round(cost, 2), **late, "cpu_cap_cores": cores,
                "cpu_cap": origin.share.kind if origin.share else "none",
                "viewer_kind": "light"}
    finally:
        if publisher is not None:
            publisher.kill()
        cluster.close()
        out = ROOT / "bench" / "out"  # the nodes' logs outlive the run
        out.mkdir(exist_ok=True)
        for log in work.glob("node-*.log"):
            shutil.copy(log, out / f"scale-room-{log.name}")
        shutil.rmtree(work, ignore_errors=True)


# --- the routing case ------------------------------------------------------------------------

def routing_case(posts: int = 300) -> dict[str, Any]:
    """`posts` WHEP POSTs spread over two nodes; counts; DELETE through the other node."""
    import httpx2 as httpx

    work = Path(tempfile.mkdtemp(prefix="kumpul-bench-scale-routing-"))
    cluster = Cluster(work)
    publisher: subprocess.Popen[bytes] | None = None
    try:
        source = make_video(work, 300, "320x240", "300k")
        a, b = cluster.node("a"), cluster.node("b")
        live = cluster.schedule(a)
        sid = live["id"]
        publisher = start_publisher(cluster, a, sid, live["publish_token"], source)
        second = httpx.post(f"{b.url}/api/live/{sid}/whip", content=an_offer(),
                            timeout=30, headers={"Content-Type": "application/sdp",
                                                 "Authorization":
                                                     f"Bearer {live['publish_token']}"})
        second_409 = int(second.status_code == 409)
        urls = [f"{n.url}/api/live/{sid}/whep" for n in (a, b)]
        crowd = Crowd(work, urls, cluster.token, posts, concurrency=10, settle=4)
        results = crowd.results(timeout=400)
        answered = sum(1 for r in results if r["status"] == 201)
        played = sum(1 for r in results if r["status"] == 201 and r["fps"] > 0)
        served: dict[str, int] = {}
        for r in results:
            if r["location"]:
                served[node_of(r["location"])] = served.get(node_of(r["location"]), 0) + 1
        time.sleep(2.5)  # each node's beat carries its own count
        in_redis = cluster.redis_counts(sid)
        own = {k: v for k, v in cluster.node_viewers().items() if v}
        counts_equal = int(in_redis == served == own)
        by_id = {}
        for node in (a, b):
            found = httpx.get(f"{node.url}/api/communities/{cluster.slug}/live", timeout=30,
                              headers={"Authorization": f"Bearer {cluster.token}"})
            by_id[node.url] = found.json()["sessions"][0]["viewers"]
        # DELETE each through the node that does not serve it
        ids = sorted(served)
        deletes_ok, slowest = 0, 0.0
        with httpx.Client(timeout=30) as client:
            for r in results:
                if not r["location"]:
                    continue
                other = b if ids and node_of(r["location"]) == ids[0] else a
                began = time.monotonic()
                gone = client.delete(other.url + r["location"],
                                     headers={"Authorization": f"Bearer {cluster.token}"})
                slowest = max(slowest, time.monotonic() - began)
                deletes_ok += int(gone.status_code == 200)
        deleted_at = time.monotonic()
        while cluster.redis_counts(sid) and time.monotonic() - deleted_at < 10:
            time.sleep(0.05)
        release_s = time.monotonic() - deleted_at
        crowd.leave()
        print(f"  {answered}/{posts} answered 201, {played} played; per node {served}; "
              f"Redis {in_redis}; nodes' own {own}; listed {by_id}", flush=True)
        print(f"  {deletes_ok} DELETEs through the other node answered 200 (slowest "
              f"{slowest:.2f} s); Redis counted none {release_s:.2f} s after the last", flush=True)
        return {"whep_ok": min(answered, played), "whep_answered": answered,
                "counts_equal": counts_equal, "deletes_ok": deletes_ok,
                "delete_slowest_s": round(slowest, 2), "release_s": round(release_s, 2),
                "second_whip_409": second_409}
    finally:
        if publisher is not None:
            publisher.kill()
        cluster.close()
        shutil.rmtree(work, ignore_errors=True)


# --- main ------------------------------------------------------------------------------------

def chat_case() -> dict[str, Any]:
    """The room channel across nodes (`bench/scale_chat.py`, a cluster of its own)."""
    from bench.scale_chat import channel_case

    return channel_case()


CASES = ("upload", "room", "routing", "chat")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", action="append", choices=CASES)
    parser.add_argument("--publish")
    parser.add_argument("--source")
    parser.add_argument("--token")
    parser.add_argument("--view")
    parser.add_argument("--count", type=int)
    parser.add_argument("--go")
    parser.add_argument("--report")
    parser.add_argument("--hold")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--cores", type=float, default=0.3, help="each node's CPU cap (room)")
    parser.add_argument("--max-viewers", type=int, default=320, help="per node (room)")
    parser.add_argument("--posts", type=int, default=300, help="WHEP POSTs (routing)")
    args = parser.parse_args()
    if args.publish:
        asyncio.run(publish(args.publish, args.token, args.source))
        return 0
    if args.view:
        asyncio.run(view(args.view.split(","), args.token, args.count, args.go,
                         args.report, args.keep, args.concurrency, args.hold))
        return 0
    cases: dict[str, Callable[[], dict[str, Any]]] = {
        "upload": upload_case,
        "room": lambda: room_case(args.cores, args.max_viewers),
        "routing": lambda: routing_case(args.posts),
        "chat": chat_case}
    results: dict[str, Any] = {}
    with own_redis():
        for name in args.case or list(CASES):
            print(f"== {name} ==", flush=True)
            results.update(cases[name]())
    print()
    for key, value in results.items():
        print(f"{key:32} {value}")
    print("RESULT " + " ".join(f"{k}={v}" for k, v in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
