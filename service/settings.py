"""Configuration: the one place that reads the environment (and `.env`).

Every setting is declared once in `SPECS` with its variable name, type, default and a
sentence for the README. `load_settings()` casts and validates them all and fails with
a message naming the bad variable.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values


class SettingsError(ValueError):
    """A setting has a value Kumpul cannot use; the message names the variable."""


@dataclass(frozen=True)
class Spec:
    env: str
    attr: str
    cast: Callable[[str], Any]
    default: str
    doc: str
    secret: bool = False


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def cast(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected a whole number between {low} and {high}") from None
        if not low <= value <= high:
            raise ValueError(f"expected a whole number between {low} and {high}")
        return value

    return cast


def _choice(*options: str) -> Callable[[str], str]:
    def cast(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError("expected one of " + ", ".join(options))
        return value

    return cast


def _url(*schemes: str) -> Callable[[str], str]:
    def cast(raw: str) -> str:
        value = raw.strip()
        scheme = urlsplit(value).scheme
        if scheme not in schemes:
            starts = " or ".join(f"{s}://" for s in schemes)
            raise ValueError(f"expected a URL starting with {starts}")
        return value

    return cast


def _csv(*allowed: str) -> Callable[[str], tuple[str, ...]]:
    def cast(raw: str) -> tuple[str, ...]:
        items = tuple(dict.fromkeys(p.strip().lower() for p in raw.split(",") if p.strip()))
        unknown = [item for item in items if item not in allowed]
        if not items or unknown:
            raise ValueError("expected a comma-separated list of " + ", ".join(allowed))
        return items

    return cast


def _text(raw: str) -> str:
    return raw.strip()


def _ice_urls(raw: str) -> tuple[str, ...]:
    items = tuple(p.strip() for p in raw.split(",") if p.strip())
    bad = [i for i in items if not i.startswith(("stun:", "turn:", "turns:"))]
    if bad:
        raise ValueError("expected stun:, turn: or turns: URLs, comma-separated")
    return items


def _origins(raw: str) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(p.strip().rstrip("/") for p in raw.split(",") if p.strip()))
    for item in items:
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path \
                or parts.query or parts.fragment or "@" in parts.netloc:
            raise ValueError("expected origins such as https://brand.example "
                             "(scheme, host and port only), comma-separated")
    return items


def _stun_url(raw: str) -> str:
    value = raw.strip()
    host, _, port = value.removeprefix("stun:").rpartition(":")
    if value and not (value.startswith("stun:") and host and port.isdigit()):
        raise ValueError("expected stun:host:port")
    return value


def _ipv4_list(raw: str) -> tuple[str, ...]:
    items = tuple(p.strip() for p in raw.split(",") if p.strip())
    for item in items:
        parts = item.split(".")
        if len(parts) != 4 or not all(p.isdigit() and 0 <= int(p) <= 255 for p in parts):
            raise ValueError("expected IPv4 addresses, comma-separated")
    return items


def _zone_name(raw: str) -> str:
    value = raw.strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone such as Asia/Jakarta") from None
    return value


def _networks(raw: str) -> tuple[str, ...]:
    items = tuple(p.strip() for p in raw.split(",") if p.strip())
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError("expected IP addresses or networks (CIDR), comma-separated; "
                             "never '*'") from None
    return items


def _seconds_span(raw: str) -> tuple[int, int]:
    low, sep, high = raw.strip().partition("-")
    try:
        span = (int(low), int(high)) if sep else (-1, -1)
    except ValueError:
        span = (-1, -1)
    if not 1 <= span[0] <= span[1] <= 600:
        raise ValueError("expected shortest-longest in whole seconds, e.g. 8-30 (at most 600)")
    return span


def _hosts(raw: str) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(p.strip().lower().rstrip(".") for p in raw.split(",")
                                if p.strip()))
    bad = [i for i in items if not i or any(c in i for c in "/@: ")]
    if bad:
        raise ValueError("expected host names or addresses without scheme or port, "
                         "comma-separated (e.g. receiver.internal,10.0.0.7)")
    return items


def _retry_schedule(raw: str) -> tuple[int, ...]:
    try:
        items = tuple(int(p) for p in raw.split(",") if p.strip())
    except ValueError:
        items = ()
    if not items or len(items) > 20 or any(not 1 <= i <= 86400 for i in items):
        raise ValueError("expected up to 20 waits in whole seconds (1-86400), comma-separated, "
                         "e.g. 5,300,1800")
    return items


def _bucket(raw: str) -> str:
    value = raw.strip()
    ok = 3 <= len(value) <= 63 and all(c.islower() or c.isdigit() or c in "-." for c in value)
    if not ok:
        raise ValueError("expected 3-63 lowercase letters, digits, dots or hyphens")
    return value


def _endpoint(raw: str) -> str:
    value = raw.strip()
    if "://" in value or "/" in value:
        raise ValueError("expected host:port without a scheme or path "
                         "(set KUMPUL_S3_SECURE for TLS)")
    return value


SPECS: tuple[Spec, ...] = (
    Spec("KUMPUL_DATA_DIR", "data_dir", _text, "./data",
         "Folder for the embedded defaults: SQLite file, object store, generated secret."),
    Spec("KUMPUL_DATABASE_URL", "database_url", _url("sqlite", "postgresql", "postgres"), "",
         "SQLAlchemy URL. Empty means SQLite at `{data_dir}/kumpul.db`; "
         "`postgresql://user@host/db` uses PostgreSQL."),
    Spec("KUMPUL_REDIS_URL", "redis_url", _url("redis", "rediss", "unix"),
         "redis://127.0.0.1:6379/0", "Redis for queues, rate limits and live state."),
    Spec("KUMPUL_STORAGE", "storage", _choice("local", "s3"), "local",
         "Object store adapter: `local` (a folder) or `s3` (MinIO or any S3 server)."),
    Spec("KUMPUL_STORAGE_DIR", "storage_dir", _text, "",
         "Folder of the local object store. Empty means `{data_dir}/objects`."),
    Spec("KUMPUL_S3_ENDPOINT", "s3_endpoint", _endpoint, "127.0.0.1:9000",
         "S3/MinIO endpoint as host:port."),
    Spec("KUMPUL_S3_ACCESS_KEY", "s3_access_key", _text, "", "S3 access key.", secret=True),
    Spec("KUMPUL_S3_SECRET_KEY", "s3_secret_key", _text, "", "S3 secret key.", secret=True),
    Spec("KUMPUL_S3_BUCKET", "s3_bucket", _bucket, "kumpul", "Private bucket holding all media."),
    Spec("KUMPUL_S3_REGION", "s3_region", _text, "us-east-1", "S3 region name."),
    Spec("KUMPUL_S3_SECURE", "s3_secure", _bool, "false", "Talk to S3 over TLS."),
    Spec("KUMPUL_SECRET_KEY", "secret_key", _text, "",
         "Signs URLs and tokens. Empty means a random key kept in `{data_dir}/secret_key`.",
         secret=True),
    Spec("KUMPUL_HOST", "host", _text, "127.0.0.1", "Address the web app listens on."),
    Spec("KUMPUL_PORT", "port", _int_range(1, 65535), "8000", "Port the web app listens on."),
    Spec("KUMPUL_PUBLIC_URL", "public_url", _url("http", "https"), "",
         "Address people use to reach Kumpul; used in links and to decide Secure cookies. "
         "Empty means `http://{host}:{port}`."),
    Spec("KUMPUL_SESSION_HOURS", "session_hours", _int_range(1, 24 * 90), "336",
         "How long a login lasts."),
    Spec("KUMPUL_LOGIN_ATTEMPTS", "login_attempts", _int_range(1, 1000), "10",
         "Failed logins allowed per (address, account) pair in the window below; beyond as "
         "many failures for one account from anywhere, its logins are slowed (never refused)."),
    Spec("KUMPUL_LOGIN_ADDRESS_ATTEMPTS", "login_address_attempts", _int_range(1, 100000), "50",
         "Failed logins allowed per address (any accounts) in the window below."),
    Spec("KUMPUL_METRICS_TOKEN", "metrics_token", _text, "",
         "Bearer token operators send for `/metrics` and `/readyz`'s details. Empty: only "
         "callers on this machine (loopback) get them.", secret=True),
    Spec("KUMPUL_MAIL_TRANSPORT", "mail_transport", _choice("log", "smtp"), "log",
         "How mail goes out: `log` (written to the log and the site admin's outbox page; "
         "nothing is delivered) or `smtp`."),
    Spec("KUMPUL_MAIL_FROM", "mail_from", _text, "Kumpul <kumpul@localhost>",
         "Sender of Kumpul's mails."),
    Spec("KUMPUL_SMTP_HOST", "smtp_host", _text, "127.0.0.1", "SMTP server."),
    Spec("KUMPUL_SMTP_PORT", "smtp_port", _int_range(1, 65535), "587", "SMTP port."),
    Spec("KUMPUL_SMTP_TLS", "smtp_tls", _choice("none", "starttls", "tls"), "starttls",
         "SMTP encryption: `starttls` (port 587), `tls` (port 465) or `none`."),
    Spec("KUMPUL_SMTP_USERNAME", "smtp_username", _text, "", "SMTP login (empty: none)."),
    Spec("KUMPUL_SMTP_PASSWORD", "smtp_password", _text, "", "SMTP password.", secret=True),
    Spec("KUMPUL_RESET_MINUTES", "reset_minutes", _int_range(5, 24 * 60), "30",
         "How long a password reset link works (once)."),
    Spec("KUMPUL_TRUSTED_PROXIES", "trusted_proxies", _networks, "127.0.0.1",
         "Addresses or networks (CIDR) of the reverse proxies whose `X-Forwarded-For` and "
         "`X-Forwarded-Proto` are believed; anyone else's are ignored."),
    Spec("KUMPUL_LOGIN_WINDOW_SECONDS", "login_window_seconds", _int_range(10, 86400), "900",
         "Window of the login rate limit."),
    Spec("KUMPUL_MAX_BODY_BYTES", "max_body_bytes", _int_range(1024, 64 * 1024 * 1024), "1048576",
         "Largest JSON or form body accepted (uploads have their own limits)."),
    Spec("KUMPUL_MAX_HEADER_BYTES", "max_header_bytes", _int_range(4096, 1024 * 1024), "32768",
         "Largest request line plus headers accepted (431 beyond), refused as they arrive."),
    Spec("KUMPUL_UPLOADS_PER_HOUR", "uploads_per_hour", _int_range(1, 100000), "30",
         "Uploads one member may start per hour (429 beyond)."),
    Spec("KUMPUL_SIGNED_URL_SECONDS", "signed_url_seconds", _int_range(10, 7 * 86400), "900",
         "Lifetime of signed media URLs."),
    Spec("KUMPUL_INVITE_DAYS", "invite_days", _int_range(1, 365), "14",
         "Default lifetime of a new invite link."),
    Spec("KUMPUL_LOG_LEVEL", "log_level", _choice("debug", "info", "warning", "error"), "info",
         "Log level of the JSON logs."),
    Spec("KUMPUL_UPLOAD_MAX_BYTES", "upload_max_bytes", _int_range(1024, 64 * 1024**3), "500000000",
         "Largest story upload in bytes (500 MB)."),
    Spec("KUMPUL_UPLOAD_MAX_SECONDS", "upload_max_seconds", _int_range(1, 3600), "180",
         "Longest story in seconds; a prompt may set less."),
    Spec("KUMPUL_UPLOAD_CONTAINERS", "upload_containers", _csv("mp4", "mov", "webm", "mkv"),
         "mp4,mov,webm,mkv", "Accepted containers."),
    Spec("KUMPUL_UPLOAD_VIDEO_CODECS", "upload_video_codecs",
         _csv("h264", "hevc", "vp8", "vp9", "av1"), "h264,hevc,vp8,vp9,av1",
         "Accepted video codecs."),
    Spec("KUMPUL_UPLOAD_AUDIO_CODECS", "upload_audio_codecs", _csv("aac", "opus", "mp3"),
         "aac,opus,mp3", "Accepted audio codecs."),
    Spec("KUMPUL_UPLOAD_EXPIRY_HOURS", "upload_expiry_hours", _int_range(1, 24 * 30), "24",
         "An unfinished upload is removed this long after its last byte arrived."),
    Spec("KUMPUL_SPOOL_DIR", "spool_dir", _text, "",
         "Scratch for the S3 multipart part a request is filling (and uploaded assets). "
         "Empty means `{data_dir}/spool`."),
    Spec("KUMPUL_MEDIA_TIMEOUT_SECONDS", "media_timeout_seconds", _int_range(5, 7200), "120",
         "Wall-clock limit of one ffprobe/ffmpeg run on member media."),
    Spec("KUMPUL_MAX_PIXELS", "max_pixels", _int_range(64 * 64, 8192 * 8192), "16777216",
         "Largest frame (width x height) accepted from members."),
    Spec("KUMPUL_RENDITION_LONG_SIDE", "rendition_long_side", _int_range(240, 3840), "1280",
         "Longest side in pixels of the web rendition every clip is normalised to."),
    Spec("KUMPUL_INGEST_DEADLINE_SECONDS", "ingest_deadline_seconds", _int_range(30, 86400),
         "900", "A clip still being processed after this long is re-queued by the reconciler."),
    Spec("KUMPUL_ICE_SERVERS", "ice_servers", _ice_urls, "",
         "STUN/TURN servers offered to live-room clients (comma-separated `stun:`/`turn:`/"
         "`turns:` URLs), also sent as WHIP/WHEP `Link` headers. The server itself uses none "
         "of them."),
    Spec("KUMPUL_TURN_USERNAME", "turn_username", _text, "", "Username for the TURN servers."),
    Spec("KUMPUL_TURN_CREDENTIAL", "turn_credential", _text, "",
         "Credential for the TURN servers."),
    Spec("KUMPUL_TURN_SECRET", "turn_secret", _text, "",
         "Shared secret of the TURN REST API (coturn's `static-auth-secret` with "
         "`use-auth-secret`): each page and WHIP/WHEP answer gets its own username with an "
         "expiry and an HMAC credential. Use this or the static pair above, not both.",
         secret=True),
    Spec("KUMPUL_TURN_TTL_SECONDS", "turn_ttl_seconds", _int_range(60, 7 * 86400), "86400",
         "How long a TURN credential handed out works (it must outlast a viewing: "
         "coturn checks the expiry on every allocation refresh)."),
    Spec("KUMPUL_ICE_HOST_ADDRESSES", "ice_host_addresses", _ipv4_list, "",
         "IPv4 addresses the server offers as ICE host candidates. Empty: every interface "
         "but loopback; set `127.0.0.1` when clients run on the same machine."),
    Spec("KUMPUL_ICE_PUBLIC_ADDRESSES", "ice_public_addresses", _ipv4_list, "",
         "IPv4 addresses people reach this node at through a 1:1 NAT (a cloud load balancer, "
         "Docker's port publishing): host candidates carry them in place of the node's own. "
         "Empty: the node's own addresses (or what KUMPUL_ICE_DISCOVER finds)."),
    Spec("KUMPUL_ICE_DISCOVER", "ice_discover", _stun_url, "",
         "A `stun:host:port` server asked once at start-up for this node's public address "
         "(logged), used when KUMPUL_ICE_PUBLIC_ADDRESSES is empty."),
    Spec("KUMPUL_RTC_UDP_PORT", "rtc_udp_port", _int_range(0, 65535), "0",
         "One UDP port that carries the media of every live connection of this node (open "
         "it on the firewall). 0: each connection binds a port of its own at random."),
    Spec("KUMPUL_FORWARD_PATH", "forward_path", _choice("shared", "classic"), "shared",
         "How live frames reach viewers: `shared` packetizes each frame once per layer and "
         "writes only headers and SRTP per viewer; `classic` is aiortc's own sender per "
         "viewer (to compare)."),
    Spec("KUMPUL_LIVE_MAX_VIEWERS", "live_max_viewers", _int_range(1, 5000), "300",
         "Viewers one live room takes at most."),
    Spec("KUMPUL_MOMENT_SECONDS", "moment_seconds", _seconds_span, "8-30",
         "Shortest and longest highlight the moment finder proposes from a session."),
    Spec("KUMPUL_MOMENTS_PER_SESSION", "moments_per_session", _int_range(1, 50), "5",
         "Highlights the moment finder proposes per session at most."),
    Spec("KUMPUL_CORS_ORIGINS", "cors_origins", _origins, "",
         "Other sites allowed to call the tus, WHIP and WHEP endpoints from a browser "
         "(comma-separated origins, e.g. `https://brand.example`); they authenticate with a "
         "personal token. Empty: same origin only."),
    Spec("KUMPUL_EMBEDDED_WORKERS", "embedded_workers", _int_range(0, 16), "3",
         "Workers `kumpul serve` starts beside the app, each on its lane of queues (with 3 or "
         "more, a heavy clip, a reel or a recording never holds up a short story)."),
    Spec("KUMPUL_WEB_NODES", "web_nodes", _int_range(0, 64), "0",
         "Web nodes `kumpul serve` starts, all answering on `KUMPUL_PORT` (the kernel spreads "
         "connections over them); 0: one per CPU core."),
    Spec("KUMPUL_NODE_URL", "node_url", _url("http", "https"), "",
         "Address other nodes reach this node at for requests between nodes. Empty means "
         "`http://{host}:{node port, else port}`."),
    Spec("KUMPUL_NODE_PORT", "node_port", _int_range(0, 65535), "0",
         "A second port this node listens on by itself, for requests between nodes (needed "
         "when several nodes share the public port, as under `kumpul serve`). 0: none."),
    Spec("KUMPUL_LANGUAGE", "language", _choice("id", "en"), "id",
         "Language of new communities, and of visitors whose browser asks for none Kumpul has."),
    Spec("KUMPUL_TIME_ZONE", "time_zone", _zone_name, "Asia/Jakarta",
         "Time zone of new communities and of visitors (IANA name; WIB is `Asia/Jakarta`)."),
    Spec("KUMPUL_PROCESSING_BUDGET", "processing_budget", _int_range(100, 10**7), "25000",
         "Megapixel-frames (width x height x frame rate x seconds / 10^6) a clip may cost on "
         "the normal plan; above it, ingest drops frames at the decoder and uses faster "
         "presets, on the `heavy` queue."),
    Spec("KUMPUL_PROCESSING_CEILING", "processing_ceiling", _int_range(100, 10**8), "200000",
         "Megapixel-frames beyond which a clip is refused with a plain reason."),
    Spec("KUMPUL_MEMBER_PROCESSING_LIMIT", "member_processing_limit", _int_range(1, 100), "2",
         "Clips of one member being prepared at once; further ones wait their turn."),
    Spec("KUMPUL_COMMUNITY_PROCESSING_LIMIT", "community_processing_limit",
         _int_range(1, 1000), "6",
         "Clips of one community being prepared at once; further ones wait their turn."),
    Spec("KUMPUL_WEBHOOK_ALLOW_HOSTS", "webhook_allow_hosts", _hosts, "",
         "Host names or addresses webhooks may reach although they are not public (loopback, "
         "private networks), comma-separated. Empty: webhooks go to public addresses only."),
    Spec("KUMPUL_WEBHOOK_TIMEOUT_SECONDS", "webhook_timeout_seconds", _int_range(1, 60), "10",
         "Wall-clock limit of one webhook delivery attempt (connect, send, answer)."),
    Spec("KUMPUL_WEBHOOK_RETRY_SCHEDULE", "webhook_retry_schedule", _retry_schedule,
         "10,60,300,1800,7200,21600,54000",
         "Seconds to wait before each retry of a failed webhook delivery (about 24 hours in "
         "all); when the last retry fails too and the endpoint had no success meanwhile, it is "
         "disabled and its owners are told."),
    Spec("KUMPUL_WEBHOOK_ROTATION_HOURS", "webhook_rotation_hours", _int_range(0, 24 * 30), "24",
         "After a webhook secret is rotated, deliveries are signed with the old secret too "
         "for this long, so receivers can switch over."),
)

KNOWN_VARIABLES = frozenset(spec.env for spec in SPECS)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    redis_url: str
    storage: str
    storage_dir: Path
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_bucket: str
    s3_region: str
    s3_secure: bool
    secret_key: str
    host: str
    port: int
    public_url: str
    session_hours: int
    login_attempts: int
    login_window_seconds: int
    login_address_attempts: int
    trusted_proxies: tuple[str, ...]
    metrics_token: str
    mail_transport: str
    mail_from: str
    smtp_host: str
    smtp_port: int
    smtp_tls: str
    smtp_username: str
    smtp_password: str
    reset_minutes: int
    max_body_bytes: int
    signed_url_seconds: int
    max_header_bytes: int
    uploads_per_hour: int
    invite_days: int
    log_level: str
    embedded_workers: int
    upload_max_bytes: int
    upload_max_seconds: int
    upload_containers: tuple[str, ...]
    upload_video_codecs: tuple[str, ...]
    upload_audio_codecs: tuple[str, ...]
    upload_expiry_hours: int
    spool_dir: Path
    media_timeout_seconds: int
    max_pixels: int
    rendition_long_side: int
    ingest_deadline_seconds: int
    ice_servers: tuple[str, ...]
    turn_username: str
    turn_credential: str
    ice_host_addresses: tuple[str, ...]
    ice_public_addresses: tuple[str, ...]
    ice_discover: str
    rtc_udp_port: int
    forward_path: str
    live_max_viewers: int
    moment_seconds: tuple[int, int]
    moments_per_session: int
    processing_budget: int
    processing_ceiling: int
    member_processing_limit: int
    community_processing_limit: int
    language: str
    time_zone: str
    turn_secret: str = ""
    turn_ttl_seconds: int = 86400
    cors_origins: tuple[str, ...] = ()
    webhook_allow_hosts: tuple[str, ...] = ()
    webhook_timeout_seconds: int = 10
    webhook_retry_schedule: tuple[int, ...] = (10, 60, 300, 1800, 7200, 21600, 54000)
    webhook_rotation_hours: int = 24
    web_nodes: int = 0
    node_url: str = ""
    node_port: int = 0

    @property
    def node_address(self) -> str:
        """The base URL other nodes reach this one at (`KUMPUL_NODE_URL`, or made from the
        host and the node port)."""
        if self.node_url:
            return self.node_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host  # noqa: S104
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.node_port or self.port}"

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def async_database_url(self) -> str:
        return driver_url(self.database_url, sync=False)

    @property
    def sync_database_url(self) -> str:
        return driver_url(self.database_url, sync=True)

    def as_environ(self) -> dict[str, str]:
        """The variables that give another process (worker, server) these same settings."""
        out = {}
        for spec in SPECS:
            value = getattr(self, spec.attr)
            if isinstance(value, bool):
                out[spec.env] = str(value).lower()
            elif spec.attr == "moment_seconds":
                out[spec.env] = "-".join(map(str, value))
            elif isinstance(value, tuple):
                out[spec.env] = ",".join(map(str, value))
            else:
                out[spec.env] = str(value)
        return out

    def replace(self, **changes: Any) -> Settings:
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values.update(changes)
        return Settings(**values)


def driver_url(url: str, *, sync: bool) -> str:
    """The SQLAlchemy URL with the driver Kumpul uses for it (async app or sync worker)."""
    scheme, sep, rest = url.partition("://")
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        return f"sqlite+{'pysqlite' if sync else 'aiosqlite'}{sep}{rest}"
    if base in {"postgresql", "postgres"}:
        return f"postgresql+psycopg{sep}{rest}"
    raise SettingsError(f"KUMPUL_DATABASE_URL: unsupported database {scheme!r}")


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Read, cast and validate every setting. Process environment beats `.env`."""
    source: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        source.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    source.update(os.environ if environ is None else environ)

    values: dict[str, Any] = {}
    for spec in SPECS:
        raw = source.get(spec.env) or spec.default  # set but empty means the default
        try:
            values[spec.attr] = spec.cast(raw) if raw else ""
        except ValueError as exc:
            shown = "(hidden)" if spec.secret else repr(raw)
            raise SettingsError(f"{spec.env}={shown}: {exc}") from None

    data_dir = Path(values["data_dir"]).expanduser()
    values["data_dir"] = data_dir
    if not values["database_url"]:
        values["database_url"] = f"sqlite:///{(data_dir / 'kumpul.db').as_posix()}"
    values["storage_dir"] = Path(values["storage_dir"] or data_dir / "objects").expanduser()
    values["spool_dir"] = Path(values["spool_dir"] or data_dir / "spool").expanduser()
    if values["storage"] == "s3" and not (values["s3_access_key"] and values["s3_secret_key"]):
        raise SettingsError(
            "KUMPUL_S3_ACCESS_KEY and KUMPUL_S3_SECRET_KEY are required when KUMPUL_STORAGE=s3"
        )
    if not values["secret_key"]:
        values["secret_key"] = _embedded_secret(data_dir)
    elif len(values["secret_key"]) < 32:
        raise SettingsError("KUMPUL_SECRET_KEY=(hidden): expected at least 32 characters")
    if not values["public_url"]:
        host = "127.0.0.1" if values["host"] in ("", "0.0.0.0", "::") else values["host"]  # noqa: S104
        values["public_url"] = f"http://{host}:{values['port']}"
    values["public_url"] = values["public_url"].rstrip("/")
    _check_turn(values)
    values["cors_origins"] = values["cors_origins"] or ()
    values["webhook_allow_hosts"] = values["webhook_allow_hosts"] or ()
    unknown = sorted(k for k in source if k.startswith("KUMPUL_") and k not in KNOWN_VARIABLES)
    if unknown:
        raise SettingsError(
            f"{unknown[0]}: unknown setting (see the configuration table in README.md)")
    return Settings(**values)


