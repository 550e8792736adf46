"""compose.yaml stays a working deployment: services, health, volumes, known settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from service.settings import KNOWN_VARIABLES

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def test_services_and_health() -> None:
    services = compose()["services"]
    assert {"haproxy", "app1", "app2", "worker", "redis", "minio", "minio-init",
            "postgres"} <= set(services)
    for name in ("app1", "app2", "worker", "scheduler", "redis", "minio", "postgres"):
        assert "test" in services[name]["healthcheck"], name
    assert "ports" not in services["worker"] and "container_name" not in services["worker"], \
        "workers must stay scalable with --scale worker=N"
    for node in ("app1", "app2"):
        assert services[node]["depends_on"]["minio-init"]["condition"] == \
            "service_completed_successfully"
    # one node migrates; the other starts once it is healthy (no two migrations at once)
    assert "kumpul migrate" in " ".join(services["app1"]["command"])
    assert "migrate" not in " ".join(services["app2"]["command"])
    assert services["app2"]["depends_on"]["app1"]["condition"] == "service_healthy"
    assert "mc mb --ignore-existing local/kumpul" in " ".join(services["minio-init"]["entrypoint"])


def test_redis_persists_with_aof() -> None:
    redis = compose()["services"]["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_named_volumes() -> None:
    data = compose()
    for name in ("redis", "postgres", "minio"):
        mounts = data["services"][name]["volumes"]
        volume = mounts[0].split(":")[0]
        assert volume in data["volumes"], name


def test_every_kumpul_variable_is_a_known_setting() -> None:
    """No setting in compose.yaml or the image that settings.py would not understand."""
    data = compose()
    seen: set[str] = set()
    for service in data["services"].values():
        env = service.get("environment") or {}
        seen |= {k for k in env if k.startswith("KUMPUL_")}
    dockerfile = (ROOT / "Dockerfile").read_text()
    seen |= set(re.findall(r"\b(KUMPUL_[A-Z0-9_]+)=", dockerfile))
    seen |= set(re.findall(r"^(KUMPUL_[A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert seen and seen <= KNOWN_VARIABLES, sorted(seen - KNOWN_VARIABLES)
    assert data["services"]["app1"]["environment"]["KUMPUL_STORAGE"] == "s3"


def test_required_secrets_are_in_the_example_env() -> None:
    text = (ROOT / "compose.yaml").read_text()
    needed = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    example = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert needed and needed <= example


def test_coturn_listens_on_udp_tcp_and_tls_with_the_apps_secret() -> None:
    """TURN REST API: coturn checks the credentials the app signs with KUMPUL_TURN_SECRET,
    on 3478 (UDP and TCP) and 5349 (TLS), and relays only into the app's network."""
    data = compose()
    coturn = data["services"]["coturn"]
    args = coturn["command"]
    assert {"--listening-port=3478", "--tls-listening-port=5349", "--use-auth-secret",
            "--static-auth-secret=${KUMPUL_TURN_SECRET}"} <= set(args)
    assert "--no-udp" not in args and "--no-tcp" not in args and "--no-tls" not in args
    assert "test" in coturn["healthcheck"]
    env = data["services"]["app1"]["environment"]
    assert env["KUMPUL_TURN_SECRET"].startswith("${KUMPUL_TURN_SECRET")
    urls = env["KUMPUL_ICE_SERVERS"].split(",")
    assert {u.split(":")[0] for u in urls} == {"stun", "turn", "turns"}
    assert any(u.endswith(":3478?transport=udp") for u in urls)
    assert any(u.endswith(":3478?transport=tcp") for u in urls)
    assert any(u.startswith("turns:") and ":5349" in u for u in urls)
    subnet = data["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert subnet == "172.30.64.0/24" and "--allowed-peer-ip=172.30.64.0-172.30.64.255" in args


def test_a_compose_implementation_accepts_the_file(tmp_path: Path) -> None:
    """Debian's docker-compose (1.29) parses and validates compose.yaml with .env.example,
    without a Docker engine."""
    import shutil
    import subprocess

    binary = shutil.which("docker-compose")
    assert binary, "scripts/bootstrap --dev installs Debian's docker-compose"
    env_file = tmp_path / ".env"
    env_file.write_text((ROOT / ".env.example").read_text())
    done = subprocess.run([binary, "--env-file", str(env_file), "-f", str(ROOT / "compose.yaml"),
                           "config"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    for node in ("app1", "app2"):
        assert resolved["services"][node]["environment"]["KUMPUL_ICE_PUBLIC_ADDRESSES"] == \
            "203.0.113.10"
    assert resolved["services"]["app2"]["environment"]["KUMPUL_RTC_UDP_PORT"] == "7883"


def test_each_node_publishes_its_own_media_port() -> None:
    """Each web node's one live-media UDP port is its own, published on the host under the
    same number; other nodes reach it at its own name."""
    services = compose()["services"]
    ports = set()
    for node in ("app1", "app2"):
        env = services[node]["environment"]
        port = env["KUMPUL_RTC_UDP_PORT"]
        assert services[node]["ports"] == [f"{port}:{port}/udp"]
        assert env["KUMPUL_NODE_URL"] == f"http://{node}:8000"
        ports.add(port)
    assert len(ports) == 2


def test_haproxy_spreads_requests_over_the_nodes_it_checks() -> None:
    """HAProxy is the one address (on the host's loopback, for the TLS proxy), with every
    node in its backend, health-checked on /readyz, without sticky sessions."""
    data = compose()
    proxy = data["services"]["haproxy"]
    assert proxy["ports"] == ["127.0.0.1:8000:8000"]
    assert any(v.startswith("./deploy/haproxy.cfg:") for v in proxy["volumes"])
    config = (ROOT / "deploy" / "haproxy.cfg").read_text()
    assert "http-check send meth GET uri /readyz" in config
    for node in ("app1", "app2"):
        assert f"server {node} {node}:8000" in config
    directives = [line.split()[0] for line in config.splitlines()
                  if line.strip() and not line.lstrip().startswith("#")]
    assert "cookie" not in directives and "stick" not in directives  # no sticky sessions


def test_forwarded_headers_are_believed_only_from_the_proxies() -> None:
    """No `--forwarded-allow-ips '*'`: each node believes X-Forwarded-For only from HAProxy
    (its fixed address) and the network's gateway (the host's TLS proxy, which HAProxy names
    in the header); no node publishes a TCP port."""
    data = compose()
    network = data["networks"]["default"]["ipam"]["config"][0]
    proxy = data["services"]["haproxy"]["networks"]["default"]["ipv4_address"]
    for node in ("app1", "app2"):
        app = data["services"][node]
        assert "forwarded-allow-ips" not in " ".join(app["command"])
        trusted = app["environment"]["KUMPUL_TRUSTED_PROXIES"].split(",")
        assert sorted(trusted) == sorted([network["gateway"], proxy]) and "*" not in trusted
        assert all(port.endswith("/udp") for port in app["ports"])
