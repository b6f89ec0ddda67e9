"""The gs:// harness itself (testing/gcs/): TensorFlow's real gs:// client, no mocking.

Each test proves one part of the harness works with plain TF: the gfile surface through the
proxy, a plain `tf.train.CheckpointManager`, the request counters, every fault kind and the
out-of-band object operations. safeckpt's own gs:// behaviour is tested elsewhere.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import tensorflow as tf

from testing.checkpoints import Trainee
from testing.gcs import server as _gcs
from testing.gcs.server import GcsEmulator


def _write(path: str, data: bytes) -> None:
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)


def _read(path: str) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as f:
        return bytes(f.read())


def test_retry_settings_reached_tensorflow() -> None:
    # conftest sets them before importing TensorFlow, which reads them only then.
    for key, value in _gcs.RETRY_ENV.items():
        assert os.environ[key] == value


def test_gfile_surface_through_the_proxy(gcs: GcsEmulator, gcs_dir: str) -> None:
    tf.io.gfile.makedirs(gcs_dir + "/sub")
    assert tf.io.gfile.isdir(gcs_dir + "/sub")
    _write(gcs_dir + "/sub/a.bin", b"hello gs")
    assert tf.io.gfile.exists(gcs_dir + "/sub/a.bin")
    assert tf.io.gfile.stat(gcs_dir + "/sub/a.bin").length == 8
    assert _read(gcs_dir + "/sub/a.bin") == b"hello gs"
    assert sorted(tf.io.gfile.listdir(gcs_dir + "/sub")) == ["a.bin"]
    assert tf.io.gfile.glob(gcs_dir + "/sub/*.bin") == [gcs_dir + "/sub/a.bin"]
    with gcs.counting() as n:
        tf.io.gfile.rename(gcs_dir + "/sub/a.bin", gcs_dir + "/sub/b.bin")
    assert n()["rewrite"] == 1
    assert n()["delete"] == 1  # rename = copy + delete
    assert _read(gcs_dir + "/sub/b.bin") == b"hello gs"
    names = [o.name for o in gcs.list_objects(gcs_dir)]
    prefix = gcs.object_name(gcs_dir)
    assert f"{prefix}/sub/b.bin" in names
    assert f"{prefix}/sub/a.bin" not in names
    tf.io.gfile.remove(gcs_dir + "/sub/b.bin")
    assert gcs.stat(gcs_dir + "/sub/b.bin") is None


def test_plain_checkpoint_manager_save_prune_restore(gcs: GcsEmulator, gcs_dir: str) -> None:
    t = Trainee()
    manager = tf.train.CheckpointManager(t.checkpoint, gcs_dir, max_to_keep=2)
    for k in (1, 2, 3):
        t.set(k)
        manager.save()
    assert manager.checkpoints == [f"{gcs_dir}/ckpt-2", f"{gcs_dir}/ckpt-3"]
    prefix = gcs.object_name(gcs_dir)
    files = {o.name[len(prefix) + 1 :] for o in gcs.list_objects(gcs_dir)} - {""}
    assert files == {
        "checkpoint",
        "ckpt-2.index",
        "ckpt-2.data-00000-of-00001",
        "ckpt-3.index",
        "ckpt-3.data-00000-of-00001",
    }
    other = Trainee()
    again = tf.train.CheckpointManager(other.checkpoint, gcs_dir, max_to_keep=2)
    assert again.latest_checkpoint == f"{gcs_dir}/ckpt-3"
    other.checkpoint.restore(again.latest_checkpoint)  # builds a CheckpointReader (GIL held)
    assert other.value == 3.0


def test_counters(gcs: GcsEmulator, gcs_dir: str) -> None:
    _write(gcs_dir + "/x", b"12345")
    gcs.reset_counts()
    assert tf.io.gfile.exists(gcs_dir + "/x")
    counts = gcs.counts()
    assert counts.total == 1
    assert counts["metadata"] == 1
    (req,) = gcs.requests()
    assert (req.method, req.category, req.object) == (
        "GET",
        "metadata",
        gcs.object_name(gcs_dir + "/x"),
    )
    with gcs.counting() as n:
        assert _read(gcs_dir + "/x") == b"12345"
    assert n()["media"] == 1
    assert next(r for r in gcs.requests() if r.category == "media").range is not None
    with gcs.counting() as n:
        _write(gcs_dir + "/y", b"")
    assert n()["upload"] >= 1
    assert n().total == n()["upload"]
    with gcs.counting() as n:
        tf.io.gfile.listdir(gcs_dir)
    assert n()["list"] >= 1
    gcs.reset_counts()
    assert gcs.counts().total == 0


def test_categorize() -> None:
    c = _gcs.categorize
    assert c("GET", "www.googleapis.com", "/storage/v1/b/bucket/o/a%2Fb?fields=size") == (
        "metadata",
        "a/b",
    )
    assert c("GET", "storage.googleapis.com", "/bucket/a%2Fb") == ("media", "a/b")
    assert c("GET", "www.googleapis.com", "/storage/v1/b/bucket/o?prefix=a%2F") == ("list", "a/")
    assert c("POST", "www.googleapis.com", "/upload/storage/v1/b/bucket/o?name=a") == (
        "upload",
        "a",
    )
    assert c("POST", "www.googleapis.com", "/storage/v1/b/bucket/o/a/rewriteTo/b/bucket/o/b") == (
        "rewrite",
        "a",
    )
    assert c("DELETE", "www.googleapis.com", "/storage/v1/b/bucket/o/a") == ("delete", "a")
    assert c("GET", "www.googleapis.com", "/download/storage/v1/b/bucket/o/a%2Fb?alt=media") == (
        "media",
        "a/b",
    )
    assert c("GET", "www.googleapis.com", "/storage/v1/b/bucket/o/a?alt=media") == ("media", "a")
    assert c("GET", "www.googleapis.com", "/storage/v1/b/bucket") == ("metadata", None)
    assert c("PATCH", "www.googleapis.com", "/foo") == ("other", None)


def test_503_storm_fails_after_tf_retries(gcs: GcsEmulator, gcs_dir: str) -> None:
    _write(gcs_dir + "/x", b"data")
    gcs.reset_counts()
    with gcs.fail(503) as fault, pytest.raises(tf.errors.OpError, match="503"):
        tf.io.gfile.stat(gcs_dir + "/x")
    attempts = 1 + int(_gcs.RETRY_ENV["GCS_RETRY_CONFIG_MAX_RETRIES"])
    assert gcs.counts().total == attempts
    assert fault.fired == attempts
    assert tf.io.gfile.stat(gcs_dir + "/x").length == 4  # cleared: fine again


def _through_proxy(gcs: GcsEmulator, name: str) -> int:
    """A metadata GET sent to the proxy by urllib (no TF, no retries); its status."""
    proxy = f"http://127.0.0.1:{gcs.proxy_port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
    quoted = urllib.parse.quote(name, safe="")
    url = f"http://www.googleapis.com/storage/v1/b/{_gcs.BUCKET}/o/{quoted}"
    try:
        with opener.open(url, timeout=30) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_partial_503_is_seeded_and_filtered(gcs: GcsEmulator, gcs_dir: str) -> None:
    _write(gcs_dir + "/x", b"data")
    name = gcs.object_name(gcs_dir + "/x")

    def storm(seed: int) -> list[int]:
        with gcs.fail(503, fraction=0.3, seed=seed, categories=("metadata",)) as fault:
            statuses = [_through_proxy(gcs, name) for _ in range(40)]
        assert fault.fired == statuses.count(503)
        return statuses

    first = storm(1)
    assert 5 <= first.count(503) <= 20
    assert storm(1) == first  # same seed, same storm
    assert storm(2) != first
    # random.Random(1) draws 0.134 (< 0.3: a 503), then 0.847: TF's first retry succeeds.
    gcs.reset_counts()
    with gcs.fail(503, fraction=0.3, seed=1, categories=("metadata",)):
        assert tf.io.gfile.stat(gcs_dir + "/x").length == 4
    assert [r.status for r in gcs.requests()] == [503, 200]
    with gcs.fail(503, categories=("media",)):
        assert tf.io.gfile.exists(gcs_dir + "/x")  # metadata: spared
        with pytest.raises(tf.errors.OpError):
            _read(gcs_dir + "/x")


def test_refused_connections(gcs: GcsEmulator, gcs_dir: str) -> None:
    with gcs.refuse_connections(), pytest.raises(tf.errors.OpError, match="connect"):
        tf.io.gfile.exists(gcs_dir + "/x")
    assert gcs.counts().total == 0  # nothing reached the proxy
    assert not tf.io.gfile.exists(gcs_dir + "/x")  # listening again


def test_dropped_body(gcs: GcsEmulator, gcs_dir: str) -> None:
    _write(gcs_dir + "/blob", os.urandom(200_000))
    with gcs.drop_body(objects=r"/blob$"), pytest.raises(tf.errors.OpError):
        _read(gcs_dir + "/blob")
    dropped = [r for r in gcs.requests() if r.fault == "drop_body"]
    assert dropped
    assert all(r.category == "media" for r in dropped)
    assert len(_read(gcs_dir + "/blob")) == 200_000


def test_failing_delete_breaks_rename_after_the_copy(gcs: GcsEmulator, gcs_dir: str) -> None:
    _write(gcs_dir + "/src", b"payload")
    with gcs.fail_delete(objects=r"/src$"), pytest.raises(tf.errors.OpError):
        tf.io.gfile.rename(gcs_dir + "/src", gcs_dir + "/dst")
    assert gcs.read(gcs_dir + "/src") == b"payload"  # the delete failed ...
    assert gcs.read(gcs_dir + "/dst") == b"payload"  # ... after the copy
    assert gcs.counts()["rewrite"] >= 1


def test_forbidden_object(gcs: GcsEmulator, gcs_dir: str) -> None:
    _write(gcs_dir + "/secret", b"s")
    _write(gcs_dir + "/public", b"p")
    with gcs.forbid(r"/secret$"):
        with pytest.raises(tf.errors.OpError, match="403"):
            _read(gcs_dir + "/secret")
        assert _read(gcs_dir + "/public") == b"p"


def test_latency(gcs: GcsEmulator, gcs_dir: str) -> None:
    with gcs.latency(0.1):
        start = time.perf_counter()
        assert not tf.io.gfile.exists(gcs_dir + "/nothing")
        elapsed = time.perf_counter() - start
    requests = gcs.counts().total
    assert requests >= 1
    assert elapsed >= 0.1 * requests
    assert all(r.fault == "latency" for r in gcs.requests())


def test_out_of_band_operations(gcs: GcsEmulator, gcs_dir: str) -> None:
    before = gcs.upload(gcs_dir + "/o", b"0123456789")
    assert _read(gcs_dir + "/o") == b"0123456789"  # TF sees what was uploaded
    (listed,) = gcs.list_objects(gcs_dir)
    assert listed == before
    assert listed.size == 10
    assert listed.crc32c == _gcs.crc32c_b64(b"0123456789")
    after = gcs.truncate(gcs_dir + "/o", 4)
    assert after.size == 4
    assert after.generation != before.generation
    flipped = gcs.flip_byte(gcs_dir + "/o", 0)
    assert gcs.read(gcs_dir + "/o") == bytes([ord("0") ^ 0xFF]) + b"123"
    assert flipped.md5 != after.md5
    gcs.delete(gcs_dir + "/o")
    assert gcs.list_objects(gcs_dir) == []
    seen = {r.category for r in gcs.requests()}
    assert seen == {"metadata", "media"}  # only TF's read went through the proxy


def test_stat_cache_is_on(gcs: GcsEmulator, gcs_dir: str) -> None:
    # TF's default 5 s stat cache: a second stat within it makes no request.
    _write(gcs_dir + "/s", b"abc")
    tf.io.gfile.stat(gcs_dir + "/s")
    with gcs.counting() as n:
        assert tf.io.gfile.stat(gcs_dir + "/s").length == 3
    assert n().total == 0


def test_child_env(gcs: GcsEmulator, gcs_child_env: dict[str, str]) -> None:
    # For a child process (TF reads GCS_* at import): the stat cache off, the proxy on.
    assert gcs_child_env["GCS_STAT_CACHE_MAX_AGE"] == "0"
    assert gcs_child_env["https_proxy"] == f"http://127.0.0.1:{gcs.proxy_port}"
    assert gcs_child_env["CURL_CA_BUNDLE"] == str(gcs.ca_path)


def test_start_and_stop_leave_nothing_behind() -> None:
    reason = _gcs.skip_reason()
    if reason is not None:
        pytest.skip(reason)
    emulator = GcsEmulator()
    with emulator:
        server, proxy, tmp = emulator._process, emulator._proxy, emulator._tmp
        assert server is not None
        assert proxy is not None
        assert tmp is not None
        assert tmp.is_dir()
        emulator.upload("x", b"1")
        assert [o.name for o in emulator.list_objects()] == ["x"]
    assert server.poll() is not None
    assert proxy.poll() is not None
    assert not tmp.exists()
    emulator.stop()  # idempotent


def test_upload_retried_after_a_failure_keeps_its_bytes(gcs: GcsEmulator, gcs_dir: str) -> None:
    # TF asks for the upload's status after a failed PUT; the proxy answers 308 as GCS does
    # (fake-gcs-server itself would finalize a 0-byte object), and TF sends the bytes again.
    with gcs.fail(503, methods=("PUT",), times=1):
        _write(gcs_dir + "/u", b"u" * 5000)
    assert gcs.stat(gcs_dir + "/u").size == 5000  # type: ignore[union-attr]
    assert [(r.status, r.content_range) for r in gcs.requests() if r.method == "PUT"] == [
        (503, "bytes 0-4999/5000"),
        (308, "bytes */5000"),
        (200, "bytes 0-4999/5000"),
    ]
    gcs.reset_counts()
    with gcs.drop_body(categories=("upload",), methods=("PUT",), objects=r"/v$", times=1):
        _write(gcs_dir + "/v", b"v" * 7000)  # stored, but the answer is lost
    assert gcs.read(gcs_dir + "/v") == b"v" * 7000
    puts = [(r.status, r.fault, r.content_range) for r in gcs.requests() if r.method == "PUT"]
    assert puts == [(200, "drop_body", "bytes 0-6999/7000"), (200, None, "bytes */7000")]
