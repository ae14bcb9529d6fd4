"""A webhook receiver for the end-to-end tests, as a Kino customer would write one: it
verifies every delivery with the `standardwebhooks` library (PyPI), never with Kino's code.

    python webhook_receiver.py            prints "listening <port>" once it listens

Every POST to /hook/<name> is recorded (headers and body exactly as received) and answered
by the name's behaviour, which the test sets beforehand:

    PUT /behaviour/<name>  {"statuses": [500, 500, 500], "then": 200,
                            "delay_ms": 0, "location": null}

`statuses` answer the first requests in order, `then` every later one; `delay_ms` holds
each answer back (a hanging endpoint); `location` is sent as a Location header (a
redirect). Unknown names answer 200 at once.

    GET /log/<name>?secret=whsec_...&secret=whsec_...

returns every request to <name>, oldest first, each with what the library said of it:
{"id", "timestamp", "type", "data", "verified", "error", "received_at", "status"} where
`verified` is true when one of the given secrets verifies it.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

LOCK = threading.Lock()
REQUESTS = {}  # name -> [(headers, body, received_at, status)]
BEHAVIOURS = {}  # name -> dict


def verify(secrets, headers, body):
    errors = []
    for secret in secrets:
        try:
            Webhook(secret).verify(body, headers)
            return True, None
        except WebhookVerificationError as e:
            errors.append(str(e))
    return False, "; ".join(errors) or "no secret given"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_PUT(self):
        name = self.path.removeprefix("/behaviour/")
        with LOCK:
            BEHAVIOURS[name] = json.loads(self.body())
        self.reply(204)

    def do_POST(self):
        if not self.path.startswith("/hook/"):
            return self.reply(404)
        name = self.path.removeprefix("/hook/")
        body = self.body()
        headers = {k: v for k, v in self.headers.items()}
        with LOCK:
            behaviour = BEHAVIOURS.get(name, {})
            seen = REQUESTS.setdefault(name, [])
            statuses = behaviour.get("statuses", [])
            status = statuses[len(seen)] if len(seen) < len(statuses) else behaviour.get("then", 200)
            seen.append((headers, body, time.time(), status))
        delay = behaviour.get("delay_ms", 0)
        if delay:
            time.sleep(delay / 1000)
        extra = {"Location": behaviour["location"]} if behaviour.get("location") else {}
        try:
            self.reply(status, b'{"received": true}', extra)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the sender gave up waiting (a timeout test)

    def do_GET(self):
        url = urlparse(self.path)
        if not url.path.startswith("/log/"):
            return self.reply(404)
        name = url.path.removeprefix("/log/")
        secrets = parse_qs(url.query).get("secret", [])
        with LOCK:
            seen = list(REQUESTS.get(name, []))
        log = []
        for headers, body, received_at, status in seen:
            verified, error = verify(secrets, headers, body)
            lower = {k.lower(): v for k, v in headers.items()}
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = {}
            log.append({
                "id": lower.get("webhook-id"),
                "timestamp": lower.get("webhook-timestamp"),
                "signature": lower.get("webhook-signature"),
                "type": parsed.get("type"),
                "event_timestamp": parsed.get("timestamp"),
                "data": parsed.get("data"),
                "verified": verified,
                "error": error,
                "received_at": received_at,
                "status": status,
            })
        self.reply(200, json.dumps(log).encode(), {"Content-Type": "application/json"})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
