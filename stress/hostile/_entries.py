"""The entry points under test: what each one calls, and what its documentation allows.

Metadata only (the parent process reads it without importing TensorFlow); the worker
(`stress.hostile._worker`) runs them. Allowed exceptions come from the documentation:

* ``diagnose`` / ``verify``: "never raises for an unhealthy location" (`TypeError` only for a
  path that is not a str, which the harness never passes): nothing may escape.
* ``list_checkpoints``: ``CheckpointDirectoryError`` or ``tf.errors.OpError`` (its docstring).
* the manager (construction, ``latest_checkpoint``, ``restore()``, ``save()``): the
  ``SafeCheckpointError`` tree of docs/errors.md (``TypeError``/``ValueError`` are for bad
  arguments, and the harness passes none).
* the command line: no exception at all (it would be a traceback), exit codes 0, 1, 2.

``read_only`` entries must not change anything inside the checkpoint directory either.
"""

from __future__ import annotations

from dataclasses import dataclass

SAFE = "safeckpt.SafeCheckpointError"  # its public name (``__module__`` is "safeckpt")
OP_ERROR = "tensorflow.python.framework.errors_impl.OpError"


@dataclass(frozen=True)
class EntryPoint:
    """One way of calling safeckpt."""

    name: str
    read_only: bool
    allowed: tuple[str, ...] = ()  # classes (module.qualname) whose subclasses may escape
    argv: tuple[str, ...] = ()  # command line (``{dir}``, ``{prefix}``, ``{path}``, ``{other}``)
    json: bool = False  # output that must be strict JSON
    verifies: str = ""  # "quick"/"deep": reports whether the target prefix verified

    @property
    def cli(self) -> bool:
        return bool(self.argv)


_LIB = (
    EntryPoint("diagnose", True, json=True),
    EntryPoint("diagnose_deep", True, json=True),
    EntryPoint("verify", True, json=True, verifies="quick"),
    EntryPoint("verify_deep", True, json=True, verifies="deep"),
    EntryPoint("list_checkpoints", True, (SAFE, OP_ERROR)),
    EntryPoint("construct", False, (SAFE,)),
    EntryPoint("latest_ro", True, (SAFE,)),
    EntryPoint("restore_ro", True, (SAFE,)),
    EntryPoint("restore", False, (SAFE,)),
    EntryPoint("restore_deep", False, (SAFE,)),
    EntryPoint("save_cleanup", False, (SAFE,)),
    EntryPoint("save_quarantine", False, (SAFE,)),
)

_CLI = (
    EntryPoint("cli_doctor", True, argv=("doctor", "{path}")),
    EntryPoint("cli_doctor_deep", True, argv=("doctor", "{path}", "--deep")),
    EntryPoint("cli_doctor_json", True, argv=("doctor", "{path}", "--json"), json=True),
    EntryPoint(
        "cli_doctor_deep_json", True, argv=("doctor", "{prefix}", "--deep", "--json"), json=True
    ),
    EntryPoint("cli_ls", True, argv=("ls", "{dir}")),
    EntryPoint("cli_ls_json", True, argv=("ls", "{dir}", "--json"), json=True),
    EntryPoint("cli_verify", True, argv=("verify", "{dir}")),
    EntryPoint("cli_verify_prefix", True, argv=("verify", "{prefix}"), verifies="quick"),
    EntryPoint("cli_verify_deep", True, argv=("verify", "{prefix}", "--deep"), verifies="deep"),
    EntryPoint("cli_verify_json", True, argv=("verify", "{dir}", "--deep", "--json"), json=True),
    EntryPoint("cli_inspect", True, argv=("inspect", "{prefix}")),
    EntryPoint("cli_inspect_json", True, argv=("inspect", "{prefix}", "--json"), json=True),
    EntryPoint("cli_diff", True, argv=("diff", "{prefix}", "{other}")),
    EntryPoint("cli_diff_json", True, argv=("diff", "{other}", "{prefix}", "--json"), json=True),
    EntryPoint("cli_repair", False, argv=("repair", "{dir}")),
    EntryPoint("cli_repair_dry", True, argv=("repair", "{dir}", "--dry-run")),
    EntryPoint("cli_repair_json", False, argv=("repair", "{dir}", "--json"), json=True),
    EntryPoint(
        "cli_repair_dry_json", True, argv=("repair", "{dir}", "--dry-run", "--json"), json=True
    ),
)

#: Control entry points: deliberately misbehaving calls that prove the oracle flags each
#: kind of violation (tests/integration/test_hostile.py); never drawn by the generator.
_CONTROL = (
    EntryPoint("control_write_outside", False, (SAFE,)),
    EntryPoint("control_write_inside", True),
    EntryPoint("control_raise", True, (SAFE,)),
    EntryPoint("control_hang", True),
    EntryPoint("control_abort", True),
    EntryPoint("control_memory", True),
    EntryPoint("control_cli_nan", True, argv=("--control-nan",), json=True),
    EntryPoint("control_cli_traceback", True, argv=("--control-traceback",)),
    EntryPoint("control_healthy", True, verifies="quick"),
)

ENTRIES: dict[str, EntryPoint] = {e.name: e for e in (*_LIB, *_CLI, *_CONTROL)}
#: What the generator draws from.
DRAWN: tuple[str, ...] = tuple(e.name for e in (*_LIB, *_CLI))
CLI_ENTRIES: tuple[str, ...] = tuple(e.name for e in _CLI)


def argv_for(entry: EntryPoint, paths: dict[str, str]) -> list[str]:
    """The command line of a CLI entry with the case's paths filled in."""
    out = []
    for arg in entry.argv:
        for key, value in paths.items():
            arg = arg.replace("{" + key + "}", value)
        out.append(arg)
    return out
