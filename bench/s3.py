#!/usr/bin/python3
"""s3.py - the harness's own small S3 client: stdlib only, SigV4 signed.

Why not the aws CLI for everything: each CLI call costs about a second
of Python start-up on this machine, which would be the resolution of every
"everything is in the bucket" time (a W1 upload takes a few seconds).
This client keeps one connection open and polls in milliseconds.  The
aws CLI still has the last word: run.sh confirms every workload's result
with `aws s3api list-objects-v2` afterwards (keys and sizes).

    s3.py mb BUCKET                     create a bucket
    s3.py wait BUCKET MANIFEST T0 LIMIT
        poll until every "KEY SIZE" line of MANIFEST is in BUCKET with
        that size; print seconds from T0 (epoch seconds) to the end of
        the listing that showed the last one.  Exit 1 on timeout (and
        print what is missing to stderr).
    s3.py count BUCKET                  number of keys in the bucket
    s3.py ping                          exit 0 once the server answers
    s3.py w4 MODE DIR_OR_BUCKET FILE N OUT
        read-after-write probe, N rounds; MODE "fs" writes FILE's bytes
        to DIR/w4/rI.jpg and reads them straight back through the file
        system; MODE "s3" PUTs them to the bucket and GETs them back
        (the raw upload anchor).  Writes one "write_s read_s" line per
        round to OUT; fails if a read-back differs.

Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; endpoint:
S3_ENDPOINT (path-style addressing); region: AWS_REGION or us-east-1.
"""
import datetime
import hashlib
import hmac
import http.client
import os
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET



def local(tag):
    """An XML tag without its namespace: s3rver answers in one of its
    own (http://doc.s3.amazonaws.com/...), AWS in another."""
    return tag.rsplit("}", 1)[-1]


def child(elem, name):
    for c in elem:
        if local(c.tag) == name:
            return c.text
    return None


