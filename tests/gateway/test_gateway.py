#!/usr/bin/env python3
"""Self-test of the fault-injecting gateway (tests/gateway/gateway.py).

Starts real servers on loopback ports -- moto's server (plain, and once
more through tests/moto-server.py with SigV4 checking on), s3rver when
tests/s3rver is installed -- puts the gateway in front of them and checks
pass-through, every fault of the scenario, the visibility delay, the record
and the control API, with http.client, raw sockets and /usr/bin/aws.

    python3 tests/gateway/test_gateway.py [-k PATTERN]

One line per test (PASS, FAIL, ERROR or SKIP), details of failures after
them, exit status 1 if anything failed.  Everything it starts is stopped.
"""
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GATEWAY = HERE / "gateway.py"
AWS = "/usr/bin/aws"
S3RVER = REPO / "tests/s3rver/node_modules/s3rver/bin/s3rver.js"
TMP = Path(tempfile.mkdtemp(prefix="gateway-test."))

# A SigV4-shaped Authorization header: plain moto checks no signature but
# refuses anonymous object reads, and the gateway reads the region from it.
FAKE_AUTH = ("AWS4-HMAC-SHA256 Credential=test/20240101/{}/s3/aws4_request, "
             "SignedHeaders=host, Signature=0")


# ---------------------------------------------------------------- servers

def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(cmd, name, env=None):
    """Start a server process with its output in a log file under TMP."""
    log = open(TMP / f"{name}.log", "wb")
    return subprocess.Popen([str(c) for c in cmd], stdout=log,
                            stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def stop(proc):
    """SIGTERM the process we started, SIGKILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_http(url, proc, timeout=60):
    """Wait until URL answers with any HTTP status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited before answering {url}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"no answer from {url}")


def start_moto(auth=False):
    """moto's server; with auth, through tests/moto-server.py, checking
    signatures after 4 unsigned requests (moto_bootstrap_iam's budget)."""
    port = free_port()
    env = dict(os.environ)
    env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
    if auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "4"
        cmd = [sys.executable, REPO / "tests/moto-server.py"]
    elif shutil.which("moto_server"):
        cmd = [shutil.which("moto_server")]
    else:
        cmd = [sys.executable, "-m", "moto.server"]
    proc = start(cmd + ["-H", "127.0.0.1", "-p", port],
                 "moto-auth" if auth else "moto", env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/moto-api/", proc)
    except RuntimeError:
        stop(proc)
        raise
    return proc, url


def start_gateway(backend, *args, control=True, name="gateway"):
    """The gateway on kernel-picked ports; returns (proc, url, control_url)."""
    cmd = [sys.executable, GATEWAY, "--listen", "127.0.0.1:0",
           "--backend", backend, *args]
    if control:
        cmd += ["--control", "127.0.0.1:0"]
    proc = start(cmd, name)
    log = TMP / f"{name}.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        match = re.search(r"gateway listening on (\S+)(?: control (\S+))?",
                          log.read_text(errors="replace"))
        if match:
            return proc, match.group(1), match.group(2) or match.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError("gateway did not start: " + log.read_text())


def hostport(url):
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    return host, int(port)


# ---------------------------------------------------------------- clients

def s3(base, method, path, body=None, headers=None, region="us-east-1",
       conn=None):
    """One request through http.client; returns (status, headers, body)."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(*hostport(base), timeout=60)
    hdrs = {"Authorization": FAKE_AUTH.format(region)} if region else {}
    if body is not None:
        hdrs["Content-Type"] = "application/octet-stream"
    hdrs.update(headers or {})
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, \
            data
    finally:
        if own:
            conn.close()


def control(base, method, path, obj=None):
    """A control API call; returns (status, decoded JSON)."""
    data = None if obj is None else json.dumps(obj).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def aws(endpoint, *args, region="us-east-1", key="test", secret="test"):
    """Run /usr/bin/aws s3api (or iam) isolated from the user's config."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret,
               AWS_DEFAULT_REGION=region, AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="",
               AWS_EC2_METADATA_DISABLED="true", AWS_MAX_ATTEMPTS="1")
    return subprocess.run([AWS, "--endpoint-url", endpoint, "--region",
                           region, *args], env=env, capture_output=True,
                          text=True, timeout=120)


