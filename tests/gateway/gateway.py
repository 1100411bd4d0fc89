#!/usr/bin/env python3
"""Fault-injecting HTTP gateway between blitfs and a local S3 server.

The end-to-end tests put this gateway in front of moto's server (with its
SigV4 check on) or s3rver, point blitfs at the gateway, and then make S3
misbehave on purpose: throttle writes, reset connections, answer 500s,
redirect, refuse a bucket, answer late, or hide fresh writes for a while.
Every request is recorded, so a test can assert what the client did (its
request rate, its retries, its re-signing after a redirect).

    python3 tests/gateway/gateway.py --listen 127.0.0.1:PORT \\
        --backend http://127.0.0.1:PORT2 [--control 127.0.0.1:PORT3] \\
        [--scenario JSON|@FILE] [--record FILE] [--verbose] \\
        [--exit-with-parent]

PORT 0 lets the kernel pick; the line "gateway listening on URL [control
URL] backend URL" on stderr tells the address once the gateway is ready.
SIGTERM and SIGINT end it with exit status 0; so does the end of the
process that started it, with --exit-with-parent (a test that dies
without stopping its gateway leaves none behind).

Forwarding
    Requests pass to the backend untouched: the request line with the raw
    request target (never re-quoted), every header line exactly as received
    (Host and Authorization included, so the backend checks the client's
    signature over the gateway's host:port), and the body streamed in 1 MiB
    pieces, Content-Length or chunked (the chunk framing is copied as is).
    'Expect: 100-continue' is answered by the gateway itself once it has
    decided to read the body.  Responses stream back with their status and
    headers; only the hop-by-hop ones (Connection, Keep-Alive,
    Transfer-Encoding...) are the gateway's own, since the client's
    keep-alive connection is the gateway's and each forwarded request opens
    a fresh backend connection (werkzeug closes after every response, Node
    drops idle ones after 5 s: reusing them would race with that).

Control API (on the listening port, and on --control if given; never
forwarded, never recorded, never faulted)
    GET  /_gateway/scenario        the current scenario (JSON object)
    POST /_gateway/scenario        replace it with the JSON body; 400 on an
                                   unknown key or a bad value
    POST /_gateway/reset           scenario, record and memory cleared
    GET  /_gateway/record[?since=T]  recorded requests, a JSON array in
                                   arrival order (only those with t > T)
    POST /_gateway/record/clear    forget the record
    GET  /_gateway/health          {"ok": true, "down": ..., "backend": ...}

Scenario keys (all optional; an empty object means plain forwarding)
    write_rate, write_burst   token bucket per bucket for write-class
        requests (PUT, POST, DELETE; COPY is a PUT): write_rate tokens a
        second, write_burst at most (default max(1, write_rate); 0 lets
        no write through), full at the start; a write finding no token
        gets 503 SlowDown.
    reset_share, reset_writes_only (default true)   that share of requests
        (of writes only, by default) is read whole and then answered with a
        TCP reset (SO_LINGER 0, close).
    error500_share        that share gets 500 InternalError.
    corrupt_share         that share of the writes with a body (not
        chunked) reaches the backend with its first byte changed (recorded with fault
        "corrupt"): the backend should refuse it by its Content-MD5.
    bucket_regions        {"bucket": "eu-west-1"}: a request for the bucket
        whose credential scope (Authorization header or X-Amz-Credential)
        names another region gets 301 PermanentRedirect with
        x-amz-bucket-region; unsigned requests pass.
    redirect307_share     that share gets 307 TemporaryRedirect, Location
        the same URL on the gateway.
    forbidden_buckets     ["b"]: 403 AccessDenied for those buckets.
    delay_ms, delay_share (default 1)   forwarded responses of that share
        are held this long before their first byte (the backend has acted
        on the request by then: a slow answer, not a slow server).
    seed                  seed of the random draws, for repeatable runs
        (draws happen in arrival order: repeatable for a sequential client).
    down                  true: S3 is unreachable.  With --control the
        listening socket is closed (connect() gets ECONNREFUSED) until down
        is set false through the control port; without it every request is
        answered with a reset (control requests excepted).  Requests on
        connections already open are reset either way (recorded with fault
        "down"); refused connections leave no record.
    visibility_delay_s    D: a key whose PUT, COPY or CompleteMultipartUpload
        succeeded less than D seconds ago is invisible, see below.
    Checks run in this order, the first that hits wins: down, forbidden,
    region, SlowDown, 307, 500, reset, corrupt, visibility; faulted
    requests are not forwarded, except corrupted ones.  Setting a scenario refills the token buckets and reseeds.

Visibility delay, and its limits
    The gateway cannot make the backend serve an old version, nor sign a
    request of its own (moto checks signatures), so it only shows what it
    has itself seen pass while D > 0:
    - it keeps, per key, the last successful GET (200, whole object, at most
      8 MiB) or HEAD it forwarded, and the key's last <Contents> entry in a
      listing;
    - during the window a GET or HEAD of the key gets that old response if
      there is one (a single 'bytes=' range is cut from a stored body),
      otherwise 404 NoSuchKey; a GET with only a HEAD stored gets 404 too;
    - listings (ListObjects, ListObjectsV2) show the old entry's ETag, Size
      and LastModified if one was seen, otherwise drop the key's <Contents>
      and lower KeyCount.  CommonPrefixes are left alone: a new key under a
      new prefix shows its prefix at once;
    - a second write inside the window keeps the old version; a version
      nobody read or listed after it became visible is unknown, so the next
      overwrite hides the key instead of showing it;
    - conditional headers are not evaluated on old responses, requests with
      a versionId or a subresource are forwarded, and DeleteObjects (POST
      ?delete) does not end a window (a plain DELETE does);
    - memory is bounded (100,000 keys, 256 MiB of bodies, oldest forgotten
      first: a forgotten key becomes visible early).

Record
    One JSON object per request, kept in memory (the last 1,000,000) and,
    with --record FILE, appended to FILE as JSON lines: t (unix time when
    the request line arrived), method, bucket, key (decoded), query (raw),
    status (sent to the client; 0 for a reset or a client gone mid-body),
    fault (null, "slowdown", "reset", "error500", "redirect301",
    "redirect307", "forbidden", "invisible" or "down"), bytes_in (body bytes
    read from the client), region (of the credential scope, or null), class
    ("write" or "read").  An entry is recorded before the response's first
    byte, so it is there once the client has its answer.

Addressing: path-style (bucket = first path segment) as the tests use;
virtual-hosted Host headers (bucket.localhost, bucket.s3.REGION.amazonaws.com
and the like) are understood too.  Python 3.11 standard library only.
"""
import argparse
import collections
import dataclasses
import email.utils
import html
import http.client
import json
import os
import random
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid

