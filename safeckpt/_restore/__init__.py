"""The restore engine: from a request to a `RestorePlan` the manager applies.

Owns the engine, the plan it returns, the fallback policies (and the `RecoveryContext` they
see), diagnosing candidates, explicit requests, retrying unreadable storage, matching the
program against a checkpoint, and reading it into the program.

May import: `safeckpt._diagnose`, `safeckpt._catalog`, `safeckpt._format`, `safeckpt._io` and
the public value types. It never changes a manager's state: it returns a `RestorePlan`.

Modules:
    engine: `Restore`: runs the attempts and the policies, returns a `RestorePlan`.
    plan: `RestoreSettings` (the engine's input) and `RestorePlan` (its output).
    policies: The fallback policies and the `RecoveryContext` protocol.
    candidates: Diagnosing a candidate, before TensorFlow reads it and after it failed.
    request: Turning ``restore(save_path)`` into the prefix it means.
    retrying: Retrying what the storage failed to read, then raising.
    match: Matching the program's objects against the checkpoint's.
    reading: Reading one checkpoint into the program.
"""