def xml_code(body):
    match = re.search(rb"<Code>(.*?)</Code>", body)
    return match.group(1).decode() if match else None


def raw_exchange(address, data, read_until=b"\r\n\r\n"):
    """Send raw bytes on a new socket; return it and what came back up to
    and including `read_until`."""
    sock = socket.create_connection(address, timeout=30)
    sock.sendall(data)
    got = b""
    while read_until not in got:
        piece = sock.recv(65536)
        if not piece:
            break
        got += piece
    return sock, got


def read_response(sock, already=b""):
    """Read one Content-Length response from a raw socket."""
    data = already
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(rest) < length:
        rest += sock.recv(65536)
    return head, rest[:length]


def vm_hwm_kib(pid):
    """Peak resident memory of a process, in KiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", text).group(1))


# ------------------------------------------------------------------ tests

class GatewayTest(unittest.TestCase):
    """Against plain moto: pass-through, faults, visibility, record, API."""

    BUCKET = "gwtest"
    OTHER = "gwother"

    @classmethod
    def setUpClass(cls):
        cls.moto, cls.backend = start_moto()
        try:
            cls.gw, cls.url, cls.ctl = start_gateway(
                cls.backend, "--record", TMP / "record.jsonl")
        except RuntimeError:
            stop(cls.moto)
            raise
        for bucket in (cls.BUCKET, cls.OTHER):
            assert s3(cls.url, "PUT", f"/{bucket}")[0] == 200

    @classmethod
    def tearDownClass(cls):
        stop(cls.gw)
        stop(cls.moto)

    def setUp(self):
        self.assertEqual(control(self.ctl, "POST", "/_gateway/reset")[0], 200)

    def scenario(self, obj):
        status, body = control(self.ctl, "POST", "/_gateway/scenario", obj)
        self.assertEqual(status, 200, body)

    def record(self, since=None):
        path = "/_gateway/record" + (f"?since={since}" if since else "")
        return control(self.ctl, "GET", path)[1]

    def req(self, method, key, body=None, **kwargs):
        return s3(self.url, method, f"/{self.BUCKET}/{key}", body, **kwargs)

    # -- pass-through

    def test_passthrough_http(self):
        data = os.urandom((3 << 20) + 12345)
        md5 = hashlib.md5(data).hexdigest()
        self.assertEqual(self.req("PUT", "pass/one.bin", data)[0], 200)
        status, headers, body = self.req("GET", "pass/one.bin")
        self.assertEqual((status, body), (200, data))
        self.assertEqual(headers["etag"].strip('"'), md5)
        status, headers, body = self.req("HEAD", "pass/one.bin")
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(int(headers["content-length"]), len(data))
        status, _, body = s3(self.url, "GET",
                             f"/{self.BUCKET}?list-type=2&prefix=pass%2F")
        self.assertEqual(status, 200)
        self.assertIn(b"<Key>pass/one.bin</Key>", body)
        self.assertIn(self.req("DELETE", "pass/one.bin")[0], (200, 204))
        self.assertEqual(self.req("GET", "pass/one.bin")[0], 404)
        put = [e for e in self.record() if e["method"] == "PUT"][0]
        self.assertEqual((put["bytes_in"], put["key"], put["class"]),
                         (len(data), "pass/one.bin", "write"))

    def test_passthrough_aws_cli(self):
        src, dst = TMP / "cli.src", TMP / "cli.dst"
        src.write_bytes(os.urandom(700_000))
        key = "cli/a file+x.bin"
        run = aws(self.url, "s3api", "put-object", "--bucket", self.BUCKET,
                  "--key", key, "--body", str(src))
        self.assertEqual(run.returncode, 0, run.stderr)
        run = aws(self.url, "s3api", "get-object", "--bucket", self.BUCKET,
                  "--key", key, str(dst))
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(src.read_bytes(), dst.read_bytes())
        run = aws(self.url, "s3api", "head-object", "--bucket", self.BUCKET,
                  "--key", key)
        self.assertEqual(json.loads(run.stdout)["ContentLength"], 700_000)
        run = aws(self.url, "s3api", "list-objects-v2", "--bucket",
                  self.BUCKET, "--prefix", "cli/", "--delimiter", "/")
        keys = [c["Key"] for c in json.loads(run.stdout)["Contents"]]
        self.assertEqual(keys, [key])
        run = aws(self.url, "s3api", "delete-object", "--bucket",
                  self.BUCKET, "--key", key)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn(key, [e["key"] for e in self.record()])

    def test_keepalive_one_connection(self):
        conn = http.client.HTTPConnection(*hostport(self.url), timeout=30)
        self.assertEqual(self.req("PUT", "ka/x", b"x" * 10, conn=conn)[0],
                         200)
        first = conn.sock
        for i in range(10):
            status, _, body = self.req("GET", "ka/x", conn=conn)
            self.assertEqual((status, body), (200, b"x" * 10))
            self.assertEqual(self.req("GET", f"ka/missing{i}",
                                      conn=conn)[0], 404)
        self.assertIs(conn.sock, first, "the client connection was closed")
        conn.close()

    def test_expect_100_continue(self):
        body = os.urandom(200_000)
        head = (f"PUT /{self.BUCKET}/expect HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: {FAKE_AUTH.format('us-east-1')}\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Content-Type: application/octet-stream\r\n"
                "Expect: 100-continue\r\n\r\n").encode()
        sock, got = raw_exchange(hostport(self.url), head)
        self.assertTrue(got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"))
        sock.sendall(body)
        status_line, _ = read_response(sock, got[25:])
        self.assertTrue(status_line.startswith(b"HTTP/1.1 200"))
        sock.sendall(f"GET /{self.BUCKET}/expect HTTP/1.1\r\nHost: x\r\n"
                     f"Authorization: {FAKE_AUTH.format('us-east-1')}\r\n"
                     "\r\n".encode())
        _, data = read_response(sock)
        self.assertEqual(data, body)
        sock.close()
        # A fault answers at once, without 100, and closes the connection.
        self.scenario({"write_rate": 0, "write_burst": 0})
        sock, got = raw_exchange(hostport(self.url), head)
        _, data = read_response(sock, got)
        self.assertIn(b"Connection: close", got)
        self.assertEqual(xml_code(data), "SlowDown")
        sock.close()

    def test_large_body_streams(self):
        data = os.urandom(64 << 20)
        before = vm_hwm_kib(self.gw.pid)
        self.assertEqual(self.req("PUT", "big/64m", data)[0], 200)
        conn = http.client.HTTPConnection(*hostport(self.url), timeout=120)
        conn.request("GET", f"/{self.BUCKET}/big/64m", headers={
            "Authorization": FAKE_AUTH.format("us-east-1")})
        resp, digest = conn.getresponse(), hashlib.md5()
        while piece := resp.read(1 << 20):
            digest.update(piece)
        conn.close()
        self.assertEqual(digest.hexdigest(), hashlib.md5(data).hexdigest())
        peak = vm_hwm_kib(self.gw.pid)
        self.assertLess(peak - before, 24 << 10,
                        f"gateway peak RSS grew {before} -> {peak} KiB")
        self.req("DELETE", "big/64m")

    # -- faults

    def test_slowdown_past_rate(self):
        self.scenario({"write_rate": 2, "write_burst": 2})
        statuses = [self.req("PUT", f"rate/{i}", b"r")[0] for i in range(6)]
        self.assertEqual(statuses[:2], [200, 200])
        self.assertEqual(statuses[2:], [503] * 4)
        status, _, body = self.req("PUT", "rate/x", b"r")
        self.assertEqual(xml_code(body), "SlowDown")
        self.assertIn(b"<Message>Please reduce your request rate.</Message>",
                      body)
        self.assertEqual(self.req("GET", "rate/0")[0], 200, "reads pass")
        time.sleep(1.05)                          # two more tokens
        self.assertEqual(self.req("PUT", "rate/late", b"r")[0], 200)
        slow = [e for e in self.record() if e["fault"] == "slowdown"]
        self.assertEqual(len(slow), 5)
        self.assertTrue(all(e["status"] == 503 and e["class"] == "write"
                            for e in slow))
        self.assertEqual(control(self.ctl, "GET", "/_gateway/record")[0], 200)

    def test_reset_share(self):
        self.assertEqual(self.req("PUT", "reset/k", b"before")[0], 200)
        self.scenario({"reset_share": 1})
        with self.assertRaises(ConnectionResetError):
            self.req("PUT", "reset/k", b"12345")
        self.assertEqual(self.req("GET", "reset/k")[2], b"before",
                         "reads pass; the reset PUT never reached S3")
        self.scenario({"reset_share": 1, "reset_writes_only": False})
        with self.assertRaises(ConnectionResetError):
            self.req("GET", "reset/k")
        resets = [e for e in self.record() if e["fault"] == "reset"]
        self.assertEqual([(e["method"], e["status"], e["bytes_in"])
                          for e in resets], [("PUT", 0, 5), ("GET", 0, 0)])

    def test_error500_share_is_seeded(self):
        def run():
            self.scenario({"error500_share": 0.5, "seed": 7})
            return [self.req("GET", "e500")[0] for _ in range(20)]
        self.req("PUT", "e500", b"x")
        first = run()
        self.assertEqual(set(first), {200, 500})
        self.assertEqual(run(), first, "same seed, same faults")
        self.scenario({"error500_share": 1})
        status, _, body = self.req("PUT", "e500", b"y")
        self.assertEqual((status, xml_code(body)), (500, "InternalError"))
        self.assertEqual(self.record()[-1]["fault"], "error500")

    def test_redirect301_wrong_region(self):
        self.req("PUT", "region/k", b"data")
        self.scenario({"bucket_regions": {self.BUCKET: "eu-west-1"}})
        status, headers, body = self.req("GET", "region/k")
        self.assertEqual(status, 301)
        self.assertEqual(headers["x-amz-bucket-region"], "eu-west-1")
        self.assertEqual(xml_code(body), "PermanentRedirect")
        self.assertIn(f"<Bucket>{self.BUCKET}</Bucket>".encode(), body)
        endpoint = self.url.split("://")[1]
        self.assertIn(f"<Endpoint>{endpoint}</Endpoint>".encode(), body)
        status, _, body = self.req("GET", "region/k", region="eu-west-1")
        self.assertEqual((status, body), (200, b"data"))
        self.assertEqual(s3(self.url, "GET", f"/{self.OTHER}?list-type=2")[0],
                         200, "other buckets are not redirected")
        run = aws(self.url, "s3api", "head-object", "--bucket", self.BUCKET,
                  "--key", "region/k")
        self.assertEqual(run.returncode, 0, "aws follows: " + run.stderr)
        seen = [(e["region"], e["fault"]) for e in self.record()
                if e["bucket"] == self.BUCKET]
        self.assertEqual(seen, [("us-east-1", None),
                                ("us-east-1", "redirect301"),
                                ("eu-west-1", None),
                                ("us-east-1", "redirect301"),
                                ("eu-west-1", None)])

    def test_redirect307(self):
        self.scenario({"redirect307_share": 1})
        target = f"/{self.BUCKET}/r307/k?x-id=GetObject"
        status, headers, body = s3(self.url, "GET", target)
        self.assertEqual(status, 307)
        self.assertEqual(headers["location"], self.url + target)
        self.assertEqual(xml_code(body), "TemporaryRedirect")
        self.assertEqual(self.record()[-1]["fault"], "redirect307")

    def test_forbidden_bucket(self):
        self.scenario({"forbidden_buckets": [self.OTHER]})
        status, _, body = s3(self.url, "PUT", f"/{self.OTHER}/k", b"x")
        self.assertEqual((status, xml_code(body)), (403, "AccessDenied"))
        self.assertEqual(self.req("PUT", "k", b"x")[0], 200)
        self.assertEqual(self.record()[0]["fault"], "forbidden")

    def test_delay(self):
        self.req("PUT", "delay/k", b"x")
        self.scenario({"delay_ms": 400})
        began = time.monotonic()
        self.assertEqual(self.req("GET", "delay/k")[0], 200)
        self.assertGreaterEqual(time.monotonic() - began, 0.4)
        self.scenario({"delay_ms": 400, "delay_share": 0})
        began = time.monotonic()
        self.req("GET", "delay/k")
        self.assertLess(time.monotonic() - began, 0.3)

    def test_down_closes_the_port(self):
        keep = http.client.HTTPConnection(*hostport(self.url), timeout=10)
        self.assertEqual(self.req("GET", "down", conn=keep)[0], 404)
        self.scenario({"down": True})
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(hostport(self.url), timeout=5)
        with self.assertRaises(ConnectionResetError):
            self.req("GET", "down", conn=keep)
        self.assertEqual(control(self.ctl, "GET", "/_gateway/health")[1]
                         ["down"], True)
        self.scenario({"down": False})
        self.assertEqual(self.req("GET", "down")[0], 404)
        self.assertEqual([e["fault"] for e in self.record()], [None, "down",
                                                               None])

    def test_down_without_control_port_resets(self):
        proc, url, _ = start_gateway(self.backend, control=False,
                                     name="gateway-nocontrol")
        try:
            control(url, "POST", "/_gateway/scenario", {"down": True})
            with self.assertRaises(ConnectionResetError):
                s3(url, "GET", f"/{self.BUCKET}/x")
            control(url, "POST", "/_gateway/scenario", {"down": False})
            self.assertEqual(s3(url, "GET", f"/{self.BUCKET}/x")[0], 404)
        finally:
            stop(proc)

    # -- visibility delay

    def listing(self, prefix):
        status, _, body = s3(self.url, "GET",
                             f"/{self.BUCKET}?list-type=2&prefix={prefix}")
        self.assertEqual(status, 200)
        return body

    def test_visibility_new_key(self):
        self.scenario({"visibility_delay_s": 1.5})
        self.assertEqual(self.req("PUT", "visnew/k", b"fresh")[0], 200)
        written = time.monotonic()
        status, _, body = self.req("GET", "visnew/k")
        self.assertEqual((status, xml_code(body)), (404, "NoSuchKey"))
        self.assertEqual(self.req("HEAD", "visnew/k")[0], 404)
        body = self.listing("visnew/")
        self.assertNotIn(b"visnew/k", body)
        self.assertIn(b"<KeyCount>0</KeyCount>", body)
        time.sleep(max(0.0, written + 1.6 - time.monotonic()))
        self.assertEqual(self.req("GET", "visnew/k")[2], b"fresh")
        self.assertIn(b"<Key>visnew/k</Key>", self.listing("visnew/"))
        faults = [e["fault"] for e in self.record() if e["key"] == "visnew/k"]
        self.assertEqual(faults, [None, "invisible", "invisible", None])

    def test_visibility_overwrite_shows_old(self):
        old, new = b"old version " * 10, b"the new one"
        self.scenario({"visibility_delay_s": 1.5})
        self.req("PUT", "vis/over", old)
        time.sleep(1.6)
        self.assertEqual(self.req("GET", "vis/over")[2], old)  # kept
        self.listing("vis/over")                                # kept
        self.assertEqual(self.req("PUT", "vis/over", new)[0], 200)
        written = time.monotonic()
        old_etag = hashlib.md5(old).hexdigest()
        status, headers, body = self.req("GET", "vis/over")
        self.assertEqual((status, body), (200, old))
        self.assertEqual(headers["etag"].strip('"'), old_etag)
        status, headers, _ = self.req("HEAD", "vis/over")
        self.assertEqual(int(headers["content-length"]), len(old))
        status, headers, body = self.req("GET", "vis/over",
                                         headers={"Range": "bytes=4-10"})
        self.assertEqual((status, body), (206, old[4:11]))
        self.assertEqual(headers["content-range"], f"bytes 4-10/{len(old)}")
        listing = self.listing("vis/over")
        self.assertIn(old_etag.encode(), listing)
        self.assertIn(f"<Size>{len(old)}</Size>".encode(), listing)
        time.sleep(max(0.0, written + 1.6 - time.monotonic()))
        self.assertEqual(self.req("GET", "vis/over")[2], new)

    def test_visibility_multipart_complete(self):
        self.scenario({"visibility_delay_s": 1.5})
        _, _, body = self.req("POST", "vis/mpu?uploads", b"")
        upload = re.search(rb"<UploadId>(.*?)</UploadId>", body).group(1)
        upload = upload.decode()
        part = os.urandom(100_000)
        status, headers, _ = self.req(
            "PUT", f"vis/mpu?partNumber=1&uploadId={upload}", part)
        self.assertEqual(status, 200)
        self.assertEqual(self.req("GET", "vis/mpu")[0], 404)  # not yet
        done = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                f"<ETag>{headers['etag']}</ETag></Part>"
                "</CompleteMultipartUpload>").encode()
        status, _, body = self.req("POST", f"vis/mpu?uploadId={upload}",
                                   done)
        self.assertEqual(status, 200, body)
        written = time.monotonic()
        self.assertEqual(self.req("GET", "vis/mpu")[0], 404)
        time.sleep(max(0.0, written + 1.6 - time.monotonic()))
        self.assertEqual(self.req("GET", "vis/mpu")[2], part)

    # -- record and control API

    def test_record_fields_and_since(self):
        self.req("PUT", "rec/caf%C3%A9", b"abc")
        self.req("GET", "rec/caf%C3%A9")
        self.req("GET", "rec/caf%C3%A9?x-id=GetObject")
        entries = self.record()
        self.assertEqual(len(entries), 3)
        first = entries[0]
        self.assertEqual(set(first), {"t", "method", "bucket", "key", "query",
                                      "status", "fault", "bytes_in",
                                      "region", "class"})
        self.assertEqual((first["bucket"], first["key"], first["bytes_in"],
                          first["region"], first["class"], first["status"]),
                         (self.BUCKET, "rec/café", 3, "us-east-1", "write",
                          200))
        self.assertEqual(entries[2]["query"], "x-id=GetObject")
        self.assertLessEqual(abs(first["t"] - time.time()), 10)
        later = self.record(since=first["t"])
        self.assertEqual([e["method"] for e in later], ["GET", "GET"])
        lines = (TMP / "record.jsonl").read_text().splitlines()
        self.assertEqual(json.loads(lines[-1]), entries[-1])
        control(self.ctl, "POST", "/_gateway/record/clear")
        self.assertEqual(self.record(), [])

    def test_virtual_hosted_bucket(self):
        host = f"{self.BUCKET}.localhost:{hostport(self.url)[1]}"
        s3(self.url, "GET", "/some/key", headers={"Host": host})
        entry = self.record()[-1]
        self.assertEqual((entry["bucket"], entry["key"]),
                         (self.BUCKET, "some/key"))

    def test_control_api(self):
        scenario = {"write_rate": 5, "seed": 3, "bucket_regions": {"b": "x"}}
        self.assertEqual(control(self.ctl, "POST", "/_gateway/scenario",
                                 scenario), (200, scenario))
        self.assertEqual(control(self.ctl, "GET", "/_gateway/scenario"),
                         (200, scenario))
        for bad in ({"no_such_key": 1}, {"reset_share": 2},
                    {"down": "yes"}, {"forbidden_buckets": "b"}):
            status, body = control(self.ctl, "POST", "/_gateway/scenario",
                                   bad)
            self.assertEqual(status, 400, bad)
            self.assertIn("error", body)
        self.assertEqual(control(self.ctl, "GET", "/_gateway/scenario")[1],
                         scenario, "a refused scenario changes nothing")
        self.assertEqual(control(self.url, "GET", "/_gateway/nope")[0], 404)
        control(self.url, "POST", "/_gateway/reset")
        self.assertEqual(control(self.url, "GET", "/_gateway/scenario"),
                         (200, {}))
        self.assertEqual(self.record(), [], "control calls are not recorded")


class ByteExactTest(unittest.TestCase):
    """The gateway changes nothing on the way: a raw socket stands in for
    the backend here, to compare bytes, not to play S3."""

    def setUp(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.received = []
        port = self.listener.getsockname()[1]
        threading.Thread(target=self.backend, daemon=True).start()
        self.gw, self.url, _ = start_gateway(f"http://127.0.0.1:{port}",
                                             name="gateway-raw")

    def tearDown(self):
        stop(self.gw)
        self.listener.close()

    def backend(self):
        """Take each request whole, answer it chunked and close."""
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while not self.complete(data):
                    data += conn.recv(65536)
                self.received.append(data)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Back: 1\r\n"
                             b"Transfer-Encoding: chunked\r\n"
                             b"Connection: close\r\n\r\n"
                             b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")

    @staticmethod
    def complete(data):
        head, sep, rest = data.partition(b"\r\n\r\n")
        if b"chunked" in head.lower():
            return rest.endswith(b"0\r\n\r\n")
        return bool(sep)

    def test_request_bytes_pass_untouched(self):
        request = (b"PUT /bkt/a%2Fb+c%20d%C3%A9?prefix=x%2Fy&delimiter=%2F"
                   b"&empty= HTTP/1.1\r\n"
                   b"Host: 127.0.0.1:1\r\n"
                   b"authorization: AWS4-HMAC-SHA256 Credential=k/2024/"
                   b"eu-central-1/s3/aws4_request, Signature=1\r\n"
                   b"X-Amz-Meta-Dup: one\r\n"
                   b"x-amz-meta-DUP:  two  \r\n"
                   b"X-Amz-Meta-Latin: caf\xe9\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n"
                   b"4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n")
        get = b"GET /bkt/k HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n"
        sock = socket.create_connection(hostport(self.url), timeout=30)
        for data in (request, get):             # one connection, kept alive
            sock.sendall(data)
            resp = http.client.HTTPResponse(sock)
            resp.begin()
            self.assertEqual((resp.status, resp.read()), (200, b"hello world"))
            self.assertEqual(resp.getheader("X-Back"), "1")
            self.assertIsNone(resp.getheader("Connection"))
        sock.close()
        self.assertEqual(self.received, [request, get])
        entry = control(self.url, "GET", "/_gateway/record")[1][0]
        self.assertEqual((entry["key"], entry["query"], entry["region"],
                          entry["bytes_in"]),
                         ("a/b+c dé", "prefix=x%2Fy&delimiter=%2F&empty=",
                          "eu-central-1", 7))


@unittest.skipUnless(S3RVER.exists() and shutil.which("node"),
                     "s3rver not installed (tests/install-deps.sh)")
class ChunkedS3rverTest(unittest.TestCase):
    """A chunked upload reaches a real server whole (moto 5.2.1 stores
    chunked bodies wrongly, s3rver does not)."""

    def test_chunked_put(self):
        port = free_port()
        data_dir = TMP / "s3rver-data"
        data_dir.mkdir(exist_ok=True)
        server = start(["node", S3RVER, "-d", data_dir, "-a", "127.0.0.1",
                        "-p", port], "s3rver")
        gw = None
        try:
            wait_http(f"http://127.0.0.1:{port}/", server)
            gw, url, _ = start_gateway(f"http://127.0.0.1:{port}",
                                       name="gateway-s3rver")
            s3(url, "PUT", "/chunky", region=None)      # s3rver: anonymous
            data = os.urandom(3_000_000)
            pieces = (data[i:i + 65536] for i in range(0, len(data), 65536))
            conn = http.client.HTTPConnection(*hostport(url), timeout=30)
            conn.request("PUT", "/chunky/k", body=pieces, headers={
                "Content-Type": "application/octet-stream"},
                encode_chunked=True)
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)
            status, _, body = s3(url, "GET", "/chunky/k", region=None,
                                 conn=conn)
            self.assertEqual((status, body), (200, data))
            entry = control(url, "GET", "/_gateway/record")[1][1]
            self.assertEqual(entry["bytes_in"], len(data))
        finally:
            stop(gw)
            stop(server)


class SigV4MotoTest(unittest.TestCase):
    """moto checking signatures behind the gateway: a request signed for
    the gateway's host passes, a wrong secret fails, a 301 is re-signed."""

    @classmethod
    def setUpClass(cls):
        cls.moto, cls.backend = start_moto(auth=True)
        cls.gw = None
        try:
            cls.key, cls.secret = cls.bootstrap_iam()
            cls.gw, cls.url, cls.ctl = start_gateway(cls.backend,
                                                     name="gateway-auth")
        except Exception:
            stop(cls.gw)
            stop(cls.moto)
            raise

    @classmethod
    def tearDownClass(cls):
        stop(cls.gw)
        stop(cls.moto)

    @classmethod
    def bootstrap_iam(cls):
        """The four unsigned-allowed calls of servers.sh moto_bootstrap_iam,
        straight to moto: a user, an admin policy, its access key."""
        def iam(*args):
            run = aws(cls.backend, "--output", "text", "iam", *args,
                      key="bootstrap", secret="bootstrap")
            if run.returncode:
                raise RuntimeError("IAM bootstrap: " + run.stderr)
            return run.stdout.strip()
        policy = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"}]})
        iam("create-user", "--user-name", "gw-test")
        arn = iam("create-policy", "--policy-name", "gw-admin",
                  "--policy-document", policy, "--query", "Policy.Arn")
        iam("attach-user-policy", "--user-name", "gw-test", "--policy-arn",
            arn)
        keys = iam("create-access-key", "--user-name", "gw-test", "--query",
                   "AccessKey.[AccessKeyId,SecretAccessKey]")
        return keys.split()

    def s3api(self, *args, secret=None, region="us-east-1"):
        return aws(self.url, "s3api", *args, key=self.key,
                   secret=secret or self.secret, region=region)

    def test_signed_requests_pass_and_bad_secret_fails(self):
        run = self.s3api("create-bucket", "--bucket", "gwsig")
        self.assertEqual(run.returncode, 0, run.stderr)
        src, dst = TMP / "sig.src", TMP / "sig.dst"
        src.write_bytes(os.urandom(300_000))
        run = self.s3api("put-object", "--bucket", "gwsig", "--key",
                         "dir/sig test.bin", "--body", str(src))
        self.assertEqual(run.returncode, 0, run.stderr)
        run = self.s3api("list-objects-v2", "--bucket", "gwsig", "--prefix",
                         "dir/", "--delimiter", "/")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual([c["Key"] for c in json.loads(run.stdout)
                          ["Contents"]], ["dir/sig test.bin"])
        run = self.s3api("get-object", "--bucket", "gwsig", "--key",
                         "dir/sig test.bin", str(dst))
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(src.read_bytes(), dst.read_bytes())
        run = self.s3api("list-objects-v2", "--bucket", "gwsig",
                         secret="not-the-secret")
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("SignatureDoesNotMatch", run.stderr)

    def test_region_redirect_is_resigned(self):
        self.s3api("create-bucket", "--bucket", "gwsig2")
        control(self.ctl, "POST", "/_gateway/scenario",
                {"bucket_regions": {"gwsig2": "eu-west-1"}})
        try:
            run = self.s3api("list-objects-v2", "--bucket", "gwsig2")
            self.assertEqual(run.returncode, 0, run.stderr)
        finally:
            control(self.ctl, "POST", "/_gateway/reset")