CHUNK = 1 << 20                  # body pieces streamed in either direction
MAX_LINE = 65536                 # request line or one header line
MAX_HEADERS = 200
CONTROL_BODY_MAX = 1 << 20
CLIENT_IDLE_TIMEOUT = 300        # seconds a client connection may sit idle
BACKEND_TIMEOUT = 600            # a CompleteMultipartUpload may take long
LISTING_MAX = 32 << 20           # larger listing bodies are not rewritten
RECORD_MAX = 1_000_000

# Headers about this hop, not the message: the gateway writes its own.
HOP_HEADERS = frozenset({"connection", "keep-alive", "proxy-connection",
                         "transfer-encoding", "content-length", "te",
                         "trailer", "upgrade"})

FAULT_NAMES = ("slowdown", "reset", "error500", "redirect301",
               "redirect307", "forbidden", "invisible", "down")

# fault -> (status, reason, S3 error code, message), as S3 words them.
ERROR_FAULTS = {
    "slowdown": (503, "Slow Down", "SlowDown",
                 "Please reduce your request rate."),
    "error500": (500, "Internal Server Error", "InternalError",
                 "We encountered an internal error. Please try again."),
    "forbidden": (403, "Forbidden", "AccessDenied", "Access Denied"),
    "redirect301": (301, "Moved Permanently", "PermanentRedirect",
                    "The bucket you are attempting to access must be "
                    "addressed using the specified endpoint. Please send "
                    "all future requests to this endpoint."),
    "redirect307": (307, "Temporary Redirect", "TemporaryRedirect",
                    "Please re-send this request to the specified temporary "
                    "endpoint. Continue to use the original request "
                    "endpoint for future requests."),
}


class BadRequest(Exception):
    """The client sent something that is not HTTP/1.x we can parse."""


class ClientGone(Exception):
    """The client closed or broke its connection in the middle of a body."""


# ---------------------------------------------------------------- requests

@dataclasses.dataclass
class Request:
    """One request head as received; `raw_head` is forwarded byte for byte."""
    method: str
    target: str                  # raw request target (latin-1 decoded)
    version: str
    raw_head: bytes              # the header lines, without the blank line
    headers: dict                # lower-case name -> value (repeats joined)
    arrived: float

    def header(self, name, default=""):
        return self.headers.get(name, default)

    def wants_keepalive(self):
        """HTTP/1.1 keeps the connection unless told; 1.0 only if asked."""
        tokens = self.header("connection").lower()
        if self.version == "HTTP/1.1":
            return "close" not in tokens
        return "keep-alive" in tokens


def _readline(rfile):
    """One line of at most MAX_LINE bytes; b'' at end of stream."""
    try:
        line = rfile.readline(MAX_LINE + 1)
    except OSError as exc:
        raise ClientGone(str(exc)) from exc
    if len(line) > MAX_LINE:
        raise BadRequest("line too long")
    return line


def parse_header_lines(lines):
    """Header lines -> {lower-case name: value}; folded lines are joined."""
    headers, last = {}, None
    for raw in lines:
        text = raw.decode("latin-1").rstrip("\r\n")
        if text[:1] in (" ", "\t") and last:
            headers[last] += " " + text.strip()
            continue
        name, sep, value = text.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest("bad header line")
        last = name.lower()
        value = value.strip()
        headers[last] = headers[last] + "," + value if last in headers \
            else value
    return headers


def read_request(rfile):
    """Read one request head; None when the client closed between requests."""
    line = _readline(rfile)
    while line in (b"\r\n", b"\n"):          # RFC 9112 2.2: tolerate
        line = _readline(rfile)
    if not line:
        return None
    arrived = time.time()
    parts = line.rstrip(b"\r\n").split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise BadRequest("bad request line")
    method, target, version = (p.decode("latin-1") for p in parts)
    lines = []
    while True:
        line = _readline(rfile)
        if not line:
            raise ClientGone("closed inside a request head")
        if line in (b"\r\n", b"\n"):
            break
        lines.append(line)
        if len(lines) > MAX_HEADERS:
            raise BadRequest("too many headers")
    return Request(method, target, version, b"".join(lines),
                   parse_header_lines(lines), arrived)


