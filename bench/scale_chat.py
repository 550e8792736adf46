"""Scale benchmark, the room channel across nodes (`bench/scale.py --case chat` runs it with
the others): 200 people's sockets spread over two `kumpul web` node processes, 1000 chat
messages, a mute across nodes and a node killed.

Run alone from the repository root: `.venv/bin/python bench/scale_chat.py [--sockets 200]
[--messages 1000] [--kills 3]`.

- It starts its own redis-server (database 12 of it), a PostgreSQL database
  `kumpul_bench_scale_chat` (created and dropped here), a temporary folder, and two web nodes
  on ports of their own. People are members who joined through an invite (each a session
  cookie); their sockets go to the nodes in turn. One client process holds every socket.
- chat: each person sends 5 messages (the per-person limit is 5 per 10 s), 1000 in all,
  as fast as they go; every socket must receive all 1000, in the same order as every other
  socket, each sender's messages in the order sent (`chat_in_order`). The same case runs
  with every socket on one node first (the baseline: the same Redis path, one process), and
  the time until the last socket has the 1000th message is reported for both.
- presence: after everyone joined, the time until every socket's last presence message
  says the same number and the same people (`presence_agree_s`).
- mute: a moderator on node A mutes a member on node B while the member sends a chat message
  every 10 ms: the time from sending the mute to the member's first "muted" refusal,
  median of 5 (`mute_ms`, an upper bound: it includes the member's own round trip).
- node loss: node B is SIGKILLed; the time until the sockets on node A see a presence with
  only node A's people (`presence_clear_s`, median of `--kills`; node B is started again
  and its sockets reconnect between kills).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ports import free_port, wait_port  # noqa: E402
from service.live.channel import CHAT_RATE  # noqa: E402

PG_ADMIN = os.environ.get("KUMPUL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
DATABASE = "kumpul_bench_scale_chat"
REDIS_DB = 12
PASSWORD = "benchmark password"  # noqa: S105 - throwaway accounts in a temporary database


# --- processes ------------------------------------------------------------------------------


class Cluster:
    """A redis-server, a PostgreSQL database and web nodes sharing them."""

    def __init__(self, folder: Path, nodes: int) -> None:
        import psycopg

        self.folder = folder
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is needed (scripts/bootstrap installs it)")
        redis_port = free_port()
        self.redis = subprocess.Popen(
            [binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL)
        wait_port(redis_port)
        self.redis_url = f"redis://127.0.0.1:{redis_port}/{REDIS_DB}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {DATABASE}")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KUMPUL_")}
        self.env.update({
            "KUMPUL_DATA_DIR": str(folder / "data"), "KUMPUL_REDIS_URL": self.redis_url,
            "KUMPUL_DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + "/" + DATABASE,
            "KUMPUL_LOG_LEVEL": "warning", "KUMPUL_ICE_HOST_ADDRESSES": "127.0.0.1",
            "KUMPUL_SECRET_KEY": "bench-secret-key-that-is-long-enough-01234567"})
        subprocess.run([sys.executable, "-m", "service.cli", "migrate"], env=self.env,
                       check=True, capture_output=True)
        self.ports = [free_port() for _ in range(nodes)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * nodes
        for index in range(nodes):
            self.start(index)

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def start(self, index: int) -> None:
        port = self.ports[index]
        env = {**self.env, "KUMPUL_PORT": str(port), "KUMPUL_PUBLIC_URL": self.url(index)}
        with (self.folder / f"node-{index}.log").open("a") as log:
            self.procs[index] = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "web"], env=env, stdout=log,
                stderr=subprocess.STDOUT)
        wait_port(port)

    def kill(self, index: int) -> None:
        proc = self.procs[index]
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.procs[index] = None

    def stop(self) -> None:
        import psycopg

        for proc in self.procs:
            if proc is not None:
                proc.terminate()
        for proc in self.procs:
            if proc is not None:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        self.redis.terminate()
        self.redis.wait(10)


@dataclass
class People:
    slug: str
    session_id: str
    host: str                 # the host's session cookie
    members: list[str]        # members' session cookies


def seed(url: str, env: dict[str, str], count: int) -> People:
    """An owner, a host with a session (through the API), and `count` members who joined by
    the community's invite link (in the database: one password hash for all, so seeding
    does not spend minutes in Argon2), each signed in."""
    from service import security
    from service.db.engine import async_sessions, make_async_engine
    from service.db.models import User
    from service.domain import accounts, communities
    from service.settings import driver_url

    async def in_database(work: Any) -> Any:
        engine = make_async_engine(driver_url(env["KUMPUL_DATABASE_URL"], sync=False))
        try:
            async with async_sessions(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    async def owner(session: Any) -> None:
        await accounts.create_user(session, email="owner@example.com", display_name="Owner",
                                   password=PASSWORD, is_admin=True)

    asyncio.run(in_database(owner))
    with httpx.Client(base_url=url, timeout=60) as http:
        login = http.post("/api/auth/login", json={"email": "owner@example.com",
                                                   "password": PASSWORD})
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        slug = http.post("/api/communities", json={"name": "Scale"}, headers=csrf).json()["slug"]
        links = {role: http.post(f"/api/communities/{slug}/invites", headers=csrf, json={
            "role": role, "max_uses": many}).json()["url"].rsplit("/", 1)[1]
            for role, many in (("host", 1), ("member", count))}
    with httpx.Client(base_url=url, timeout=60) as host:
        joined = host.post(f"/api/invites/{links['host']}/accept", json={
            "email": "host@example.com", "display_name": "Host", "password": PASSWORD})
        assert joined.status_code == 201, joined.text
        made = host.post(f"/api/communities/{slug}/live", json={"title": "Scale"},
                         headers={"X-CSRF-Token": joined.json()["csrf_token"]})
        assert made.status_code == 201, made.text
        host_cookie = str(joined.cookies["kumpul_session"])
    hashed = security.hash_password(PASSWORD)

    async def members(session: Any) -> list[str]:
        cookies = []
        for n in range(count):
            user = User(email=f"member{n}@example.com", display_name=f"member {n:03d}",
                        password_hash=hashed)
            session.add(user)
            await session.flush()
            await communities.accept_invite(session, links["member"], user)
            cookies.append((await accounts.start_session(session, user, 24)).token)
        return cookies

    return People(slug, made.json()["id"], host_cookie, asyncio.run(in_database(members)))


# --- clients --------------------------------------------------------------------------------

@dataclass
class Client:
    """One person's socket, recording what it receives."""

    node: int
    cookie: str
    ws: Any = None
    you: int = 0
    chats: list[str] = field(default_factory=list)
    chat_done: float = 0.0
    presence: tuple[int, tuple[str, ...]] = (0, ())
    presence_at: float = 0.0
    errors: list[tuple[str, float]] = field(default_factory=list)
    hello: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0
    task: asyncio.Task[None] | None = None

    async def pump(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                kind = message["type"]
                if kind == "chat":
                    self.chats.append(message["text"])
                    if len(self.chats) == self.expected:
                        self.chat_done = time.monotonic()
                elif kind == "presence":
                    self.presence = (message["count"], tuple(message["people"]))
                    self.presence_at = time.monotonic()
                elif kind == "error":
                    self.errors.append((message["code"], time.monotonic()))
                elif kind == "hello":
                    self.you = message["you"]
                    self.hello.set()
        except Exception:  # noqa: S110 - a killed node closes its sockets
            pass

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))