# ----------------------------------------------------------------- runner

class LineResult(unittest.TestResult):
    """One line per test as it ends; tracebacks are printed at the end."""

    def startTest(self, test):
        self.began = time.monotonic()
        super().startTest(test)

    def _line(self, word, test, note=""):
        name = getattr(test, "_testMethodName", str(test))
        took = time.monotonic() - getattr(self, "began", time.monotonic())
        print(f"{word:5} {name} ({took:.1f}s){note}", flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line("PASS", test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line("FAIL", test, f": {err[1]}".splitlines()[0])

    def addError(self, test, err):
        super().addError(test, err)
        self._line("ERROR", test, f": {err[1]!r}".splitlines()[0])

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line("SKIP", test, f": {reason}")


def main():
    loader = unittest.TestLoader()
    if "-k" in sys.argv:
        loader.testNamePatterns = [f"*{sys.argv[sys.argv.index('-k') + 1]}*"]
    suite = loader.loadTestsFromModule(sys.modules[__name__])
    result, began = LineResult(), time.monotonic()
    suite.run(result)
    for test, trace in result.failures + result.errors:
        print(f"\n--- {test}\n{trace}", file=sys.stderr)
    bad = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - bad - len(result.skipped)} passed, {bad} "
          f"failed, {len(result.skipped)} skipped in "
          f"{time.monotonic() - began:.0f}s (logs in {TMP})")
    if bad == 0:
        shutil.rmtree(TMP, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
