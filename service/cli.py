"""The `kumpul` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

from service import i18n, logs
from service.settings import Settings, load_for_command

T = TypeVar("T")


def _with_session(settings: Settings, work: Callable[..., Awaitable[T]]) -> T:
    """Run one domain operation in its own transaction, for the admin commands."""
    from service.db.engine import async_sessions, make_async_engine
    from service.db.migrate import check_current

    async def run() -> T:
        engine = make_async_engine(settings.async_database_url)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(check_current)
            async with async_sessions(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from service.db.migrate import head_revision, upgrade

    upgrade(settings.sync_database_url)
    print(f"database at schema version {head_revision()}")
    return 0


def _listen(host: str, port: int, *, share: bool = False) -> socket.socket:
    """A TCP socket bound to (host, port); with `share`, other nodes of this machine bind
    the same port (SO_REUSEPORT) and the kernel spreads new connections over them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if share:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"kumpul: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def cmd_web(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from service.app import create_app
    from service.db.migrate import check_url
    from service.http_limits import limited_protocol

    check_url(settings.sync_database_url)  # a clear message now, not a traceback later
    sockets = [_listen(settings.host, settings.port, share=getattr(args, "share_port", False))]
    if settings.node_port:  # this node alone, for requests from other nodes
        sockets.append(_listen(settings.host, settings.node_port))
    config = uvicorn.Config(
        create_app(settings), host=settings.host, port=settings.port, log_config=None,
        proxy_headers=True, forwarded_allow_ips=list(settings.trusted_proxies),
        http=limited_protocol(settings.max_header_bytes),
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run: Ctrl-C ends it quietly
        server.run(sockets=sockets)
    if not server.started:
        raise SystemExit(3)  # uvicorn's startup failure (logged)
    return 0


# Process boundaries: service never imports workers.
WORKER = [sys.executable, "-m", "workers"]
SCHEDULER = [sys.executable, "-m", "workers.cron"]


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    argv = [*WORKER, *args.queues, *(["--burst"] if args.burst else [])]
    os.execv(sys.executable, argv)  # noqa: S606 - fixed argv, no shell


def cmd_scheduler(settings: Settings, args: argparse.Namespace) -> int:
    os.execv(sys.executable, SCHEDULER)  # noqa: S606 - fixed argv, no shell


def cmd_jobs(settings: Settings, args: argparse.Namespace) -> int:
    """The operator's view of jobs that ran out of retries, and a way to retry one."""
    from service.queue import failed_jobs, redis_client, retry_failed

    redis = redis_client(settings.redis_url)
    if args.action == "retry":
        try:
            queue = retry_failed(redis, args.job_id)
        except LookupError as exc:
            print(f"kumpul: {exc}", file=sys.stderr)
            return 1
        print(f"{args.job_id} is back on the {queue} queue")
        return 0
    rows = failed_jobs(redis)
    if not rows:
        print("no failed jobs")
    for row in rows:
        print(f"{row.ended_at[:19]}  {row.queue:8} {row.id}  {row.func}\n    {row.error}")
    return 0


def _redis_reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_redis(settings: Settings) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit(
            f"Redis is not reachable at {settings.redis_url} and redis-server is not installed.\n"
            "Install it (Debian/Ubuntu: apt-get install redis-server), or set KUMPUL_REDIS_URL.")
    port = _free_port()
    folder = settings.data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder.resolve()),
         "--appendonly", "yes", "--save", "", "--daemonize", "no"],
        stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        if _redis_reachable(url):
            return proc, url
        time.sleep(0.05)
    proc.terminate()
    raise SystemExit("redis-server did not start; see its log in " + str(folder))


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Everything on one machine: migrate, Redis, workers, the app; prints the way in."""
    from service.domain import accounts
    from service.queue import lanes

    cmd_migrate(settings, args)
    children: list[subprocess.Popen[bytes]] = []
    env = dict(os.environ)
    if not _redis_reachable(settings.redis_url):
        redis_proc, url = _start_redis(settings)
        children.append(redis_proc)
        settings = settings.replace(redis_url=url)
        env["KUMPUL_REDIS_URL"] = url
        print(f"started redis-server for Kumpul at {url}")
    env["KUMPUL_DATA_DIR"] = str(settings.data_dir)
    try:
        for lane in lanes(settings.embedded_workers):
            children.append(subprocess.Popen([*WORKER, *lane], env=env))
        children.append(subprocess.Popen(SCHEDULER, env=env))
        setup = _with_session(settings, accounts.issue_setup_token)
        print(f"\nKumpul is starting at {settings.public_url}")
        if setup:
            print(f"First owner: open {settings.public_url}/setup/{setup} (one use, 24 h)\n")
        else:
            print("Log in with your owner account.\n")
        sys.stdout.flush()
        nodes = settings.web_nodes or len(os.sched_getaffinity(0))
        if nodes == 1:
            return cmd_web(settings, args)  # a cluster of one, in this process
        return _run_nodes(settings, env, nodes)
    finally:
        for child in reversed(children):
            child.send_signal(signal.SIGTERM)
        for child in reversed(children):
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()


NODE_EXITS = (0, -signal.SIGINT, -signal.SIGTERM)  # a node that stopped because it was told


def _node_env(settings: Settings, env: dict[str, str], index: int) -> dict[str, str]:
    """Node `index`'s settings: the shared public port, a node port and (if media goes
    through one UDP port) a media port of its own."""
    own = dict(env)
    port = settings.node_port + index if settings.node_port else _free_port()
    own["KUMPUL_NODE_PORT"] = str(port)
    own["KUMPUL_NODE_URL"] = settings.replace(node_port=port, node_url="").node_address
    if settings.rtc_udp_port:
        own["KUMPUL_RTC_UDP_PORT"] = str(settings.rtc_udp_port + index)
    return own


def _run_nodes(settings: Settings, env: dict[str, str], count: int) -> int:
    """`count` web nodes on the one public address; a node that dies is started again."""
    command = [sys.executable, "-m", "service.cli", "web", "--share-port"]
    stopping: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    nodes = [subprocess.Popen(command, env=_node_env(settings, env, i)) for i in range(count)]
    print(f"{count} web nodes answer at {settings.public_url}", flush=True)
    try:
        while not stopping:
            time.sleep(0.2)
            for i, node in enumerate(nodes):
                code = node.poll()
                if code is not None and code not in NODE_EXITS and not stopping:
                    print(f"kumpul: web node {i} ended ({code}); starting it again",
                          file=sys.stderr, flush=True)
                    nodes[i] = subprocess.Popen(command, env=_node_env(settings, env, i))
    finally:
        deadline = time.monotonic() + 1  # Ctrl-C reached the nodes too: let them finish
        while any(node.poll() is None for node in nodes) and time.monotonic() < deadline:
            time.sleep(0.05)
        for node in nodes:
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
        for node in nodes:
            try:
                node.wait(timeout=20)
            except subprocess.TimeoutExpired:
                node.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password (10+ characters): ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("The passwords differ.")
    return first


def cmd_create_owner(settings: Settings, args: argparse.Namespace) -> int:
    from service.domain import accounts

    password = _password(args)

    async def work(session: object) -> str:
        user = await accounts.create_user(session, email=args.email,  # type: ignore[arg-type]
                                          display_name=args.name, password=password,
                                          is_admin=True)
        return user.email

    email = _with_session(settings, work)
    print(f"site admin {email} created; log in at {settings.public_url}/login")
    return 0


def cmd_create_community(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from service.db.models import User
    from service.domain import communities

    async def work(session: object) -> str:
        owner = await session.scalar(  # type: ignore[attr-defined]
            select(User).where(User.email == args.owner.strip().lower()))
        if owner is None:
            raise SystemExit(f"no user with email {args.owner!r}")
        community = await communities.create_community(
            session, name=args.name, slug=args.slug, owner=owner,  # type: ignore[arg-type]
            language=settings.language, time_zone=settings.time_zone)
        return str(community.slug)

    slug = _with_session(settings, work)
    print(f"community {slug!r} created: {settings.public_url}/c/{slug}")
    return 0


def cmd_invite(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from service.db.models import Community, Membership, User
    from service.domain import communities
    from service.domain.roles import Role

    async def work(session: object) -> str:
        row = (await session.execute(  # type: ignore[attr-defined]
            select(Community, Membership, User)
            .join(Membership, Membership.community_id == Community.id)
            .join(User, User.id == Membership.user_id)
            .where(Community.slug == args.community, Membership.role == Role.owner)
            .limit(1))).first()
        if row is None:
            raise SystemExit(f"no community {args.community!r}")
        token, _ = await communities.create_invite(
            session, communities.Access(*row), role=args.role,  # type: ignore[arg-type]
            max_uses=args.uses, days=args.days, note=args.note)
        return token

    print(f"{settings.public_url}/invite/{_with_session(settings, work)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kumpul", description="Kumpul service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="all-in-one: migrate, Redis, workers and the app")
    web = sub.add_parser("web", help="the web app only (trusted proxies: KUMPUL_TRUSTED_PROXIES)")
    web.add_argument("--share-port", action="store_true",
                     help="share KUMPUL_PORT with other nodes of this machine (SO_REUSEPORT)")
    worker = sub.add_parser("worker", help="an RQ worker")
    worker.add_argument("queues", nargs="*", help="queues to serve (default: all)")
    worker.add_argument("--burst", action="store_true", help="quit when the queues are empty")
    sub.add_parser("scheduler", help="enqueue periodic upkeep jobs (expired uploads)")
    jobs = sub.add_parser("jobs", help="failed jobs: list them, or retry one")
    jobs.add_argument("action", choices=["failed", "retry"])
    jobs.add_argument("job_id", nargs="?", help="with retry: the job to put back")
    sub.add_parser("migrate", help="bring the database schema up to date")
    owner = sub.add_parser("create-owner", help="create a site admin")
    owner.add_argument("--email", required=True)
    owner.add_argument("--name", required=True)
    owner.add_argument("--password-stdin", action="store_true")
    community = sub.add_parser("create-community", help="create a community")
    community.add_argument("--name", required=True)
    community.add_argument("--slug")
    community.add_argument("--owner", required=True, help="the owner's email")
    invite = sub.add_parser("invite", help="print a new invite link")
    invite.add_argument("--community", required=True, help="the community's short name")
    invite.add_argument("--role", default="member")
    invite.add_argument("--uses", type=int, default=1)
    invite.add_argument("--days", type=int, default=14)
    invite.add_argument("--note", default="")
    return parser


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": cmd_serve, "web": cmd_web, "worker": cmd_worker, "scheduler": cmd_scheduler,
    "migrate": cmd_migrate, "jobs": cmd_jobs,
    "create-owner": cmd_create_owner, "create-community": cmd_create_community,
    "invite": cmd_invite,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "jobs" and args.action == "retry" and not args.job_id:
        parser.error("jobs retry needs a job id")
    settings = load_for_command()
    logs.configure(settings.log_level)
    from service.db.migrate import NotMigrated
    from service.errors import ApiError

    try:
        return COMMANDS[args.command](settings, args)
    except NotMigrated as exc:
        print(f"kumpul: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:
        error = exc.body(i18n.ENGLISH)["error"]
        hint = f" ({error['hint']})" if error.get("hint") else ""
        print(f"kumpul: {error['message']}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