async def connect(url: str, session_id: str, cookie: str, node: int) -> Client:
    from websockets.asyncio.client import connect as ws_connect

    client = Client(node, cookie)
    client.ws = await ws_connect(
        url.replace("http://", "ws://") + f"/api/live/{session_id}/room",
        additional_headers={"Origin": url, "Cookie": f"kumpul_session={cookie}"},
        max_queue=None, open_timeout=60)
    client.task = asyncio.create_task(client.pump())
    await asyncio.wait_for(client.hello.wait(), 30)
    return client


async def close_all(clients: list[Client]) -> None:
    await asyncio.gather(*(c.ws.close() for c in clients), return_exceptions=True)


async def wait_until(check: Any, within: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(step)
    return bool(check())


def agreed(clients: list[Client], count: int) -> bool:
    first = clients[0].presence
    return first[0] == count and all(c.presence == first for c in clients)


async def open_room(urls: list[str], people: People) -> tuple[list[Client], float]:
    """Every member's socket, spread over the nodes in turn, and the seconds from the last
    hello until every socket's presence agrees."""
    clients: list[Client] = []
    for start in range(0, len(people.members), 20):  # 20 at a time, as people arrive
        batch = people.members[start:start + 20]
        clients += await asyncio.gather(*(
            connect(urls[(start + i) % len(urls)], people.session_id, cookie,
                    (start + i) % len(urls)) for i, cookie in enumerate(batch)))
    joined = time.monotonic()
    await wait_until(lambda: agreed(clients, len(clients)), 30)
    latest = max(c.presence_at for c in clients)
    return clients, max(0.0, latest - joined)


def in_order(clients: list[Client], messages: list[str]) -> bool:
    """All got every message, all in one order, each sender's in the order sent."""
    first = clients[0].chats
    if sorted(first) != sorted(messages) or any(c.chats != first for c in clients):
        return False
    last: dict[str, int] = {}
    for text in first:
        sender, n = text.rsplit(":", 1)
        if int(n) != last.get(sender, -1) + 1:
            return False
        last[sender] = int(n)
    return True


async def chat_run(clients: list[Client], messages: int) -> tuple[bool, float, int]:
    """Every socket sends in turn until `messages` are sent (5 each for 1000 over 200: the
    per-person limit is 5 per 10 s)."""
    rounds: list[list[int]] = []
    while sum(map(len, rounds)) < messages:
        left = messages - sum(map(len, rounds))
        rounds.append(list(range(min(len(clients), left))))
    texts = [f"p{i}:{n}" for n, senders in enumerate(rounds) for i in senders]
    for client in clients:
        client.chats.clear()
        client.expected = len(texts)
        client.chat_done = 0.0
        client.errors.clear()
    started = time.monotonic()
    for n, senders in enumerate(rounds):  # each sender's in order; senders interleaved
        await asyncio.gather(*(clients[i].send(type="chat", text=f"p{i}:{n}")
                               for i in senders))
    await wait_until(lambda: all(len(c.chats) >= len(texts) for c in clients), 180, 0.05)
    done = max((c.chat_done for c in clients), default=0.0)
    errors = sum(len(c.errors) for c in clients)
    codes = sorted({code for c in clients for code, _ in c.errors})
    print(f"  {len(clients)} sockets: fewest chats received {min(len(c.chats) for c in clients)}"
          f" of {len(texts)}; refusals {errors} {codes}", flush=True)
    if any(len(c.chats) < len(texts) for c in clients):
        done = 0.0
    return in_order(clients, texts), (done - started) if done else float("nan"), errors


async def mute_run(moderator: Client, target: Client, rounds: int = 5) -> list[float]:
    """Milliseconds from the moderator's mute (node A) to the target's first refusal as
    muted (node B) while the target sends a chat message every 10 ms."""
    found = []
    for _ in range(rounds):
        target.errors.clear()
        stop = asyncio.Event()

        async def chatter(stop: asyncio.Event = stop) -> None:
            n = 0
            while not stop.is_set():
                await target.send(type="chat", text=f"mute test {n}")
                n += 1
                await asyncio.sleep(0.01)

        talking = asyncio.create_task(chatter())
        await asyncio.sleep(0.1)
        sent = time.monotonic()
        await moderator.send(type="mute", user_id=target.you)
        await wait_until(lambda: any(code == "muted" for code, _ in target.errors), 5, 0.001)
        refused = [at for code, at in target.errors if code == "muted"]
        stop.set()
        await talking
        if refused:
            found.append((refused[0] - sent) * 1000)
        await moderator.send(type="unmute", user_id=target.you)
        await asyncio.sleep(0.3)
    return found


def chat_case(cluster: Cluster, people: People, messages: int) -> dict[str, Any]:
    """The 1000 messages with every socket on one node, then spread over two; presence
    agreement; the mute across nodes."""
    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for label, urls in (("one", [cluster.url(0)]), ("two", [cluster.url(0),
                                                                cluster.url(1)])):
            clients, agree_s = await open_room(urls, people)
            ordered, seconds, errors = await chat_run(clients, messages)
            out[f"chat_in_order_{label}"] = int(ordered)
            out[f"chat_s_{label}"] = round(seconds, 3)
            out[f"chat_errors_{label}"] = errors
            out[f"presence_agree_s_{label}"] = round(agree_s, 3)
            if label == "two":
                host = await connect(cluster.url(0), people.session_id, people.host, 0)
                target = next(c for c in clients if c.node == 1)
                times = await mute_run(host, target)
                out["mute_ms"] = round(statistics.median(times), 1) if times else float("nan")
                out["mute_ms_max"] = round(max(times), 1) if times else float("nan")
                out["mute_rounds_ms"] = [round(t, 1) for t in times]
                await close_all([host])
            await close_all(clients)
            await asyncio.sleep(CHAT_RATE[1] + 0.5)  # everyone's rate window is empty again
        return out

    return asyncio.run(run())


def presence_case(cluster: Cluster, people: People, kills: int) -> dict[str, Any]:
    """SIGKILL node B with half the room on it: seconds until node A's sockets see only node
    A's people; node B comes back and its people reconnect between kills."""
    async def run() -> dict[str, Any]:
        urls = [cluster.url(0), cluster.url(1)]
        clients, _ = await open_room(urls, people)
        times: list[float] = []
        for kill in range(kills):
            on_a = [c for c in clients if c.node == 0]
            stay = len(on_a)
            cluster.kill(1)
            killed = time.monotonic()
            await wait_until(lambda: all(c.presence[0] == stay for c in on_a), 15, 0.005)  # noqa: B023
            times.append(max(c.presence_at for c in on_a) - killed)
            if kill + 1 < kills:
                cluster.start(1)
                back: list[Client] = []
                away = [c for c in clients if c.node == 1]
                for start in range(0, len(away), 20):  # 20 at a time, as people come back
                    back += await asyncio.gather(*(
                        connect(urls[1], people.session_id, c.cookie, 1)
                        for c in away[start:start + 20]))
                clients = on_a + back
                await wait_until(lambda: agreed(clients, len(clients)), 30)  # noqa: B023
        await close_all(clients)
        cluster.start(1)
        return {"presence_clear_s": round(statistics.median(times), 3),
                "presence_clear_s_max": round(max(times), 3), "kills": len(times)}

    return asyncio.run(run())


def channel_case(sockets: int = 200, messages: int = 1000,
                 kills: int = 3) -> dict[str, Any]:
    """The chat and presence cases on a cluster of their own; the RESULT keys of BENCH.md."""
    chat, presence = _measure(sockets, messages, kills)
    return {"chat_in_order": chat["chat_in_order_two"], "mute_ms": chat["mute_ms"],
            "presence_clear_s": presence["presence_clear_s"],
            "presence_agree_s": chat["presence_agree_s_two"], "chat_s": chat["chat_s_two"],
            "chat_s_one_node": chat["chat_s_one"]}


def _measure(sockets: int, messages: int,
             kills: int) -> tuple[dict[str, Any], dict[str, Any]]:
    folder = Path(tempfile.mkdtemp(prefix="kumpul-bench-scale-"))
    cluster = Cluster(folder, nodes=2)
    try:
        people = seed(cluster.url(0), cluster.env, sockets)
        return (chat_case(cluster, people, messages),
                presence_case(cluster, people, kills))
    finally:
        cluster.stop()
        kept = ROOT / "bench" / "out"  # the nodes' logs outlive the run (not committed)
        kept.mkdir(parents=True, exist_ok=True)
        for log in folder.glob("node-*.log"):
            shutil.copy(log, kept / f"scale-{log.name}")
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    chat, presence = _measure(args.sockets, args.messages, args.kills)
    print(f"\nroom channel across nodes: {args.sockets} sockets, {args.messages} messages "
          f"(nproc {os.cpu_count()}; one client process)")
    print(f"{'':34}{'one node':>12}{'two nodes':>12}")
    for key, label in (("chat_in_order", "all got all, in one order (1/0)"),
                       ("chat_s", "last socket has the last (s)"),
                       ("chat_errors", "refusals"),
                       ("presence_agree_s", "presence agrees after (s)")):
        print(f"{label:34}{chat[key + '_one']:>12}{chat[key + '_two']:>12}")
    print(f"{'mute across nodes (ms, median/max)':34}{'':>12}"
          f"{str(chat['mute_ms']) + ' / ' + str(chat['mute_ms_max']):>12}")
    print(f"{'  each mute (ms)':34}{'':>12}  {chat['mute_rounds_ms']}")
    cleared = f"{presence['presence_clear_s']} / {presence['presence_clear_s_max']}"
    print(f"{'node killed: presence cleared (s)':34}{'':>12}{cleared:>12}")
    print(f"RESULT chat_in_order={chat['chat_in_order_two']} mute_ms={chat['mute_ms']} "
          f"presence_clear_s={presence['presence_clear_s']} "
          f"presence_agree_s={chat['presence_agree_s_two']} chat_s={chat['chat_s_two']} "
          f"chat_s_one_node={chat['chat_s_one']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
