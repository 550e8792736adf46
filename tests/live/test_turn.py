"""TURN that works: every client gets its own ephemeral TURN REST API credential (pages in
`data-ice`, WHIP/WHEP clients in `Link` headers) that Debian's coturn accepts, and the
server itself never talks to STUN/TURN, so an unreachable one costs nothing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from aioice import stun, turn

from service.live import turn as kumpul_turn
from service.settings import Settings, SettingsError
from tests.conftest import ServerProcess, free_port, make_settings
from tests.live import run_async
from tests.live.test_forward import Viewer
from tests.live.test_signalling import publish, schedule, watch
from tests.remote import RemoteMember, member_of_new_community
from tests.turnserver import Coturn

SECRET = "turn-shared-secret-for-tests"
LINK = re.compile(r'<([^>]+)>; rel="ice-server"(?:; username="([^"]*)"; credential="([^"]*)"; '
                  r'credential-type="password")?')


def test_credentials_follow_the_turn_rest_api() -> None:
    """username = expiry:who; credential = base64(HMAC-SHA1(secret, username))."""
    username, credential = kumpul_turn.rest_credential(SECRET, "user-7", 3600, now=1_000_000)
    assert username == "1003600:user-7"
    expected = hmac.new(SECRET.encode(), b"1003600:user-7", hashlib.sha1).digest()
    assert base64.b64decode(credential) == expected
    odd, _ = kumpul_turn.rest_credential(SECRET, 'live-x:"host"', 60, now=0)
    assert odd == "60:live-x__host_"  # nothing that could break the Link header or coturn


def test_each_client_gets_stun_plain_and_turn_with_its_credential(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, KUMPUL_ICE_SERVERS="stun:stun.example:3478,"
                             "turn:turn.example:3478?transport=udp,turns:turn.example:5349",
                             KUMPUL_TURN_SECRET=SECRET, KUMPUL_TURN_TTL_SECONDS="600")
    servers = kumpul_turn.servers_for(settings, "user-1", now=100)
    assert servers[0].for_page() == {"urls": "stun:stun.example:3478"}
    assert [s.username for s in servers[1:]] == ["700:user-1", "700:user-1"]
    links = LINK.findall(kumpul_turn.link_headers(servers)["Link"])
    assert [url for url, _, _ in links] == ["stun:stun.example:3478",
                                             "turn:turn.example:3478?transport=udp",
                                             "turns:turn.example:5349"]
    assert links[1][1:] == (servers[1].username, servers[1].credential)
    static = make_settings(tmp_path, KUMPUL_ICE_SERVERS="turn:turn.example:3478",
                           KUMPUL_TURN_USERNAME="kumpul", KUMPUL_TURN_CREDENTIAL='pa"ss')
    assert kumpul_turn.servers_for(static, "x")[0].link().endswith(
        'username="kumpul"; credential="pa\\"ss"; credential-type="password"')


@pytest.mark.parametrize(("env", "message"), [
    ({"KUMPUL_ICE_SERVERS": "turn:turn.example:3478"}, "needs credentials"),
    ({"KUMPUL_TURN_SECRET": "x", "KUMPUL_TURN_USERNAME": "u", "KUMPUL_TURN_CREDENTIAL": "c"},
     "not both"),
    ({"KUMPUL_TURN_USERNAME": "u"}, "go together"),
    ({"KUMPUL_TURN_TTL_SECONDS": "5"}, "KUMPUL_TURN_TTL_SECONDS"),
])
def test_turn_settings_that_would_break_pages_are_refused(
        tmp_path: Path, env: dict[str, str], message: str) -> None:
    """A turn: URL without credentials makes browsers refuse to create the connection: the
    server refuses to start instead, naming the setting."""
    with pytest.raises(SettingsError, match=message):
        make_settings(tmp_path, **env)


def test_coturn_accepts_kumpul_credentials_and_refuses_expired_or_foreign(
        tmp_path: Path) -> None:
    """Debian's coturn with use-auth-secret allocates a relay for a fresh credential and
    answers 401 to an expired one and to one signed with another secret."""
    coturn = Coturn(tmp_path, SECRET).start()
    try:
        fresh = kumpul_turn.rest_credential(SECRET, "user-1", 600)
        expired = kumpul_turn.rest_credential(SECRET, "user-1", 60, now=time.time() - 3600)
        foreign = kumpul_turn.rest_credential("another-secret", "user-1", 600)
        results = [run_async(_allocate(coturn, *c)) for c in (fresh, expired, foreign)]
    finally:
        coturn.stop()
    assert results == ["relayed", "401", "401"]


async def _allocate(coturn: Coturn, username: str, credential: str,
                    transport: str = "udp") -> str:
    try:
        relay, _ = await turn.create_turn_endpoint(
            asyncio.DatagramProtocol, server_addr=(coturn.address, coturn.port),
            username=username, password=credential, transport=transport)
    except stun.TransactionFailed as exc:
        return str(exc.response.attributes["ERROR-CODE"][0])
    relay.close()
    await asyncio.sleep(0.2)  # the deallocation goes out
    return "relayed"


class Silent:
    """A STUN/TURN address that takes UDP datagrams and TCP connections and never answers:
    the unreachable server of a bad deployment. Counts whatever reaches it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.udp.settimeout(0.2)
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(8)
        self.tcp.settimeout(0.2)
        self.datagrams = 0
        self.connections = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._accept, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.udp.recv(2048)
                self.datagrams += 1
            except TimeoutError:
                continue

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
                self.connections += 1
                conn.close()
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.udp.close()
        self.tcp.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    made = Silent()
    try:
        yield made
    finally:
        made.close()


