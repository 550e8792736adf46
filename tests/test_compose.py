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
    assert {"app", "worker", "redis", "minio", "minio-init", "postgres"} <= set(services)
    for name in ("app", "worker", "scheduler", "redis", "minio", "postgres"):
        assert "test" in services[name]["healthcheck"], name
    assert "ports" not in services["worker"] and "container_name" not in services["worker"], \
        "workers must stay scalable with --scale worker=N"
    assert services["app"]["depends_on"]["minio-init"]["condition"] == \
        "service_completed_successfully"
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
    assert data["services"]["app"]["environment"]["KUMPUL_STORAGE"] == "s3"


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
    env = data["services"]["app"]["environment"]
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
    assert resolved["services"]["app"]["environment"]["KUMPUL_ICE_PUBLIC_ADDRESSES"] == \
        "203.0.113.10"


def test_the_media_port_is_published_as_configured() -> None:
    """The app's one live-media UDP port is published on the host under the same number."""
    app = compose()["services"]["app"]
    port = compose()["x-kumpul-env"]["KUMPUL_RTC_UDP_PORT"]
    assert f"{port}:{port}/udp" in app["ports"]


def test_forwarded_headers_are_believed_only_from_the_proxy_network() -> None:
    """No `--forwarded-allow-ips '*'` with a published port: the app believes X-Forwarded-For
    only from the compose network's gateway (the host's proxy), and its port is published on
    the host's loopback only."""
    data = compose()
    app = data["services"]["app"]
    assert "forwarded-allow-ips" not in " ".join(app["command"])
    trusted = app["environment"]["KUMPUL_TRUSTED_PROXIES"]
    network = data["networks"]["default"]["ipam"]["config"][0]
    assert trusted == network["gateway"] and trusted != "*"
    assert "127.0.0.1:8000:8000" in app["ports"]  # live media's UDP port aside
    assert all(port.startswith("127.0.0.1:") or port.endswith("/udp") for port in app["ports"])