class Body:
    """The request body, read lazily from the client.

    Iterating yields the raw bytes to forward (chunk framing included, so a
    chunked body reaches the backend exactly as sent) and counts the payload
    bytes in `received`; `done` tells whether all of it has been read.
    """

    def __init__(self, rfile, req):
        self.rfile = rfile
        self.chunked = "chunked" in req.header("transfer-encoding").lower()
        self.remaining = 0
        if not self.chunked:
            try:
                self.remaining = int(req.header("content-length", "0") or 0)
            except ValueError:
                raise BadRequest("bad Content-Length") from None
            if self.remaining < 0:
                raise BadRequest("bad Content-Length")
        self.done = not self.chunked and self.remaining == 0
        self.received = 0

    @property
    def present(self):
        return self.chunked or self.remaining > 0 or self.received > 0

    def _read(self, size):
        try:
            data = self.rfile.read(size)
        except OSError as exc:
            raise ClientGone(str(exc)) from exc
        if not data:
            raise ClientGone("closed inside a body")
        return data

    def _line(self):
        line = _readline(self.rfile)
        if not line.endswith(b"\n"):
            raise ClientGone("closed inside chunk framing")
        return line

    def __iter__(self):
        if self.done:
            return
        if self.chunked:
            yield from self._chunks()
        else:
            while self.remaining:
                data = self._read(min(self.remaining, CHUNK))
                self.remaining -= len(data)
                self.received += len(data)
                yield data
        self.done = True

    def _chunks(self):
        """Copy chunked framing verbatim: size lines, data, CRLFs, trailers."""
        while True:
            line = self._line()
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            yield line
            if size == 0:
                while True:                  # trailers up to the blank line
                    line = self._line()
                    yield line
                    if line in (b"\r\n", b"\n"):
                        return
            while size:
                data = self._read(min(size, CHUNK))
                size -= len(data)
                self.received += len(data)
                yield data
            yield self._line()

    def drain(self):
        for _ in self:
            pass

    def read_all(self, limit):
        """The decoded payload, for the control API's small JSON bodies."""
        if self.chunked:
            raise BadRequest("chunked control bodies are not supported")
        if self.remaining > limit:
            raise BadRequest("control body too large")
        return b"".join(self)


# ------------------------------------------------------------ S3 semantics

CREDENTIAL_RE = re.compile(r"Credential=([^,\s]+)")
VHOST_RE = re.compile(r"^(.+?)\.(?:s3[.-]|localhost$)")
PLAIN_QUERY = frozenset({"x-id"})
LIST_QUERY = frozenset({"list-type", "prefix", "delimiter", "marker",
                        "max-keys", "continuation-token", "start-after",
                        "encoding-type", "fetch-owner", "x-id"})


def credential_region(headers, query):
    """Region of the SigV4 credential scope (header or presigned URL)."""
    match = CREDENTIAL_RE.search(headers.get("authorization", ""))
    if match:
        credential = match.group(1)
    else:
        params = urllib.parse.parse_qs(query)
        credential = (params.get("X-Amz-Credential") or [""])[0]
    parts = credential.split("/")
    return parts[2] if len(parts) >= 5 else None


def virtual_bucket(host):
    """Bucket named by a virtual-hosted Host header, or None (path style)."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if not name or name == "localhost" or name.startswith("[") \
            or re.fullmatch(r"[\d.]+", name):
        return None
    match = VHOST_RE.match(name)
    return match.group(1) if match else None


@dataclasses.dataclass
class S3Op:
    """What an S3 request addresses and which kind of operation it is."""
    bucket: str
    key: str
    query: str
    region: str | None
    write: bool
    kind: str        # put, copy, complete, delete, read, list or other

    @classmethod
    def parse(cls, req):
        target = req.target
        host = req.header("host")
        if "://" in target:                  # absolute form
            parts = urllib.parse.urlsplit(target)
            host, target = parts.netloc, parts.path + (
                "?" + parts.query if parts.query else "")
        path, _, query = target.partition("?")
        bucket = virtual_bucket(host)
        if bucket is not None:
            key = urllib.parse.unquote(path[1:])
        else:
            first, _, rest = path[1:].partition("/")
            bucket = urllib.parse.unquote(first)
            key = urllib.parse.unquote(rest)
        write = req.method in ("PUT", "POST", "DELETE")
        names = {n for n, _ in urllib.parse.parse_qsl(
            query, keep_blank_values=True)}
        kind = cls._kind(req, bucket, key, names)
        return cls(bucket, key, query, credential_region(req.headers, query),
                   write, kind)

    @staticmethod
    def _kind(req, bucket, key, names):
        """Name the operations the visibility delay has to know about."""
        plain = names <= PLAIN_QUERY
        if key and req.method == "PUT" and plain:
            return "copy" if "x-amz-copy-source" in req.headers else "put"
        if key and req.method == "POST" and "uploadId" in names:
            return "complete"
        if key and req.method == "DELETE" and plain:
            return "delete"
        if key and req.method in ("GET", "HEAD") and all(
                n in PLAIN_QUERY or n.startswith("response-") for n in names):
            return "read"
        if bucket and not key and req.method == "GET" and names <= LIST_QUERY:
            return "list"
        return "other"

    def record(self, req):
        """The record entry, status and fault still to be filled in."""
        return {"t": req.arrived, "method": req.method, "bucket": self.bucket,
                "key": self.key, "query": self.query, "status": None,
                "fault": None, "bytes_in": 0, "region": self.region,
                "class": "write" if self.write else "read",
                "range": req.header("range")}


def error_xml(code, message, extra=()):
    """S3's error document; `extra` adds (element, text) pairs."""
    request_id = uuid.uuid4().hex[:16].upper()
    fields = [("Code", code), ("Message", message), *extra,
              ("RequestId", request_id), ("HostId", "blitfs-test-gateway")]
    inner = "".join(f"<{k}>{html.escape(str(v), quote=False)}</{k}>"
                    for k, v in fields)
    body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + inner + \
        "</Error>"
    return body.encode(), request_id


# ------------------------------------------------------------- scenario

