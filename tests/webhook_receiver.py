"""A webhook receiver of an integrator's own, run as a process: it verifies every request
with the `standardwebhooks` verifier against the secrets in a file, and writes one JSON
line per request to a log.

`python -m tests.webhook_receiver PORT LOG SECRETS`. Paths: `/hook` answers 204 when the
signature verifies with one of the secrets (400 otherwise); `/fail` always answers 503;
`/redirect` answers 307 to `/hook`; `/slow` answers after 5 s.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def verified_by(secrets: list[str], body: bytes, headers: dict[str, str]) -> list[int]:
    """Which of the secrets (by index) verify the request on their own."""
    found = []
    for n, secret in enumerate(secrets):
        try:
            Webhook(secret).verify(body, headers)
        except WebhookVerificationError:
            continue
        found.append(n)
    return found


def handler(log: Path, secrets_file: Path) -> type[BaseHTTPRequestHandler]:
    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            secrets = [s for s in secrets_file.read_text().split() if s] \
                if secrets_file.exists() else []
            ok = verified_by(secrets, body, headers)
            with log.open("a") as out:
                out.write(json.dumps({"path": self.path, "headers": headers,
                                      "body": body.decode(), "verified_by": ok,
                                      "peer": self.client_address[0]}) + "\n")
            if self.path == "/fail":
                self._answer(503, b"receiver is down for maintenance")
            elif self.path == "/redirect":
                self.send_response(307)
                self.send_header("Location", "/hook")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path == "/slow":
                time.sleep(5)
                self._answer(204, b"")
            else:
                self._answer(204 if ok else 400, b"" if ok else b"bad signature")

        def _answer(self, status: int, text: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Receiver


def main() -> None:
    port, log, secrets = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    ThreadingHTTPServer(("127.0.0.1", port), handler(log, secrets)).serve_forever()


if __name__ == "__main__":
    main()