def _server(settings: Settings, tmp_path: Path, urls: str) -> ServerProcess:
    configured = settings.replace(ice_host_addresses=("127.0.0.1",), turn_secret=SECRET,
                                  ice_servers=tuple(urls.split(",")))
    return ServerProcess(configured, tmp_path / "server.log").start()


def _session(server: ServerProcess) -> tuple[RemoteMember, dict[str, object]]:
    host = member_of_new_community(server, role="host")
    return host, schedule(server, host)


async def _watch_when_live(client: httpx.AsyncClient, url: str,
                           token: str) -> tuple[Viewer, httpx.Response]:
    """WHEP once the publisher's media has arrived (409 session_not_live until then)."""
    for _ in range(50):
        viewer, answer = await watch(client, url, token)
        if answer.status_code != 409:
            return viewer, answer
        await viewer.close()
        await asyncio.sleep(0.2)
    return viewer, answer


def test_the_server_never_talks_to_stun_or_turn(
        settings: Settings, tmp_path: Path, silent: Silent) -> None:
    """With STUN and TURN (UDP and TCP) configured at an address that never answers, a host
    publishes, a member watches, the session ends and the server shuts down: not one
    datagram or connection reaches that address (before, every POST waited 5 s on it and
    shutdown ~64 s per connection), and the WHIP and WHEP answers still hand the clients
    their servers."""
    where = f"127.0.0.1:{silent.port}"
    server = _server(settings, tmp_path,
                     f"stun:{where},turn:{where}?transport=udp,turn:{where}?transport=tcp")
    try:
        host, live = _session(server)

        async def run() -> dict[str, object]:
            async with httpx.AsyncClient(timeout=20) as client:
                publisher, made = await publish(client, str(live["whip_url"]),
                                                str(live["publish_token"]))
                assert made.status_code == 201, made.text
                viewer, answer = await _watch_when_live(client, str(live["whep_url"]),
                                                        host.token)
                assert answer.status_code == 201, answer.text
                await asyncio.sleep(2)
                frames = len(viewer.frames)
                await client.post(f"{server.url}/api/communities/{host.slug}/live/"
                                  f"{live['id']}/end", headers=host.auth)
                await viewer.close()
                await publisher.close()
            return {"frames": frames, "whip": made.headers["link"],
                    "whep": answer.headers["link"]}

        out = run_async(run())
    finally:
        server.stop()
    assert (silent.datagrams, silent.connections) == (0, 0)
    assert isinstance(out["frames"], int) and out["frames"] > 20
    for link, who in ((out["whip"], f"live-{live['id']}-host"), (out["whep"], "user-")):
        found = LINK.findall(str(link))
        assert found[0][0] == f"stun:{where}" and len(found) == 3
        for _, username, credential in found[1:]:
            expiry, _, name = username.partition(":")
            assert name.startswith(who) and int(expiry) > time.time() + 3600
            assert base64.b64decode(credential) == hmac.new(
                SECRET.encode(), username.encode(), hashlib.sha1).digest()


def test_pages_and_whep_clients_get_credentials_coturn_accepts(
        settings: Settings, tmp_path: Path) -> None:
    """The watch page's ICE servers and the WHEP `Link` headers carry a username and
    credential, and Debian's coturn allocates with both; the server itself allocated no
    relay for the publisher or the viewer."""
    coturn = Coturn(tmp_path, SECRET).start()
    server = _server(settings, tmp_path, ",".join(coturn.urls))
    try:
        host, live = _session(server)
        page = httpx.get(f"{server.url}/c/{host.slug}/live/{live['id']}", headers=host.auth)
        assert page.status_code == 200, page.text
        found = re.search(r'data-ice="([^"]*)"', page.text)
        assert found is not None
        ice = json.loads(html.unescape(found.group(1)))
        assert [s["urls"] for s in ice] == list(coturn.urls)

        async def run() -> list[str]:
            async with httpx.AsyncClient(timeout=20) as client:
                publisher, made = await publish(client, str(live["whip_url"]),
                                                str(live["publish_token"]))
                viewer, answer = await _watch_when_live(client, str(live["whep_url"]),
                                                        host.token)
                await asyncio.sleep(1)
                before = coturn.allocations()
                linked = LINK.findall(answer.headers["link"])
                results = [
                    await _allocate(coturn, ice[0]["username"], ice[0]["credential"]),
                    await _allocate(coturn, linked[0][1], linked[0][2]),
                    await _allocate(coturn, linked[1][1], linked[1][2], transport="tcp")]
                await viewer.close()
                await publisher.close()
                assert made.status_code == 201
                return [str(before), *results]

        out = run_async(run())
    finally:
        server.stop()
        coturn.stop()
    assert out == ["0", "relayed", "relayed", "relayed"]