@dataclasses.dataclass
class Scenario:
    """The faults in force; built only through `from_json`, which checks."""
    write_rate: float | None = None
    write_burst: float | None = None
    reset_share: float = 0.0
    reset_writes_only: bool = True
    error500_share: float = 0.0
    corrupt_share: float = 0.0
    bucket_regions: dict = dataclasses.field(default_factory=dict)
    redirect307_share: float = 0.0
    forbidden_buckets: list = dataclasses.field(default_factory=list)
    delay_ms: float = 0.0
    delay_share: float = 1.0
    seed: int | None = None
    down: bool = False
    visibility_delay_s: float = 0.0
    source: dict = dataclasses.field(default_factory=dict)

    SHARES = ("reset_share", "error500_share", "corrupt_share",
              "redirect307_share",
              "delay_share")
    NUMBERS = ("write_rate", "write_burst", "delay_ms", "visibility_delay_s")

    @classmethod
    def from_json(cls, obj):
        """Validate a scenario object; ValueError names the first problem."""
        if not isinstance(obj, dict):
            raise ValueError("a scenario is a JSON object")
        known = {f.name for f in dataclasses.fields(cls)} - {"source"}
        for name, value in obj.items():
            if name not in known:
                raise ValueError(f"unknown scenario key {name!r}")
            cls._check(name, value)
        return cls(**obj, source=dict(obj))

    @classmethod
    def _check(cls, name, value):
        number = isinstance(value, (int, float)) and not isinstance(
            value, bool)
        if name in cls.SHARES and not (number and 0 <= value <= 1):
            raise ValueError(f"{name} must be a number in 0..1")
        if name in cls.NUMBERS and not (number and value >= 0):
            raise ValueError(f"{name} must be a number >= 0")
        if name in ("reset_writes_only", "down") and \
                not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        if name == "seed" and not (value is None or (
                isinstance(value, int) and not isinstance(value, bool))):
            raise ValueError("seed must be an integer")
        if name == "forbidden_buckets" and not (
                isinstance(value, list) and all(isinstance(b, str)
                                                for b in value)):
            raise ValueError("forbidden_buckets must be a list of names")
        if name == "bucket_regions" and not (isinstance(value, dict) and all(
                isinstance(r, str) for r in value.values())):
            raise ValueError("bucket_regions maps bucket names to regions")

    def burst(self):
        if self.write_burst is not None:
            return float(self.write_burst)
        return max(1.0, float(self.write_rate or 0))


