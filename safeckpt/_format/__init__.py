"""One checkpoint's files: names, state file, index, shards, object graph, verification.

Knows the TensorFlow checkpoint format and nothing about directories of checkpoints, managers or
restores.

May import: `safeckpt._io` and the public value types.

Modules:
    layout: What file names in a checkpoint directory mean (prefixes, steps, shards).
    statefile: Reading TensorFlow's ``checkpoint`` state file without losing information.
    index: The ``<prefix>.index`` table parser (pure Python).
    shards: Streaming verification of the data shards against the index (CRC32C).
    crc32c: CRC32C as TensorFlow uses it, with the fastest backend available.
    graph: The checkpoint's object graph and the program's, as comparable trees.
    sniff: Recognizing files that are not checkpoints by their first bytes.
    verify: Checking one prefix, quick (index, shard sizes, graph) or deep (every CRC32C).
    metadata: The ``<prefix>.safeckpt.json`` file beside a checkpoint: check, write, read.
"""