def quote(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


class S3:
    """One keep-alive HTTP connection to a path-style S3 endpoint."""

    def __init__(self):
        url = urllib.parse.urlsplit(os.environ["S3_ENDPOINT"])
        self.host = url.netloc
        self.https = url.scheme == "https"
        self.region = os.environ.get("AWS_REGION", "us-east-1")
        self.key = os.environ["AWS_ACCESS_KEY_ID"]
        self.secret = os.environ["AWS_SECRET_ACCESS_KEY"]
        self.conn = None

    def _connect(self):
        cls = (http.client.HTTPSConnection if self.https
               else http.client.HTTPConnection)
        self.conn = cls(self.host, timeout=60)

    def _sign(self, method, path, query, body):
        now = datetime.datetime.now(datetime.timezone.utc)
        amzdate = now.strftime("%Y%m%dT%H%M%SZ")
        day = amzdate[:8]
        payload = hashlib.sha256(body).hexdigest()
        cq = "&".join(f"{quote(k)}={quote(v)}"
                      for k, v in sorted(query.items()))
        headers = {"host": self.host, "x-amz-date": amzdate,
                   "x-amz-content-sha256": payload}
        names = sorted(headers)
        creq = "\n".join([method, quote(path, "/-_.~"), cq] +
                         [f"{n}:{headers[n]}" for n in names] +
                         ["", ";".join(names), payload])
        scope = f"{day}/{self.region}/s3/aws4_request"
        sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope,
                         hashlib.sha256(creq.encode()).hexdigest()])
        k = ("AWS4" + self.secret).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={sig}")
        return headers

    def request(self, method, path, query=None, body=b""):
        """(status, body bytes); one reconnect on a dropped connection."""
        query = query or {}
        for attempt in (0, 1):
            if self.conn is None:
                self._connect()
            headers = self._sign(method, path, query, body)
            url = quote(path, "/-_.~")
            if query:
                url += "?" + "&".join(f"{quote(k)}={quote(v)}"
                                      for k, v in sorted(query.items()))
            try:
                self.conn.request(method, url, body=body or None,
                                  headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def list(self, bucket, prefix=""):
        """{key: size} of every object under prefix, all pages."""
        out, token = {}, None
        while True:
            q = {"list-type": "2", "prefix": prefix}
            if token:
                q["continuation-token"] = token
            for attempt in range(5):
                status, data = self.request("GET", f"/{bucket}", q)
                # s3rver answers 500 now and then when a listing walks
                # past an object being written: ask again
                if status < 500:
                    break
                time.sleep(0.2)
            if status != 200:
                raise RuntimeError(f"list {bucket}/{prefix}: {status} "
                                   f"{data[:200]!r}")
            root = ET.fromstring(data)
            for c in root:
                if local(c.tag) == "Contents":
                    out[child(c, "Key")] = int(child(c, "Size"))
            if child(root, "IsTruncated") != "true":
                return out
            token = child(root, "NextContinuationToken")


def cmd_mb(s3, bucket):
    status, data = s3.request("PUT", f"/{bucket}")
    if status != 200:
        sys.exit(f"s3.py mb {bucket}: {status} {data[:200]!r}")


def cmd_wait(s3, bucket, manifest, t0, limit):
    """Poll the bucket until it holds the manifest; started together with
    the writer, so that every contender is watched the same way.

    The keys are grouped by their directory (everything up to the last
    '/').  A step lists one directory not yet seen complete, round robin;
    a complete one is dropped (nothing here deletes) and the next is
    listed at once, so the directories that completed while the poller
    looked elsewhere are cleared back to back at the end.  After a
    listing that found its directory incomplete the poller pauses, 0.1 s
    when the manifest is one directory, 0.5 s when it is many (W3's 100,
    each listed in turn): s3rver is a single Node.js thread, and a poller
    listing without a pause would take a good part of it from the
    uploads being measured.  So the time reported (the end of the listing
    that showed the last missing object) is late by at most about one
    pause plus the listings of the directories that completed last; on
    a W3 upload of a minute or more, half a second is under 1 %.  A
    listing that fails (s3rver, busy, sometimes answers 500 even after
    the retries) counts as incomplete.
    """
    want = {}
    with open(manifest) as f:
        for line in f:
            key, size = line.rstrip("\n").rsplit(" ", 1)
            d = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
            want.setdefault(d, {})[key] = int(size)
    pending = sorted(want)
    pause = 0.1 if len(pending) == 1 else 0.5
    deadline = t0 + limit
    i = 0
    while pending:
        i %= len(pending)
        d = pending[i]
        try:
            have = s3.list(bucket, d)
        except (RuntimeError, OSError, ET.ParseError) as e:
            print(f"s3.py wait: {e}", file=sys.stderr)
            have = {}
        if all(have.get(k) == n for k, n in want[d].items()):
            del pending[i]
            continue
        i += 1
        if time.time() > deadline:
            for d in pending:
                have = s3.list(bucket, d)
                bad = [k for k, n in want[d].items() if have.get(k) != n]
                print(f"s3.py wait: {d or '/'}: {len(bad)} of "
                      f"{len(want[d])} missing or short, e.g. {bad[:3]}",
                      file=sys.stderr)
            return 1
        time.sleep(pause)
    print(f"{time.time() - t0:.3f}")
    return 0


def cmd_w4(mode, where, src, rounds, out):
    with open(src, "rb") as f:
        data = f.read()
    s3 = S3() if mode == "s3" else None
    lines = []
    if mode == "fs":
        os.makedirs(os.path.join(where, "w4"), exist_ok=True)
    for i in range(rounds):
        name = f"w4/r{i:03d}.jpg"
        t0 = time.perf_counter()
        if mode == "fs":
            # write(2) and close(2): what a pipeline stage does
            with open(os.path.join(where, name), "wb") as f:
                f.write(data)
        else:
            status, body = s3.request("PUT", f"/{where}/{name}", body=data)
            if status != 200:
                sys.exit(f"PUT {name}: {status} {body[:200]!r}")
        t1 = time.perf_counter()
        if mode == "fs":
            with open(os.path.join(where, name), "rb") as f:
                back = f.read()
        else:
            status, back = s3.request("GET", f"/{where}/{name}")
            if status != 200:
                sys.exit(f"GET {name}: {status}")
        t2 = time.perf_counter()
        if back != data:
            sys.exit(f"s3.py w4: read-back of {name} differs "
                     f"({len(back)} bytes, want {len(data)})")
        lines.append(f"{t1 - t0:.6f} {t2 - t1:.6f}\n")
    with open(out, "w") as f:
        f.writelines(lines)


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    cmd = args[0]
    if cmd == "mb":
        cmd_mb(S3(), args[1])
    elif cmd == "wait":
        sys.exit(cmd_wait(S3(), args[1], args[2], float(args[3]),
                          float(args[4])))
    elif cmd == "ping":
        try:
            status, _ = S3().request("GET", "/")
        except OSError:
            sys.exit(1)
        sys.exit(0 if status == 200 else 1)
    elif cmd == "count":
        print(len(S3().list(args[1])))
    elif cmd == "w4":
        cmd_w4(args[1], args[2], args[3], int(args[4]), args[5])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
