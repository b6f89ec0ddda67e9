"""The ``safeckpt`` command line: doctor, ls, verify, repair, inspect, diff.

May import: every package except `safeckpt._manager` (the command line never builds a manager).

Modules:
    main: Argument parsing, the commands, exit codes; `console_main` is the entry point.
    graph: ``safeckpt inspect`` and ``safeckpt diff``: object trees of checkpoints.
    best: The metrics and metadata recorded beside checkpoints, the best marked (``ls``).
"""
