"""Multi-worker training: which worker this is, where it writes, and what the workers agree on.

May import: `safeckpt._catalog`, `safeckpt._format`, `safeckpt._io` and the public value types;
never `safeckpt._manager` (the manager validates its arguments and hands over plain values).

Modules:
    context: `WorkerContext`: which worker this is and which directory it writes to.
    agreement: The one restore decision every worker must share (`Agreement` per manager,
        `Session` per round).
    roster: Which workers take part in a round: those that built the same manager; the
        process's `Registry` of its managers and rounds.
    messages: The keys and typed messages workers exchange through TensorFlow's
        coordination service.
"""
