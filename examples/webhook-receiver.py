#!/usr/bin/env python3
"""A minimal receiver for Lorikeet webhooks (Python 3 standard library only).

Lorikeet POSTs every integration event to `<url>?event=<type>` with a JSON body
(ChirpStack v4 integration JSON; schemas in schemas/events/). With a signing
secret it adds

    X-Lorikeet-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

This server checks that signature over the raw body bytes before it parses any
JSON, rejects a `t` more than --window seconds (default 300) away from its own
clock (so a captured request cannot be replayed later), then prints one line per
event and, with --out, appends the event to a JSON Lines file. With --legacy it
checks the old form instead (`sha256=<hex HMAC-SHA256(secret, raw body)>`, sent by
servers with `[webhook] signature_version = "legacy"`; no replay protection).

Answers: 401 for a missing, wrong or stale signature (when a secret is
configured), 400 for a body that is not a JSON object, 413 for a body over 1 MiB,
200 otherwise.
Lorikeet retries anything but a 2xx, so a receiver should answer 200 as soon as
it has the event and do slow work elsewhere.

    WEBHOOK_SECRET='a long random string' ./webhook-receiver.py --out events.jsonl
    ./webhook-receiver.py --port 9000 --secret 'a long random string'
    ./webhook-receiver.py                      # no secret: accepts unsigned events

Then point the application's HTTP integration at http://127.0.0.1:8090/ with the
same signingSecret (see docs/api.md, "Webhook (HTTP integration)").
"""

import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SIGNATURE_HEADER = "X-Lorikeet-Signature"
MAX_BODY = 1 << 20  # bytes; Lorikeet's events are far smaller
REPLAY_WINDOW_S = 300  # how far `t` may be from now, either way


