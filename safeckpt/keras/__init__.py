"""safeckpt for Keras's ``fit``: `BackupAndRestore`, a drop-in for Keras's callback.

Every public name is imported from its module on first use (PEP 562): the first one imports
Keras (``import safeckpt`` never does).

Modules:
    ``_callback``: `BackupAndRestore`, the engine: it writes, restores and applies.
    ``_state``: the `FitState` written into every backup beside the variables.
    ``_callbacks``: which callbacks have a state and how it is read and put back
        (`StatefulCallback`).
    ``_resume``: the policy deciding where a resumed epoch continues.
    ``_preemption``: the termination signal during a ``fit``.
    ``_cleanup``: `delete_backups`, the end of a successful ``fit``.

Example:
    >>> import safeckpt.keras
    >>> callback = safeckpt.keras.BackupAndRestore("/tmp/backup")  # was keras.callbacks.…
    >>> model.fit(x, y, epochs=10, callbacks=[callback])  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from safeckpt._public import lazy_exports

if TYPE_CHECKING:
    from safeckpt.keras._callback import BackupAndRestore
    from safeckpt.keras._callbacks import StatefulCallback
    from safeckpt.keras._cleanup import CHECKPOINT_NAME, delete_backups

#: Public name -> the module that defines it.
_EXPORTS = {
    "BackupAndRestore": "safeckpt.keras._callback",
    "CHECKPOINT_NAME": "safeckpt.keras._cleanup",
    "StatefulCallback": "safeckpt.keras._callbacks",
    "delete_backups": "safeckpt.keras._cleanup",
}

__all__ = ["BackupAndRestore", "CHECKPOINT_NAME", "StatefulCallback", "delete_backups"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