class TokenBucket:
    """`rate` tokens a second, at most `burst`; starts full."""

    def __init__(self, rate, burst, now):
        self.rate, self.burst = float(rate), burst
        self.tokens, self.stamp = burst, now

    def take(self, now):
        self.tokens = min(self.burst,
                          self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclasses.dataclass
class Decision:
    """What to do with one request, decided from its head alone."""
    fault: str | None = None
    delay: float = 0.0
    region: str | None = None    # for redirect301: the bucket's region
    old: object = None           # for invisible: the Seen to serve, if any
    gen: int = 0                 # the key's write generation when decided


# ------------------------------------------------------------ visibility

@dataclasses.dataclass
class Seen:
    """A successful GET (with body) or HEAD (body None) the gateway relayed."""
    headers: list                # (name, value), framing headers left out
    length: int
    body: bytes | None
    etag: str


@dataclasses.dataclass
class KeyState:
    """What the gateway knows of one key while the visibility delay is on."""
    written: float | None = None  # when its last write succeeded
    gen: int = 0                  # bumped by each successful write
    seen: Seen | None = None      # the visible version, as last relayed
    old: Seen | None = None       # served while the new one is invisible
    seen_entry: dict | None = None  # listing fields of the visible version
    old_entry: dict | None = None

    def size(self):
        return sum(len(s.body) for s in (self.seen, self.old)
                   if s is not None and s.body is not None)


class Visibility:
    """Per-key write times and old versions, bounded, oldest evicted first.

    Every method is called with the gateway's lock held.
    """
    MAX_KEYS = 100_000
    MAX_BYTES = 256 << 20
    MAX_OBJECT = 8 << 20

    def __init__(self):
        self.keys = collections.OrderedDict()
        self.bytes = 0

    def clear(self):
        self.keys.clear()
        self.bytes = 0

    def _state(self, bucket, key):
        state = self.keys.get((bucket, key))
        if state is None:
            state = self.keys[(bucket, key)] = KeyState()
        self.keys.move_to_end((bucket, key))
        return state

    def _resized(self, before, state):
        """Account for a change of stored bodies, then evict the oldest."""
        self.bytes += state.size() - before
        while self.keys and (len(self.keys) > self.MAX_KEYS
                             or self.bytes > self.MAX_BYTES):
            _, victim = self.keys.popitem(last=False)
            self.bytes -= victim.size()

    @staticmethod
    def _hidden(state, delay, now):
        return state is not None and state.written is not None and \
            now - state.written < delay

    def window(self, bucket, key, delay, now):
        """The key's state if a recent write of it is still invisible."""
        state = self.keys.get((bucket, key))
        return state if self._hidden(state, delay, now) else None

    def generation(self, bucket, key):
        state = self.keys.get((bucket, key))
        return state.gen if state else 0

    def wrote(self, bucket, key, delay, now):
        """A write succeeded: what was visible becomes the old version."""
        state = self._state(bucket, key)
        before = state.size()
        if not self._hidden(state, delay, now):
            state.old, state.old_entry = state.seen, state.seen_entry
            state.seen = state.seen_entry = None
        state.written = now
        state.gen += 1
        self._resized(before, state)

    def deleted(self, bucket, key):
        state = self.keys.pop((bucket, key), None)
        if state is not None:
            self.bytes -= state.size()

    def saw_object(self, bucket, key, gen, seen):
        """Keep a relayed GET/HEAD, unless a write raced past it."""
        state = self._state(bucket, key)
        if state.gen != gen:
            return
        kept = state.seen
        if seen.body is None and kept is not None and \
                kept.body is not None and kept.etag == seen.etag:
            return                       # a HEAD of what we hold whole
        before = state.size()
        state.seen = seen
        self._resized(before, state)

    def listing_view(self, bucket, key, fields, delay, now):
        """For a listed key: None to keep, 'drop', or old fields to show."""
        state = self.keys.get((bucket, key))
        if self._hidden(state, delay, now):
            return state.old_entry or "drop"
        self._state(bucket, key).seen_entry = fields
        return None


CONTENTS_RE = re.compile(r"<Contents>.*?</Contents>", re.S)
KEYCOUNT_RE = re.compile(r"<KeyCount>(\d+)</KeyCount>")
ENTRY_FIELDS = ("ETag", "Size", "LastModified")


def xml_element(block, name):
    match = re.search(rf"<{name}>(.*?)</{name}>", block, re.S)
    return match.group(1) if match else None


def rewrite_listing(xml, url_encoded, view):
    """Apply view(key, fields) to each <Contents> of a listing body.

    view returns None (keep), 'drop' (remove the entry, KeyCount lowered)
    or the fields of an older version to put in place of the entry's own.
    """
    dropped = 0

    def entry(match):
        nonlocal dropped
        block = match.group(0)
        key = html.unescape(xml_element(block, "Key") or "")
        if url_encoded:
            key = urllib.parse.unquote_plus(key)
        fields = {f: xml_element(block, f) for f in ENTRY_FIELDS}
        action = view(key, fields)
        if action == "drop":
            dropped += 1
            return ""
        for name, value in (action or {}).items():
            if value is not None:
                block = re.sub(rf"<{name}>.*?</{name}>",
                               lambda _m: f"<{name}>{value}</{name}>",
                               block, count=1, flags=re.S)
        return block

    xml = CONTENTS_RE.sub(entry, xml)
    if dropped:
        xml = KEYCOUNT_RE.sub(
            lambda m: f"<KeyCount>{int(m.group(1)) - dropped}</KeyCount>",
            xml, count=1)
    return xml


def byte_range(spec, size):
    """(start, end) of a single 'bytes=' range, None for the whole object,
    or 'invalid' when nothing of the object is in it."""
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", spec or "")
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(size - 1, int(last)) if last else size - 1
    if start >= size or start > end:
        return "invalid"
    return start, end


# --------------------------------------------------------------- gateway

class Recorder:
    """The request record, in memory and optionally as JSON lines."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.entries = collections.deque(maxlen=RECORD_MAX)
        self.file = open(path, "a", encoding="utf-8") if path else None

    def add(self, entry, echo=False):
        line = json.dumps(entry)
        with self.lock:
            self.entries.append(entry)
            if self.file:
                self.file.write(line + "\n")
                self.file.flush()
        if echo:
            print(line, file=sys.stderr, flush=True)

    def since(self, t):
        with self.lock:
            found = [e for e in self.entries if t is None or e["t"] > t]
        return sorted(found, key=lambda e: e["t"])

    def clear(self):
        with self.lock:
            self.entries.clear()

    def close(self):
        with self.lock:
            if self.file:
                self.file.close()
                self.file = None


class Gateway:
    """Shared state: scenario, random draws, token buckets, memory, record."""

    def __init__(self, backend, record_path=None, verbose=False):
        self.backend = backend               # (host, port)
        self.verbose = verbose
        self.lock = threading.Lock()
        self.scenario = Scenario()
        self.rng = random.Random()
        self.buckets = {}
        self.vis = Visibility()
        self.recorder = Recorder(record_path)
        self.stopping = threading.Event()
        self.listeners = []
        self.listen_cond = threading.Condition()

    # -- scenario

    def set_scenario(self, obj):
        """Replace the scenario (ValueError if invalid); waits until the
        listening sockets match `down`, so a test can rely on it at once."""
        scenario = Scenario.from_json(obj)
        with self.lock:
            self.scenario = scenario
            self.rng = random.Random(scenario.seed)
            self.buckets = {}
        self.wait_listeners()
        return scenario

    def reset(self):
        self.set_scenario({})
        with self.lock:
            self.vis.clear()
        self.recorder.clear()

    def wait_listeners(self, timeout=5.0):
        with self.listen_cond:
            self.listen_cond.wait_for(
                lambda: all(l.settled() for l in self.listeners), timeout)

    # -- decisions

    def _draw(self, share):
        return share > 0 and self.rng.random() < share

    def _throttled(self, op, now):
        s = self.scenario
        if not op.write or s.write_rate is None:
            return False
        bucket = self.buckets.get(op.bucket)
        if bucket is None:
            bucket = self.buckets[op.bucket] = TokenBucket(
                s.write_rate, s.burst(), now)
        return not bucket.take(now)

    def decide(self, op, now, body_present=False):
        """Pick the fault for a request, in the documented order."""
        with self.lock:
            s = self.scenario
            if s.down:
                return Decision("down")
            if op.bucket in s.forbidden_buckets:
                return Decision("forbidden")
            region = s.bucket_regions.get(op.bucket)
            if region and op.region and op.region != region:
                return Decision("redirect301", region=region)
            if self._throttled(op, now):
                return Decision("slowdown")
            if self._draw(s.redirect307_share):
                return Decision("redirect307")
            if self._draw(s.error500_share):
                return Decision("error500")
            if (op.write or not s.reset_writes_only) and \
                    self._draw(s.reset_share):
                return Decision("reset")
            if op.write and body_present and self._draw(s.corrupt_share):
                return Decision("corrupt")
            return self._visible_or_delay(op, now)

    def _visible_or_delay(self, op, now):
        s = self.scenario
        if s.visibility_delay_s and op.kind == "read":
            state = self.vis.window(op.bucket, op.key,
                                    s.visibility_delay_s, now)
            if state is not None:
                return Decision("invisible", old=state.old)
        delay = s.delay_ms / 1000 if s.delay_ms and \
            self._draw(s.delay_share) else 0.0
        return Decision(None, delay=delay,
                        gen=self.vis.generation(op.bucket, op.key))

    # -- visibility bookkeeping (called while relaying responses)

    def visibility_delay(self):
        with self.lock:
            return self.scenario.visibility_delay_s

    def wrote(self, op):
        with self.lock:
            delay = self.scenario.visibility_delay_s
            if delay:
                self.vis.wrote(op.bucket, op.key, delay, time.time())

    def deleted(self, op):
        with self.lock:
            self.vis.deleted(op.bucket, op.key)

    def saw_object(self, op, gen, seen):
        with self.lock:
            if self.scenario.visibility_delay_s:
                self.vis.saw_object(op.bucket, op.key, gen, seen)

    def filter_listing(self, op, body):
        """Hide or age the entries of keys inside their window."""
        url_encoded = "encoding-type=url" in op.query
        with self.lock:
            delay, now = self.scenario.visibility_delay_s, time.time()

            def view(key, fields):
                return self.vis.listing_view(op.bucket, key, fields, delay,
                                             now)
            text = body.decode("utf-8", "surrogateescape")
            text = rewrite_listing(text, url_encoded, view)
        return text.encode("utf-8", "surrogateescape")

    def record(self, entry):
        self.recorder.add(entry, echo=self.verbose)

    def connect_backend(self):
        sock = socket.create_connection(self.backend, timeout=BACKEND_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


# ------------------------------------------------------------ connections

def http_date():
    return email.utils.formatdate(usegmt=True)


class ClientConnection:
    """One client connection: a loop of requests (keep-alive) until either
    side closes, a request asks to, or a fault resets it."""

    def __init__(self, gateway, sock, control_only):
        self.gw = gateway
        self.sock = sock
        self.control_only = control_only
        self.rfile = sock.makefile("rb")
        self.local = "%s:%d" % sock.getsockname()[:2]
        self.continued = False           # 100 Continue sent for this request

    def serve(self):
        try:
            self.sock.settimeout(CLIENT_IDLE_TIMEOUT)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while not self.gw.stopping.is_set():
                if not self._one():
                    break
        except (OSError, ClientGone):
            pass
        finally:
            self.close()

    def _one(self):
        """Serve one request; True to keep the connection for another."""
        try:
            req = read_request(self.rfile)
            if req is None:
                return False
            self.continued = False
            body = Body(self.rfile, req)
        except BadRequest as exc:
            self.send_simple(None, 400, "Bad Request", str(exc).encode(),
                             "text/plain", close=True)
            return False
        if req.target.split("?", 1)[0].startswith("/_gateway"):
            return self.control(req, body)
        if self.control_only:
            return self.send_json(req, body, 404, {"error": "control only"})
        return self.s3_request(req, body)

    # -- low-level writing

    def close(self):
        try:
            self.rfile.close()
            self.sock.close()
        except OSError:
            pass

    def reset(self):
        """Abort the connection: SO_LINGER 0 makes close() send a RST."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def send_head(self, status, reason, headers, length=None,
                  chunked=False, close=False):
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        elif chunked:
            lines.append("Transfer-Encoding: chunked")
        if close:
            lines.append("Connection: close")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def continue_if_expected(self, req, body):
        """Answer 'Expect: 100-continue' before reading a body we want."""
        if not self.continued and not body.done and body.present and \
                req.version == "HTTP/1.1" and \
                req.header("expect").lower() == "100-continue":
            self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.continued = True

    def settle_body(self, req, body):
        """Before answering without forwarding: drain the body so that the
        connection can be reused, unless the client waits for a 100
        Continue (then it sends no body and the connection must close)."""
        if body.done:
            return True
        if not self.continued and req.header("expect").lower() == \
                "100-continue":
            return False
        body.drain()
        return True

    def send_simple(self, req, status, reason, payload, ctype, headers=(),
                    close=False):
        """A whole response from the gateway itself; True to keep going."""
        keep = not close and req is not None and req.wants_keepalive()
        head = [("Date", http_date()), ("Server", "blitfs-test-gateway"),
                ("Content-Type", ctype), *headers]
        self.send_head(status, reason, head, length=len(payload),
                       close=not keep)
        if req is None or req.method != "HEAD":
            self.sock.sendall(payload)
        return keep

    def send_json(self, req, body, status, obj):
        keep = self.settle_body(req, body)
        payload = json.dumps(obj).encode() + b"\n"
        reason = http.client.responses.get(status, "")
        return self.send_simple(req, status, reason, payload,
                                "application/json", close=not keep)

    # -- control API

    def control(self, req, body):
        """The /_gateway/ endpoints; see the module docstring."""
        path, _, query = req.target.partition("?")
        route = (req.method, path.rstrip("/"))
        try:
            self.continue_if_expected(req, body)
            data = body.read_all(CONTROL_BODY_MAX)
            result = self._route(route, query, data)
        except BadRequest as exc:
            return self.send_json(req, body, 400, {"error": str(exc)})
        if result is None:
            return self.send_json(req, body, 404,
                                  {"error": f"no control endpoint {path}"})
        return self.send_json(req, body, *result)

    def _route(self, route, query, data):
        gw = self.gw
        if route == ("GET", "/_gateway/scenario"):
            return 200, gw.scenario.source
        if route == ("POST", "/_gateway/scenario"):
            try:
                obj = json.loads(data or b"{}")
                return 200, gw.set_scenario(obj).source
            except ValueError as exc:
                return 400, {"error": str(exc)}
        if route == ("POST", "/_gateway/reset"):
            gw.reset()
            return 200, {"ok": True}
        if route == ("GET", "/_gateway/record"):
            since = urllib.parse.parse_qs(query).get("since", [None])[0]
            try:
                return 200, gw.recorder.since(
                    None if since is None else float(since))
            except ValueError:
                return 400, {"error": "since must be a number"}
        if route == ("POST", "/_gateway/record/clear"):
            gw.recorder.clear()
            return 200, {"ok": True}
        if route == ("GET", "/_gateway/health"):
            return 200, {"ok": True, "down": gw.scenario.down,
                         "backend": "%s:%d" % gw.backend}
        return None

    # -- S3 requests

    def s3_request(self, req, body):
        op = S3Op.parse(req)
        entry = op.record(req)
        decision = self.gw.decide(op, time.time(), body.present)
        fault = decision.fault
        try:
            if fault in ("down", "reset"):
                return self.answer_reset(req, body, entry, fault)
            entry["fault"] = fault
            if fault in ERROR_FAULTS:
                return self.answer_error(req, op, body, entry, decision)
            if fault == "invisible":
                return self.answer_invisible(req, op, body, entry, decision)
            return self.forward(req, op, body, entry, decision)
        except ClientGone:
            if entry["status"] is None:
                entry["status"], entry["bytes_in"] = 0, body.received
                self.gw.record(entry)
            return False

    def answer_reset(self, req, body, entry, fault):
        """'reset': read the request whole, then RST; 'down': RST at once."""
        if fault == "reset":
            self.continue_if_expected(req, body)
            body.drain()
        entry.update(status=0, fault=fault, bytes_in=body.received)
        self.gw.record(entry)
        self.reset()
        return False

    def answer_error(self, req, op, body, entry, decision):
        """An S3 error document for slowdown, 500, 403, 301 and 307."""
        status, reason, code, message = ERROR_FAULTS[decision.fault]
        extra, headers = [], []
        if decision.fault == "redirect301":
            extra = [("Bucket", op.bucket), ("Endpoint", self.local)]
            headers = [("x-amz-bucket-region", decision.region)]
        elif decision.fault == "redirect307":
            host = req.header("host") or self.local
            extra = [("Bucket", op.bucket), ("Endpoint", host)]
            headers = [("Location", f"http://{host}{req.target}")]
        payload, request_id = error_xml(code, message, extra)
        headers.append(("x-amz-request-id", request_id))
        keep = self.settle_body(req, body)
        entry.update(status=status, bytes_in=body.received)
        self.gw.record(entry)
        return self.send_simple(req, status, reason, payload,
                                "application/xml", headers, close=not keep)

    def answer_invisible(self, req, op, body, entry, decision):
        """Inside a visibility window: the old version, or 404 NoSuchKey."""
        keep = self.settle_body(req, body)
        old = decision.old
        entry["bytes_in"] = body.received
        if old is None or (req.method == "GET" and old.body is None):
            payload, request_id = error_xml(
                "NoSuchKey", "The specified key does not exist.",
                [("Key", op.key)])
            entry["status"] = 404
            self.gw.record(entry)
            return self.send_simple(
                req, 404, "Not Found", payload, "application/xml",
                [("x-amz-request-id", request_id)], close=not keep)
        return self.send_old(req, old, entry, keep)

    def send_old(self, req, old, entry, keep):
        """Replay a stored GET/HEAD response, cutting a range if asked."""
        status, reason, headers = 200, "OK", list(old.headers)
        payload = old.body if req.method == "GET" else None
        span = byte_range(req.header("range"), old.length) \
            if payload is not None else None
        if span == "invalid":
            payload, _ = error_xml("InvalidRange",
                                   "The requested range is not satisfiable")
            status, reason = 416, "Requested Range Not Satisfiable"
            headers = [("Content-Type", "application/xml")]
        elif span is not None:
            start, end = span
            payload = payload[start:end + 1]
            status, reason = 206, "Partial Content"
            headers.append(("Content-Range",
                            f"bytes {start}-{end}/{old.length}"))
        entry["status"] = status
        self.gw.record(entry)
        length = len(payload) if payload is not None else old.length
        self.send_head(status, reason, headers, length=length,
                       close=not (keep and req.wants_keepalive()))
        if payload is not None:
            self.sock.sendall(payload)
        return keep and req.wants_keepalive()

    def bad_gateway(self, req, body, entry, exc):
        """The backend could not be reached or answered garbage."""
        payload, _ = error_xml("BadGateway", f"gateway: backend: {exc}")
        keep = self.settle_body(req, body) if not self.continued \
            else body.done
        entry.update(status=502, bytes_in=body.received)
        self.gw.record(entry)
        return self.send_simple(req, 502, "Bad Gateway", payload,
                                "application/xml", close=not keep)

    # -- forwarding

    def forward(self, req, op, body, entry, decision):
        """Pass the request to the backend and its response back."""
        try:
            backend = self.gw.connect_backend()
        except OSError as exc:
            return self.bad_gateway(req, body, entry, exc)
        with backend:
            self.continue_if_expected(req, body)
            self.send_upstream(backend, req, body,
                               decision.fault == "corrupt")
            entry["bytes_in"] = body.received
            resp = http.client.HTTPResponse(backend, method=req.method)
            try:
                resp.begin()
            except (OSError, http.client.HTTPException) as exc:
                return self.bad_gateway(req, body, entry, exc)
            try:
                return self.relay(req, op, resp, entry, decision, body.done)
            except (OSError, http.client.HTTPException):
                return False             # broken mid-response: drop both
            finally:
                resp.close()

    def send_upstream(self, backend, req, body, corrupt=False):
        """Request line, raw header lines, then the body as it arrives.

        If the backend stops reading (it answered early), the rest of the
        body is not read either: the response is relayed and the client
        connection closed.
        """
        head = f"{req.method} {req.target} {req.version}\r\n".encode(
            "latin-1") + req.raw_head + b"\r\n"
        try:
            backend.sendall(head)
            for piece in body:
                if corrupt and piece and not body.chunked:
                    piece = bytes([piece[0] ^ 0x01]) + piece[1:]
                    corrupt = False
                backend.sendall(piece)
        except OSError:
            pass

    def relay(self, req, op, resp, entry, decision, body_done):
        """Stream the backend's response to the client."""
        headers = [(n, v) for n, v in resp.getheaders()
                   if n.lower() not in HOP_HEADERS]
        keep = body_done and req.wants_keepalive()
        payload = self.observe(req, op, resp, headers, decision)
        entry["status"] = resp.status
        self.gw.record(entry)
        if decision.delay:
            time.sleep(decision.delay)
        status, reason = resp.status, resp.reason
        if payload is not None:
            self.send_head(status, reason, headers, length=len(payload),
                           close=not keep)
            self.sock.sendall(payload)
            return keep
        if req.method == "HEAD" or status in (204, 304) or status < 200:
            length = resp.getheader("Content-Length")
            if length is not None:
                headers.append(("Content-Length", length))
            self.send_head(status, reason, headers, close=not keep)
            return keep
        return self.stream(req, op, resp, headers, decision, keep)

    def stream(self, req, op, resp, headers, decision, keep):
        """Copy the body as it comes; keep a copy of a small object GET."""
        length = resp.length                 # None: chunked or until close
        chunked = length is None and req.version == "HTTP/1.1"
        keep = keep and (length is not None or chunked)
        self.send_head(resp.status, resp.reason, headers, length=length,
                       chunked=chunked, close=not keep)
        copy = self.capture_buffer(req, op, resp)
        sent = 0
        while True:
            data = resp.read1(CHUNK)
            if not data:
                break
            sent += len(data)
            if copy is not None:
                copy += data
            self.sock.sendall(b"%x\r\n%b\r\n" % (len(data), data)
                              if chunked else data)
        if length is not None and sent < length:
            return False                     # backend cut it short: so do we
        if chunked:
            self.sock.sendall(b"0\r\n\r\n")
        if copy is not None:
            self.gw.saw_object(op, decision.gen, Seen(
                headers, len(copy), bytes(copy), resp.getheader("ETag", "")))
        return keep

    def capture_buffer(self, req, op, resp):
        """A buffer if this GET's body should be kept as an old version."""
        if req.method != "GET" or op.kind != "read" or resp.status != 200 \
                or "range" in req.headers or not self.gw.visibility_delay():
            return None
        if resp.length is None or resp.length > Visibility.MAX_OBJECT:
            return None
        return bytearray()

    def observe(self, req, op, resp, headers, decision):
        """Visibility bookkeeping before the client sees the answer, so a
        client that reads right after its write already meets the window.
        Returns the body when it had to be read whole (listing, copy,
        complete), else None."""
        if not self.gw.visibility_delay():
            return None
        status, kind = resp.status, op.kind
        if kind == "put" and status == 200:
            self.gw.wrote(op)
        elif kind in ("copy", "complete") and status == 200:
            payload = resp.read()            # small; may hide an <Error>
            if b"<Error>" not in payload:
                self.gw.wrote(op)
            return payload
        elif kind == "delete" and status in (200, 204):
            self.gw.deleted(op)
        elif kind == "list" and status == 200 and \
                (resp.length or 0) <= LISTING_MAX:
            return self.gw.filter_listing(op, resp.read())
        elif kind == "read" and req.method == "HEAD" and status == 200:
            length = int(resp.getheader("Content-Length", "0") or 0)
            self.gw.saw_object(op, decision.gen, Seen(
                headers, length, None, resp.getheader("ETag", "")))
        return None


