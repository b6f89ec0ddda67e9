"""`SafeCheckpointManager` and everything it needs to construct, save and apply a restore.

The only package that changes a `tf.train.CheckpointManager`'s state through the adapter
(`safeckpt._io.tf`: `init_manager`, `set_rotation`, `set_latest`, `record_state`, `relocate`,
`note_restored_step`; tests/test_architecture.py enforces it): the restore engine returns a
`RestorePlan` and the manager applies it.

May import: every package below it (`safeckpt._multiworker`, `safeckpt._restore`,
`safeckpt._diagnose`, `safeckpt._catalog`, `safeckpt._format`, `safeckpt._io`) and the public
value types.

Modules:
    manager: `SafeCheckpointManager`, the drop-in `tf.train.CheckpointManager`.
    options: safeckpt's own options of a manager, validated once, as one value.
    arguments: Validation of the manager's arguments (errors name the argument and the fix).
    saving: What a save must do before TensorFlow writes (lease, number, doomed saves), and a
        non-chief worker's save into its own directory (`save_as_worker`).
    reconcile: Reconciling TensorFlow's recorded state with the directory at construction.
    retention: Metadata files written after each save and ``keep_best`` applied around
        TensorFlow's sweep; the best checkpoint found again from the files.
"""
