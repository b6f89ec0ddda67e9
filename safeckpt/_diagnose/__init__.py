"""Turning what the layers below found into one `Diagnosis`: cause, evidence, fixes.

Owns `diagnose()` and the public `verify()`, the diagnosis of a whole directory, of names and
steps that do not match, and the alternatives offered instead of a damaged checkpoint.

May import: `safeckpt._catalog`, `safeckpt._format`, `safeckpt._io` and the public value types.

Modules:
    path: `diagnose` and `verify`: one path (directory, prefix or file) in, one diagnosis out.
    directory: `diagnose_directory`: what is wrong with a checkpoint directory.
    names: A checkpoint that is not where it was expected: another step, another name.
    alternatives: Naming the checkpoints to use instead of a damaged one.
    metadata: What a checkpoint's metadata file adds to a diagnosis (who wrote it, metrics).
"""