# -------------------------------------------------------------- listening

class Listener:
    """A listening socket and its accept loop.

    A closable listener (the S3 port, when a control port exists) closes
    its socket while the scenario says `down` and reopens it on the same
    port afterwards.  Only the accept loop's thread opens and closes it, so
    no thread ever polls a descriptor that another one closed.
    """

    def __init__(self, gateway, host, port, control_only, closable):
        self.gw = gateway
        self.control_only = control_only
        self.closable = closable
        self.sock = self._open(host, port)
        self.address = self.sock.getsockname()[:2]

    @staticmethod
    def _open(host, port):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        return sock

    @property
    def url(self):
        return "http://%s:%d" % self.address

    def settled(self):
        """Whether the socket is open or closed as the scenario wants."""
        want_open = not (self.closable and self.gw.scenario.down)
        return (self.sock is not None) == want_open

    def _reconcile(self):
        with self.gw.listen_cond:
            want_open = not (self.closable and self.gw.scenario.down)
            if not want_open and self.sock is not None:
                self.sock.close()
                self.sock = None
            elif want_open and self.sock is None:
                try:
                    self.sock = self._open(*self.address)
                except OSError:
                    pass                     # port busy: try again shortly
            self.gw.listen_cond.notify_all()

    def run(self):
        while not self.gw.stopping.is_set():
            self._reconcile()
            if self.sock is None:
                self.gw.stopping.wait(0.05)
                continue
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if not ready:
                continue
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            client = ClientConnection(self.gw, conn, self.control_only)
            threading.Thread(target=client.serve, daemon=True).start()
        if self.sock is not None:
            self.sock.close()


