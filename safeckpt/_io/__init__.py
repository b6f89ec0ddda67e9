"""The I/O boundary: TensorFlow, the filesystem, user paths, parallel I/O, foreign errors.

Owns everything that touches the outside world below the checkpoint format: the one adapter to
TensorFlow, URI-aware path arithmetic and listing, writes that never follow a link, reads of
regular files only, the validation of user-supplied paths, bounded parallel storage calls, and
the one table that turns a foreign error into a `Cause`.

May import: the public value types (`safeckpt._causes`, `safeckpt._diagnosis`,
`safeckpt._errors`, ...). ``tf.py`` imports no other safeckpt module.

Modules:
    tf: THE TensorFlow adapter; the only module that imports ``tensorflow`` or touches its
        privates (layer 0: the public value types may import it too).
    fs: URI-aware paths, stats and listings (``gs://``, ``s3://``, local).
    safeio: No-follow writes, moves and removals; opening only regular files.
    paths: Validation and normalization of user-supplied paths, once, at the boundary.
    pool: Bounded parallelism for latency-bound storage calls.
    translate: The one table from foreign errors (Python's, TensorFlow's) to a `Cause`.
"""
