"""A webhook receiver for tests/webhooks.rs, verifying every request with the official Standard
Webhooks library (PyPI `standardwebhooks`, installed by scripts/setup).

Usage: python webhook_receiver.py LOG SECRETS
  LOG      each request is appended as one JSON line: path, the webhook-* headers, the body,
           the library's verdict with the endpoint's secret and with a tampered copy of it, and
           the status answered.
  SECRETS  a JSON file {path: secret}, re-read on every request (the test writes it once it
           knows a secret).
Paths starting with /flaky answer 500 to the first two attempts of each message, then 200;
every other path answers 200. Prints its port, then serves until killed.
"""

import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

LOG, SECRETS = sys.argv[1], sys.argv[2]
LOCK = threading.Lock()
ATTEMPTS = {}


def verdict(secret, body, headers):
    try:
        Webhook(secret).verify(body, headers)
        return "valid"
    except WebhookVerificationError as err:
        return f"refused: {err}"


def tampered(secret):
    """The same secret with one bit of its key flipped."""
    key = bytearray(base64.b64decode(secret[len("whsec_"):] + "=="))
    key[0] ^= 1
    return "whsec_" + base64.b64encode(bytes(key)).decode()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = dict(self.headers.items())
        try:
            with open(SECRETS, encoding="utf-8") as file:
                secret = json.load(file).get(self.path)
        except FileNotFoundError:
            secret = None
        with LOCK:
            key = (self.path, headers.get("webhook-id"))
            ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
            fail = self.path.startswith("/flaky") and ATTEMPTS[key] <= 2
            status = 500 if fail else 200
            record = {
                "path": self.path,
                "webhook_id": headers.get("webhook-id"),
                "webhook_timestamp": headers.get("webhook-timestamp"),
                "webhook_signature": headers.get("webhook-signature"),
                "content_type": headers.get("content-type"),
                "body": body.decode("utf-8"),
                "verified": verdict(secret, body, headers) if secret else "no secret",
                "tampered": verdict(tampered(secret), body, headers) if secret else "no secret",
                "answered": status,
                "received_at": time.time(),
            }
            with open(LOG, "a", encoding="utf-8") as file:
                file.write(json.dumps(record) + "\n")
        answer = b"try again later" if fail else b"ok"
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
print(server.server_address[1], flush=True)
server.serve_forever()