# ------------------------------------------------------------------- main

def host_port(text, what):
    """'HOST:PORT' -> (host, port); argparse shows the error."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{what}: expected HOST:PORT")
    return host or "127.0.0.1", int(port)


def backend_address(url):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise argparse.ArgumentTypeError("backend: expected http://HOST:PORT")
    return parts.hostname, parts.port or 80


def load_scenario(text):
    """--scenario takes JSON, or @FILE holding JSON."""
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as handle:
            text = handle.read()
    return json.loads(text)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Fault-injecting gateway in front of a local S3 server.")
    parser.add_argument("--listen", required=True,
                        type=lambda t: host_port(t, "listen"))
    parser.add_argument("--backend", required=True, type=backend_address)
    parser.add_argument("--control", type=lambda t: host_port(t, "control"),
                        help="extra port serving only /_gateway/, open "
                             "while `down` closes the S3 port")
    parser.add_argument("--scenario", help="initial scenario: JSON or @FILE")
    parser.add_argument("--record", help="append the record to FILE")
    parser.add_argument("--verbose", action="store_true",
                        help="print each record entry on stderr")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="exit when the process that started it ends")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    gw = Gateway(args.backend, args.record, args.verbose)
    gw.listeners.append(Listener(gw, *args.listen, control_only=False,
                                 closable=args.control is not None))
    if args.control:
        gw.listeners.append(Listener(gw, *args.control, control_only=True,
                                     closable=False))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for listener in gw.listeners:
        threading.Thread(target=listener.run, daemon=True).start()
    if args.scenario:
        try:
            gw.set_scenario(load_scenario(args.scenario))
        except (OSError, ValueError) as exc:
            print(f"gateway: bad --scenario: {exc}", file=sys.stderr)
            return 2
    control = f" control {gw.listeners[1].url}" if args.control else ""
    print(f"gateway listening on {gw.listeners[0].url}{control} backend "
          f"http://{args.backend[0]}:{args.backend[1]}", file=sys.stderr,
          flush=True)
    parent = os.getppid()
    while not stop.wait(0.5):
        if args.exit_with_parent and os.getppid() != parent:
            break                            # orphaned: reparented to init
    gw.stopping.set()
    gw.recorder.close()
    sys.stderr.flush()
    # Connection threads may sit in blocking reads; ending the process
    # here, with the record closed, is cleaner than interpreter shutdown
    # racing daemon threads.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
