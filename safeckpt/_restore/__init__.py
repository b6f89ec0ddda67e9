"""The restore engine: from a request to a `RestorePlan` the manager applies.

Owns the engine, the record of what a restore did and the plan built from it, the fallback
policies (the `RecoveryContext` they see and the decisions they return), diagnosing
candidates, reading a request, retrying unreadable storage, matching the program against a
checkpoint, and reading it into the program. Data flows one way: policies decide, the engine
applies and records, one function builds the plan and one the report.

May import: `safeckpt._diagnose`, `safeckpt._catalog`, `safeckpt._format`, `safeckpt._io` and
the public value types. It never changes a manager's state: it returns a `RestorePlan`.

Modules:
    engine: `Restore`: runs the attempts, applies the policies' decisions, returns a
        `RestoreResult` (the plan and the error to raise, if any).
    record: The typed events of one restore; `report_of` and `result_of` read them.
    plan: `RestoreSettings` (the engine's input), `RestorePlan` and `RestoreResult` (its output).
    policies: The `FallbackPolicy` protocol (`RecoveryContext`, the decisions) and the
        built-in policies.
    candidates: Diagnosing a candidate, before TensorFlow reads it and after it failed.
    request: Reading ``restore(save_path)`` once: the newest checkpoint, or the prefix it means.
    retrying: Retrying what the storage failed to read, then raising.
    match: Matching the program's objects against the checkpoint's.
    reading: Reading one checkpoint into the program.
"""
