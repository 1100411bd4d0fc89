#!/usr/bin/env python3
"""A postback receiver for blitfs tests (Python 3.11 standard library only).

It listens on a loopback port, answers every POST that is not under
/_receiver/ as a postback, and records each one: when it arrived, its
headers and body, whether the X-Blitfs-Signature verifies with the secret
(--secret or $RECEIVER_SECRET) and whether X-Blitfs-Timestamp is within
five minutes of now, and what it answered.

Control, under /_receiver/:
  GET  /_receiver/record[?accepted=1]  {"deliveries": [...], "mode": ...}
  POST /_receiver/reset                forget the record
  POST /_receiver/mode {"mode": M, "for_s": N}
       M = ok       answer 200
           fail500  answer 500
           fail429  answer 429 with Retry-After: 1
           status   answer {"status": S} (e.g. 404)
           hang     read the request, never answer; close it when the
                    mode ends
           down     close the listening socket (connections are refused)
                    and open it again on the same port after N seconds
       A mode with for_s goes back to ok after N seconds.

"receiver listening on http://127.0.0.1:PORT/" goes to stderr when it is
ready, and again after each "down" ends.
"""

import argparse
import hashlib
import hmac
import http.server
import json
import os
import sys
import threading
import time
import urllib.parse

WINDOW_S = 300
MODES = ("ok", "fail500", "fail429", "status", "hang", "down")


def log(msg):
    print(f"receiver: {msg}", file=sys.stderr, flush=True)


class State:
    """What the receiver was told and what it saw, under one lock."""

    def __init__(self, secret):
        self.lock = threading.Lock()
        self.secret = secret.encode() if secret else None
        self.deliveries = []
        self.seen_ids = set()
        self.mode = "ok"
        self.status = 200
        self.until = None
        self.down_for = 0.0
        self.server = None

    def current(self):
        """The mode in force now, expiring a timed one."""
        with self.lock:
            if self.until is not None and time.time() >= self.until:
                self.mode, self.until = "ok", None
            return self.mode, self.status

    def set_mode(self, mode, for_s, status):
        with self.lock:
            self.mode = mode
            self.status = status
            self.until = time.time() + for_s if for_s else None

    def verify(self, ts, body, sig):
        """(signature_ok, timestamp_ok); signature_ok None without a secret."""
        try:
            ts_ok = abs(time.time() - int(ts)) <= WINDOW_S
        except (TypeError, ValueError):
            ts_ok = False
        if self.secret is None:
            return None, ts_ok
        mac = hmac.new(self.secret, (ts or "").encode() + b"." + body,
                       hashlib.sha256)
        want = "sha256=" + mac.hexdigest()
        return hmac.compare_digest(want, sig or ""), ts_ok

    def record(self, rec):
        with self.lock:
            rec["n"] = len(self.deliveries)
            rec["duplicate"] = (rec["answered"] == 200 and
                                rec["delivery_id"] in self.seen_ids)
            if rec["answered"] == 200:
                self.seen_ids.add(rec["delivery_id"])
            self.deliveries.append(rec)

    def snapshot(self, accepted):
        with self.lock:
            d = [r for r in self.deliveries
                 if not accepted or r["answered"] == 200]
            return {"deliveries": d, "mode": self.mode}

    def reset(self):
        with self.lock:
            self.deliveries = []
            self.seen_ids = set()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set in main

    def log_message(self, format, *args):
        pass

    def reply(self, code, obj=None, headers=()):
        data = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/_receiver/record":
            self.reply(404, {"error": "not found"})
            return
        q = urllib.parse.parse_qs(url.query)
        self.reply(200, self.state.snapshot(q.get("accepted") == ["1"]))

    def do_POST(self):
        body = self.read_body()
        if self.path.startswith("/_receiver/"):
            self.control(body)
        else:
            self.postback(body)

    def control(self, body):
        if self.path == "/_receiver/reset":
            self.state.reset()
            self.reply(200, {"ok": True})
            return
        if self.path != "/_receiver/mode":
            self.reply(404, {"error": "not found"})
            return
        try:
            req = json.loads(body)
            mode = req["mode"]
            for_s = float(req.get("for_s") or 0)
            status = int(req.get("status") or 200)
        except (ValueError, KeyError, TypeError) as e:
            self.reply(400, {"error": f"bad mode request: {e}"})
            return
        if mode not in MODES:
            self.reply(400, {"error": f"unknown mode {mode!r}"})
            return
        self.reply(200, {"ok": True})
        log(f"mode {mode}" + (f" for {for_s:g} s" if for_s else ""))
        if mode == "down":
            self.go_down(for_s)
        else:
            self.state.set_mode(mode, for_s, status)

    def go_down(self, for_s):
        """Stop serving; main() reopens the port after for_s seconds."""
        self.close_connection = True
        self.state.down_for = for_s
        threading.Thread(target=self.state.server.shutdown,
                         daemon=True).start()

    def postback(self, body):
        mode, status = self.state.current()
        h = self.headers
        sig_ok, ts_ok = self.state.verify(h.get("X-Blitfs-Timestamp"), body,
                                          h.get("X-Blitfs-Signature"))
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        answered = {"ok": 200, "fail500": 500, "fail429": 429,
                    "status": status, "hang": "hang"}[mode]
        rec = {
            "t": time.time(),
            "path": self.path,
            "headers": dict(h.items()),
            "body": parsed,
            "raw": None if parsed is not None else body.decode("latin-1"),
            "delivery_id": h.get("X-Blitfs-Delivery"),
            "signature_ok": sig_ok,
            "timestamp_ok": ts_ok,
            "answered": answered,
        }
        self.state.record(rec)
        key = parsed.get("key") if isinstance(parsed, dict) else None
        log(f"POST {self.path} id={rec['delivery_id']} key={key!r} "
            f"sig={sig_ok} -> {answered}")
        if mode == "hang":
            self.hang()
        elif answered == 429:
            self.reply(429, {"error": "slow down"}, [("Retry-After", "1")])
        else:
            self.reply(answered, {"ok": answered == 200})

    def hang(self):
        """Hold the request until the mode changes, then drop it."""
        while self.state.current()[0] == "hang":
            time.sleep(0.1)
        self.close_connection = True


class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0,
                    help="0: any free port (printed when ready)")
    ap.add_argument("--secret", default=os.environ.get("RECEIVER_SECRET"),
                    help="HMAC key (default: $RECEIVER_SECRET)")
    args = ap.parse_args()

    state = State(args.secret)
    Handler.state = state
    port = args.port
    while True:
        srv = Server((args.host, port), Handler)
        port = srv.server_address[1]
        state.server = srv
        print(f"receiver listening on http://{args.host}:{port}/",
              file=sys.stderr, flush=True)
        srv.serve_forever(poll_interval=0.1)
        srv.server_close()
        log(f"down for {state.down_for:g} s")
        time.sleep(state.down_for)
        state.set_mode("ok", 0, 200)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
