"""Test infrastructure shared by the tests, the stress harnesses and the benchmarks.

Part of the repository and of the sdist, never of the wheel; it may import safeckpt and
TensorFlow. Modules:

- `testing.checkpoints`: checkpoints written with plain TensorFlow (`Trainee`,
  `write_checkpoints`, a rotating trainer, another process that saved and still runs).
- `testing.bundle`: an independent reader and writer of ``.index`` tables, for crafting inputs.
- `testing.privileges`: running code as ``nobody`` (root bypasses file modes).
- `testing.gcs`: TensorFlow's real ``gs://`` client against a GCS server on loopback, with
  a counting, faulting proxy.
"""