def _check_turn(values: dict[str, Any]) -> None:
    """TURN servers need credentials from one source: browsers refuse a turn: URL without."""
    static = bool(values["turn_username"] or values["turn_credential"])
    if values["turn_secret"] and static:
        raise SettingsError("KUMPUL_TURN_SECRET: set it or KUMPUL_TURN_USERNAME and "
                            "KUMPUL_TURN_CREDENTIAL, not both")
    if static and not (values["turn_username"] and values["turn_credential"]):
        raise SettingsError("KUMPUL_TURN_USERNAME and KUMPUL_TURN_CREDENTIAL go together")
    turn = [url for url in values["ice_servers"] or () if url.startswith("turn")]
    if turn and not (values["turn_secret"] or static):
        raise SettingsError(f"KUMPUL_ICE_SERVERS: {turn[0]} needs credentials: set "
                            "KUMPUL_TURN_SECRET (or KUMPUL_TURN_USERNAME and "
                            "KUMPUL_TURN_CREDENTIAL)")


def load_for_command() -> Settings:
    """Settings for a command-line entry point: a bad value ends it with status 2."""
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"kumpul: bad setting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _embedded_secret(data_dir: Path) -> str:
    """A random secret kept beside the embedded data, created once with owner-only access."""
    path = data_dir / "secret_key"
    if path.is_file():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    tmp = data_dir / f".secret_key.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret)
    try:
        os.link(tmp, path)  # atomic: a whole file or none
    except FileExistsError:  # another process of this install made it first
        secret = path.read_text().strip()
    finally:
        tmp.unlink()
    return secret
