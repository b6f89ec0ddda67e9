"""Metadata files and ``keep_best`` on gs:// (the GCS protocol server on 127.0.0.1)."""

from __future__ import annotations

import tensorflow as tf

import safeckpt
from testing.checkpoints import Trainee
from testing.gcs import server as _gcs


def _names(gcs: _gcs.GcsEmulator, directory: str) -> set[str]:
    prefix = gcs.object_name(directory) + "/"
    return {
        o.name[len(prefix) :] for o in gcs.list_objects(directory + "/") if not o.name.endswith("/")
    }


def test_keep_best_and_metadata_on_gs(gcs: _gcs.GcsEmulator, gcs_dir: str) -> None:
    trainee = Trainee()
    manager = safeckpt.SafeCheckpointManager(
        trainee.checkpoint, gcs_dir, 2, keep_best=safeckpt.KeepBest("loss")
    )
    for step, loss in enumerate([0.5, 0.1, 0.4, 0.6, 0.7], 1):
        trainee.set(step)
        manager.save(metrics={"loss": loss})
    kept = {f"ckpt-{k}.{s}" for k in (2, 4, 5) for s in ("index", "data-00000-of-00001")}
    metadata = {f"ckpt-{k}.safeckpt.json" for k in (2, 4, 5)}
    assert _names(gcs, gcs_dir) == {".safeckpt-writer-ckpt", "checkpoint"} | kept | metadata
    assert manager.best_checkpoint == f"{gcs_dir}/ckpt-2"
    assert manager.metadata(f"{gcs_dir}/ckpt-4").metrics == {"loss": 0.6}  # type: ignore[union-attr]
    infos = safeckpt.list_checkpoints(gcs_dir)
    assert [(c.step, c.metrics) for c in infos] == [
        (2, {"loss": 0.1}),
        (4, {"loss": 0.6}),
        (5, {"loss": 0.7}),
    ]
    # A new manager (a restart) finds the best again, and plain TF restores it.
    again = Trainee()
    fresh = safeckpt.SafeCheckpointManager(
        again.checkpoint, gcs_dir, 2, keep_best=safeckpt.KeepBest("loss"), read_only=True
    )
    assert fresh.best_checkpoint == f"{gcs_dir}/ckpt-2"
    fresh.restore(fresh.best_checkpoint)
    assert again.value == 2.0
    plain = Trainee()
    plain.checkpoint.restore(f"{gcs_dir}/ckpt-2").assert_existing_objects_matched()
    assert plain.value == 2.0


def test_the_requests_a_save_adds(gcs: _gcs.GcsEmulator, gcs_dir: str) -> None:
    """A steady-state save (one checkpoint swept): the figures docs/remote.md states."""

    def steady(manager: object, trainee: Trainee, **kwargs: object) -> int:
        for k in range(1, 4):
            trainee.set(k)
            manager.save(**kwargs)  # type: ignore[attr-defined]
        trainee.set(4)
        with gcs.counting() as n:
            manager.save(**kwargs)  # type: ignore[attr-defined]
        return n().total

    t1, t2 = Trainee(), Trainee()
    plain = steady(tf.train.CheckpointManager(t1.checkpoint, gcs_dir + "/tf", 2), t1)
    safe = steady(
        safeckpt.SafeCheckpointManager(
            t2.checkpoint, gcs_dir + "/safe", 2, keep_best=safeckpt.KeepBest("loss")
        ),
        t2,
        metrics={"loss": 1.0},
    )
    print(f"steady-state save: TensorFlow {plain} requests, safeckpt with metadata {safe}")
    # The lease read, the new index's stat and read (fingerprint), the metadata object's
    # upload (2 requests), the swept checkpoint's metadata delete: 6 (measured 45 and 51).
    assert plain < safe <= plain + 6
