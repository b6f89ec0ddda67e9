"""The version of safeckpt, single-sourced: pyproject.toml reads it; ``safeckpt.__version__``."""

__version__ = "0.1.0"
