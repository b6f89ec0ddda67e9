"""What workers tell each other through TensorFlow's coordination service: keys and messages.

Every value a worker writes into the service's key-value store is one of the frozen
dataclasses below, written by `encode` as ``{"safeckpt_message": <kind>, "format": 1,
"body": <fields>}`` (the fields through `safeckpt._serialize.to_jsonable`) and read back by
`decode`, which checks the kind, the format and every field (`safeckpt._serialize.parse`):
text that is not such a message (another safeckpt version, garbage) raises `MessageError`
with what is wrong, which the agreement turns into a diagnosis.

Keys (all under ``safeckpt/``):

=====================================  =========================  ==========================
key                                    message                    written by
=====================================  =========================  ==========================
``<manager>/built/<worker>``           `Built`                    each worker, at construction
``<digest>/instead/<worker>``          `Instead`                  a worker on its own directory
``<manager>/restore/<k>/start``        `Opening` or `Failure`     the chief (worker 0)
``<manager>/restore/<k>/<worker>``     `Success` or `Failure`     each worker, its outcome
``<manager>/restore/<k>/abort``        `Abort`                    the first worker giving up
``in_round/<worker>``                  `InRound`                  each worker, while in a round
=====================================  =========================  ==========================

where ``<manager>`` is ``<digest>/<n>`` (`ManagerKey`: the n-th manager this process built
on the directory and ``checkpoint_name`` that ``<digest>`` hashes) and ``restore/<k>`` its
k-th restore (`RoundKey`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from safeckpt._causes import Vocabulary
from safeckpt._diagnosis import Diagnosis, describe_exception
from safeckpt._serialize import MalformedError, dumps, parse, to_jsonable

#: The envelope's version: a worker reads only messages of its own format.
FORMAT = 1
_KIND = "safeckpt_message"
_SHOWN = 200  # characters of an unreadable message quoted in its error


def manager_digest(directory: str, checkpoint_name: str) -> str:
    """The key component naming a (normalized) directory and checkpoint name."""
    return hashlib.sha256(json.dumps([directory, checkpoint_name]).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ManagerKey:
    """One manager of the job: the `number`-th a process built on the directory of `digest`.

    Workers count their managers on each (directory, checkpoint_name) alike, so the same
    manager has the same key on every worker that builds it.
    """

    digest: str
    number: int

    @property
    def path(self) -> str:
        """``safeckpt/<digest>/<number>``."""
        return f"safeckpt/{self.digest}/{self.number}"

    def built(self, worker: int) -> str:
        """Where `worker` announces that it built this manager (`Built`)."""
        return f"{self.path}/built/{worker}"

    def instead(self, worker: int) -> str:
        """Where `worker` announces its own directory instead of this one (`Instead`)."""
        return instead_key(self.digest, worker)

    def round(self, number: int) -> RoundKey:
        """The key of this manager's `number`-th restore."""
        return RoundKey(self, number)


@dataclass(frozen=True)
class RoundKey:
    """One restore round: the `number`-th ``restore()`` of `manager`."""

    manager: ManagerKey
    number: int

    @property
    def path(self) -> str:
        """``safeckpt/<digest>/<n>/restore/<number>``."""
        return f"{self.manager.path}/restore/{self.number}"

    @property
    def start(self) -> str:
        """Where the chief opens the round (`Opening`, or its `Failure` to validate)."""
        return f"{self.path}/start"

    @property
    def abort(self) -> str:
        """Where the first worker that gives up posts why (`Abort`)."""
        return f"{self.path}/abort"

    def report(self, worker: int) -> str:
        """Where `worker` posts its outcome (`Success` or `Failure`)."""
        return f"{self.path}/{worker}"


def instead_key(digest: str, worker: int) -> str:
    """Where `worker` announces its own directory instead of the shared one of `digest`."""
    return f"safeckpt/{digest}/instead/{worker}"


def status_key(worker: int) -> str:
    """Where `worker` posts the round it waits in (`InRound`), for the others' diagnosis."""
    return f"safeckpt/in_round/{worker}"


class Topic(Vocabulary):
    """What a worker failed to do."""

    DIRECTORY = "directory"  # validating the directory at construction
    RESTORE = "restore"

    @property
    def task(self) -> str:
        """The failed task, to follow "failed to"."""
        return "use the checkpoint directory" if self is Topic.DIRECTORY else "restore"


@dataclass(frozen=True)
class Message:
    """The base of every message; `KIND` names it on the wire."""

    KIND: ClassVar[str] = ""


