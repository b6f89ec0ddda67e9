"""What the file names in one checkpoint directory listing mean.

Pure name parsing, no I/O: `classify` turns a listing into checkpoint prefixes and the
leftovers TensorFlow writes (``<prefix>_temp/`` of interrupted saves, ``checkpoint.tmp*``
state-file temporaries, ``workertemp_*`` of multi-worker training), safeckpt's own
``.safeckpt-*`` files (the writer lease), and the metadata file beside each checkpoint
(``<prefix>.safeckpt.json``, with the temporaries of its atomic write).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

STATE_FILE = "checkpoint"
INDEX_SUFFIX = ".index"
META_SUFFIX = ".meta"
#: Where ``quarantine=True`` moves damaged checkpoints (inside the checkpoint directory).
QUARANTINE_DIR = "quarantine"
#: ``<prefix>_temp/``: where a save writes its parts before TensorFlow merges them.
TEMP_SUFFIX = "_temp"
#: ``workertemp_<task_id>/``: a non-chief worker's private save directory.
WORKER_TEMP_PREFIX = "workertemp_"
#: safeckpt's own files: the write probe of construction and the writer lease.
OWN_PREFIX = ".safeckpt-"
#: ``.safeckpt-writer-<checkpoint_name>``: who saves checkpoints of that name here.
LEASE_PREFIX = OWN_PREFIX + "writer-"
#: ``<prefix>.safeckpt.json``: what safeckpt recorded about the checkpoint (docs/metadata.md).
#: TensorFlow never matches it: its readers glob ``<prefix>.index`` and
#: ``<prefix>.data-?????-of-?????``.
METADATA_SUFFIX = ".safeckpt.json"
#: ``<prefix>.safeckpt.json.safeckpt-tmp-*``: a metadata write a killed process never renamed.
METADATA_TEMP_INFIX = METADATA_SUFFIX + ".safeckpt-tmp-"

# ASCII digits only, and \Z (``$`` would also match before a trailing newline).
_DATA_RE = re.compile(r"(?P<prefix>.+)\.data-(?P<shard>[0-9]{5})-of-(?P<count>[0-9]{5})\Z", re.S)
_STEP_RE = re.compile(r"(?P<name>.*?)-(?P<step>[0-9]+)\Z", re.S)
_SHARD_SUFFIX_RE = re.compile(r"\.data-[0-9]{5}-of-[0-9]{5}\Z")
#: The largest step: TensorFlow's ``save_counter`` is an int64.
MAX_STEP = (1 << 63) - 1


def split_step(base: str) -> tuple[str, int | None]:
    """``"ckpt-12"`` gives ``("ckpt", 12)``; ``"model.ckpt"`` gives ``("model.ckpt", None)``.

    A number above `MAX_STEP` (TensorFlow's int64 counter cannot write it; Python's int()
    refuses more than 4,300 digits) is not a step: the whole base name is the name.
    """
    match = _STEP_RE.match(base)
    if match and match.group("name"):
        digits = match.group("step").lstrip("0") or "0"
        if len(digits) <= 19 and int(digits) <= MAX_STEP:
            return match.group("name"), int(digits)
    return base, None


def data_shard(name: str) -> tuple[str, int, int] | None:
    """``(prefix, shard, count)`` for a ``<prefix>.data-0000k-of-0000n`` file name."""
    match = _DATA_RE.match(name)
    if not match:
        return None
    return match.group("prefix"), int(match.group("shard")), int(match.group("count"))


def shard_path(prefix: str, shard: int, count: int) -> str:
    """``<prefix>.data-0000k-of-0000n``."""
    return f"{prefix}.data-{shard:05d}-of-{count:05d}"


def strip_file_suffix(path: str) -> str | None:
    """The prefix of a checkpoint file path (``.index``, ``.data-…``, ``.meta``), else None."""
    for suffix in (INDEX_SUFFIX, META_SUFFIX):
        if path.endswith(suffix) and len(path) > len(suffix):
            return path[: -len(suffix)]
    match = _SHARD_SUFFIX_RE.search(path)
    if match and match.start() > 0:
        return path[: match.start()]
    return None


@dataclass
class PrefixFiles:
    """The files of one checkpoint prefix found in a listing."""

    index: bool = False
    meta: bool = False
    shards: dict[int, int] = field(default_factory=dict)  # shard number -> declared count
    files: list[str] = field(default_factory=list)

    @property
    def shard_count(self) -> int | None:
        """The number of shards the file names declare (None without data files)."""
        return max(self.shards.values()) if self.shards else None

    @property
    def missing_shards(self) -> list[int]:
        """Shard numbers declared by the file names but absent from the listing."""
        count = self.shard_count
        return [] if count is None else [k for k in range(count) if k not in self.shards]


@dataclass
class Listing:
    """A classified directory listing."""

    prefixes: dict[str, PrefixFiles] = field(default_factory=dict)
    has_state_file: bool = False
    state_temps: list[str] = field(default_factory=list)
    temp_dirs: list[str] = field(default_factory=list)
    worker_temps: list[str] = field(default_factory=list)
    own: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    metadata: list[str] = field(default_factory=list)  # prefixes with a metadata file
    metadata_temps: list[str] = field(default_factory=list)

    def complete_prefixes(self) -> list[str]:
        """Base names with an index file and every data shard their names declare."""
        return [
            name
            for name, files in self.prefixes.items()
            if files.index and files.shards and not files.missing_shards
        ]


def classify(names: list[str]) -> Listing:
    """Classify the entry names of one directory (as `tf.io.gfile.listdir` returns them).

    Entries ending in ``_temp`` or starting with ``workertemp_`` are taken for the leftover
    directories TensorFlow creates; callers that care may confirm with ``isdir``.
    """
    listing = Listing()
    for raw in sorted(names):
        name = raw.rstrip("/")
        if name == STATE_FILE:
            listing.has_state_file = True
        elif name.startswith(STATE_FILE + ".tmp"):
            listing.state_temps.append(name)
        elif name.startswith(WORKER_TEMP_PREFIX):
            listing.worker_temps.append(name)
        elif name.startswith(OWN_PREFIX):
            listing.own.append(name)
        elif name.endswith(TEMP_SUFFIX):
            listing.temp_dirs.append(name)
        elif name.endswith(INDEX_SUFFIX) and len(name) > len(INDEX_SUFFIX):
            entry = listing.prefixes.setdefault(name[: -len(INDEX_SUFFIX)], PrefixFiles())
            entry.index = True
            entry.files.append(name)
        elif name.endswith(META_SUFFIX) and len(name) > len(META_SUFFIX):
            entry = listing.prefixes.setdefault(name[: -len(META_SUFFIX)], PrefixFiles())
            entry.meta = True
            entry.files.append(name)
        elif (shard := data_shard(name)) is not None:
            entry = listing.prefixes.setdefault(shard[0], PrefixFiles())
            entry.shards[shard[1]] = shard[2]
            entry.files.append(name)
        elif name.endswith(METADATA_SUFFIX) and len(name) > len(METADATA_SUFFIX):
            listing.metadata.append(name[: -len(METADATA_SUFFIX)])
        elif METADATA_TEMP_INFIX in name and not name.startswith(METADATA_TEMP_INFIX):
            listing.metadata_temps.append(name)
        else:
            listing.other.append(name)
    return listing