def expected_v1(secret: bytes, t: str, body: bytes) -> str:
    """The hex HMAC Lorikeet sends as `v1` for `body` signed at `t` (as sent)."""
    return hmac.new(secret, t.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def check_v1(secret: bytes, body: bytes, header, now: float, window: int):
    """None when `header` (t=<unix>,v1=<hex>) signs `body` and `t` is within
    `window` seconds of `now`; else why not."""
    if header is None:
        return "missing signature"
    t, candidates = None, []
    for part in header.strip().split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return "malformed signature"
        if key == "t":
            if t is not None or not value.isdigit() or not value.isascii() or len(value) > 18:
                return "malformed signature"
            t = value
        elif key == "v1":
            candidates.append(value.lower())
        # other keys: a later version's entries, ignored
    if t is None or not candidates:
        return "malformed signature"
    expected = expected_v1(secret, t, body).encode("ascii")
    # Header values come in as latin-1, so any byte survives and is compared, not rejected.
    if not any(hmac.compare_digest(expected, c.encode("latin-1", errors="replace")) for c in candidates):
        return "bad signature"
    if abs(now - int(t)) > window:
        return "stale signature"
    return None


def expected_legacy(secret: bytes, body: bytes) -> str:
    """The legacy header value for `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def check_legacy(secret: bytes, body: bytes, header):
    """None when `header` is the legacy signature (sha256=<hex>) of `body`."""
    if header is None:
        return "missing signature"
    given = header.strip()
    if not given.startswith("sha256="):
        return "malformed signature"
    given = "sha256=" + given[len("sha256="):].lower()
    if hmac.compare_digest(expected_legacy(secret, body).encode("ascii"), given.encode("latin-1", errors="replace")):
        return None
    return "bad signature"


def summary(event_type: str, event: dict) -> str:
    """One line about an event: its type, devEui, fCnt for up, deduplicationId."""
    info = event.get("deviceInfo")
    dev_eui = info.get("devEui", "-") if isinstance(info, dict) else "-"
    parts = [f"{event_type:<6}", f"devEui={dev_eui}"]
    if event_type == "up":
        parts.append(f"fCnt={event.get('fCnt', '-')}")
        if "fPort" in event:
            parts.append(f"fPort={event['fPort']}")
    if "deduplicationId" in event:
        parts.append(f"deduplicationId={event['deduplicationId']}")
    elif "downlinkId" in event:  # txack has no deduplicationId
        parts.append(f"downlinkId={event['downlinkId']}")
    if event_type == "log":
        parts.append(f"{event.get('level', '-')} {event.get('code', '-')}: {event.get('description', '')}")
    return " ".join(parts)


class Receiver(BaseHTTPRequestHandler):
    server_version = "lorikeet-webhook-receiver/1"
    # Set by main():
    secret = None  # bytes, or None to accept unsigned events
    legacy = False  # check the old body-only form instead of t=…,v1=…
    window = REPLAY_WINDOW_S
    out = None  # an open file for JSON Lines, or None
    lock = threading.Lock()

    def do_POST(self):
        length = self.headers.get("Content-Length")
        if length is None:
            return self.answer(411, "a Content-Length is required")
        try:
            length = int(length)
        except ValueError:
            return self.answer(400, "bad Content-Length")
        if length < 0:
            return self.answer(400, "bad Content-Length")
        if length > MAX_BODY:
            return self.answer(413, f"body over {MAX_BODY} bytes")
        body = self.rfile.read(length)

        # Verify over the exact bytes received, before parsing anything.
        if self.secret is not None:
            header = self.headers.get(SIGNATURE_HEADER)
            if self.legacy:
                why = check_legacy(self.secret, body, header)
            else:
                why = check_v1(self.secret, body, header, time.time(), self.window)
            if why is not None:
                self.note(f"rejected: {why} ({SIGNATURE_HEADER}) from {self.client_address[0]}")
                return self.answer(401, why)

        try:
            event = json.loads(body)
        except (UnicodeDecodeError, ValueError) as e:
            self.note(f"rejected: body is not JSON ({e})")
            return self.answer(400, "body is not JSON")
        if not isinstance(event, dict):
            self.note("rejected: body is not a JSON object")
            return self.answer(400, "body is not a JSON object")

        query = parse_qs(urlsplit(self.path).query)
        event_type = query.get("event", ["?"])[0]
        received_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self.lock:
            print(f"{received_at} {summary(event_type, event)}", flush=True)
            if self.out is not None:
                line = {"receivedAt": received_at, "event": event_type, "body": event}
                self.out.write(json.dumps(line, separators=(",", ":")) + "\n")
                self.out.flush()
        return self.answer(200, None)

    def answer(self, status: int, error):
        payload = json.dumps({"error": error} if error else {"status": "ok"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def note(self, message: str):
        with self.lock:
            print(message, file=sys.stderr, flush=True)

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        # The default access log goes to stderr for every request; our own lines say more.
        pass


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Receive and verify Lorikeet webhooks.")
    p.add_argument("--port", type=int, default=8090, help="port to listen on (default 8090)")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--secret",
        default=os.environ.get("WEBHOOK_SECRET"),
        help="signing secret (default: $WEBHOOK_SECRET; none: accept unsigned events)",
    )
    p.add_argument(
        "--window",
        type=int,
        default=REPLAY_WINDOW_S,
        help=f"reject a signature timestamp further than this from now, in seconds (default {REPLAY_WINDOW_S})",
    )
    p.add_argument(
        "--legacy",
        action="store_true",
        help='check the old body-only form (server set to signature_version = "legacy"); no replay protection',
    )
    p.add_argument("--out", help="append each event to this JSON Lines file")
    args = p.parse_args(argv)

    Receiver.secret = args.secret.encode("utf-8") if args.secret else None
    Receiver.legacy = args.legacy
    Receiver.window = args.window
    if args.out:
        Receiver.out = open(args.out, "a", encoding="utf-8")
    server = ThreadingHTTPServer((args.bind, args.port), Receiver)
    host, port = server.server_address[:2]
    if Receiver.secret is None:
        print(f"listening on http://{host}:{port}/ WITHOUT a secret: unsigned events are accepted", file=sys.stderr)
    else:
        print(f"listening on http://{host}:{port}/, checking {SIGNATURE_HEADER}", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if Receiver.out is not None:
            Receiver.out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