@dataclass(frozen=True)
class Built(Message):
    """A worker built the manager of the key on `directory`."""

    KIND: ClassVar[str] = "built"
    directory: str


@dataclass(frozen=True)
class Instead(Message):
    """A worker restores its own `directory` instead of the shared one of the key."""

    KIND: ClassVar[str] = "instead"
    directory: str


@dataclass(frozen=True)
class Opening(Message):
    """The chief opens a round: everything it wrote before is complete."""

    KIND: ClassVar[str] = "opening"


@dataclass(frozen=True)
class Success(Message):
    """A worker's restore succeeded.

    Attributes:
        summary: What must be equal on every worker (the restored checkpoint's name, or
            None for a fresh start).
        detail: The outcome in words, for a diagnosis of workers that differ.
    """

    KIND: ClassVar[str] = "success"
    summary: str | None
    detail: str


@dataclass(frozen=True)
class Failure(Message):
    """A worker failed to validate the directory, or to restore.

    Attributes:
        topic: What it failed to do.
        error: The exception's class and text (`describe_exception`).
        message: The exception's message.
        diagnosis: The exception's diagnosis, when it had one.
    """

    KIND: ClassVar[str] = "failure"
    topic: Topic
    error: str
    message: str
    diagnosis: Diagnosis | None = None

    @classmethod
    def of(cls, exc: BaseException, topic: Topic) -> Failure:
        """The failure `exc` reports."""
        diagnosis = getattr(exc, "diagnosis", None)
        return cls(
            topic,
            describe_exception(exc),
            str(exc),
            diagnosis if isinstance(diagnosis, Diagnosis) else None,
        )


@dataclass(frozen=True)
class Abort(Message):
    """A worker gave up on a round; every worker in it raises this error."""

    KIND: ClassVar[str] = "abort"
    message: str
    diagnosis: Diagnosis


@dataclass(frozen=True)
class InRound(Message):
    """A worker is in `round` of the restore of `directory` (having restored `detail`)."""

    KIND: ClassVar[str] = "in_round"
    round: RoundKey
    directory: str
    detail: str | None = None


#: Every message type by its `Message.KIND`.
KINDS: dict[str, type[Message]] = {
    cls.KIND: cls for cls in (Built, Instead, Opening, Success, Failure, Abort, InRound)
}

M = TypeVar("M", bound=Message)


class MessageError(ValueError):
    """Text read from the coordination service that is not the message expected there."""


def encode(message: Message) -> str:
    """`message` as the text to store in the coordination service."""
    envelope = {_KIND: message.KIND, "format": FORMAT, "body": to_jsonable(message)}
    return dumps(envelope, indent=None)


def decode(text: str, *expected: type[M]) -> M:
    """The message `text` holds, which must be of one of the `expected` types.

    Raises:
        MessageError: `text` is not JSON, not a safeckpt message, of another format (another
            safeckpt version), of another kind than `expected`, or a field is missing or of
            the wrong type; the message says which.
    """
    shown = text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
    try:
        data: Any = json.loads(text)
    except ValueError:
        raise MessageError(f"not JSON: {shown!r}") from None
    if not isinstance(data, dict) or _KIND not in data:
        raise MessageError(f"not a safeckpt message: {shown!r}")
    if "format" not in data:
        raise MessageError(f"a message without a format: {shown!r}")
    if data["format"] != FORMAT:
        raise MessageError(
            f"message format {data['format']!r}, while this safeckpt reads format {FORMAT} "
            f"(do all workers run the same safeckpt version?): {shown!r}"
        )
    wanted = {cls.KIND: cls for cls in expected}
    kind = data[_KIND]
    if not isinstance(kind, str) or kind not in wanted:
        names = " or ".join(repr(name) for name in wanted)
        raise MessageError(f"a {kind!r} message where {names} was expected: {shown!r}")
    odd = sorted(set(data) ^ {_KIND, "format", "body"})
    if odd:
        raise MessageError(f"{'unexpected' if odd[0] in data else 'missing'} {odd[0]!r}: {shown!r}")
    try:
        return parse(wanted[kind], data["body"], "body")
    except MalformedError as exc:
        raise MessageError(f"{exc}: {shown!r}") from None


__all__ = [
    "FORMAT",
    "KINDS",
    "Abort",
    "Built",
    "Failure",
    "InRound",
    "Instead",
    "ManagerKey",
    "Message",
    "MessageError",
    "Opening",
    "RoundKey",
    "Success",
    "Topic",
    "decode",
    "encode",
    "instead_key",
    "manager_digest",
    "status_key",
]
