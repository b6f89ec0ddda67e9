"""`SafeCheckpointManager` and everything it needs to construct, save and apply a restore.

The only package that changes a `tf.train.CheckpointManager`'s state through the adapter
(`safeckpt._io.tf`: `init_manager`, `set_rotation`, `set_latest`, `record_state`, `relocate`,
`note_restored_step`, `put_save_state`, `record_and_sweep`, `sweep`;
tests/test_architecture.py enforces it), and within it only
`SafeCheckpointManager` (`manager`) calls them: the restore engine returns a `RestorePlan`
(with the error of a failed restore) and the manager applies it, `reconcile` returns the
state to adopt, and `saving.save_as_worker` calls back the manager's `_relocate`.

May import: every package below it (`safeckpt._multiworker`, `safeckpt._restore`,
`safeckpt._diagnose`, `safeckpt._catalog`, `safeckpt._format`, `safeckpt._io`) and the public
value types.

Modules:
    manager: `SafeCheckpointManager`, the drop-in `tf.train.CheckpointManager`.
    options: safeckpt's own options of a manager, validated once, as one value.
    arguments: Validation of the manager's arguments (errors name the argument and the fix).
    saving: What a save must do before TensorFlow writes (lease, number, doomed saves), and a
        non-chief worker's save into its own directory (`save_as_worker`).
    reconcile: The state TensorFlow's recorded rotation should become, by the rule (a value
        the manager applies at first use).
    attempts: A save retried after a transient storage error (only this attempt's files
        removed), and the `SaveError` of one that does not survive (full disk, storage).
    finite: ``check_finite=True``: a state with NaN or infinity is refused before writing.
    retention: Metadata files written after each save and ``keep_best`` applied around
        TensorFlow's sweep; the best checkpoint found again from the files.
"""
