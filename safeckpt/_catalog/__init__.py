"""A directory of checkpoints: what is there, which is newest, and keeping it tidy.

Owns the inventory of one directory (state file and listing, reconciled), the one rule for
"the newest checkpoint", opt-in housekeeping and repair, saves in flight, the writer lease,
candidates removed by another process, validating a manager's directory, and directories
nearby that look like the one meant.

May import: `safeckpt._format`, `safeckpt._io` and the public value types (never
`safeckpt._diagnose` or anything above it).

Modules:
    inventory: `scan` and `Inventory`: the checkpoints of one directory and queries on them.
    ranking: The one rule for "the newest checkpoint".
    housekeeping: Quarantining damaged checkpoints, removing leftovers of interrupted saves.
    repair: Rewriting the state file from the checkpoints that verify.
    inflight: Telling a save being written from the remains of an interrupted one.
    lease: The writer lease: who saves checkpoints of one name into a directory.
    removed: A candidate another process removed meanwhile, told from damage.
    directory: Validating a manager's directory at construction.
    nearby: Similar directories nearby (typos, moved runs).
    best: The ``keep_best`` rule: the best checkpoints, what the rotation keeps (pure).
"""
