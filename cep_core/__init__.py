"""cep_core — the engine of CEP Console: the CEP, parsing and scoring, jobs, GPU health and the tracer.

Nothing here imports torch, transformers, peft or datasets at module level; the heavy stack is only
imported inside the training and evaluation job modules, so the console and the tracer stay light.
"""

import sys as _sys

__version__ = "0.1.0"


def _import_sqlite_utils_without_pandas() -> None:
    """sqlite-utils imports pandas and numpy at import time when they are installed (datasets pulls them in),
    which costs the CLI and the console ~0.5 s at start-up for features we never use. Import it once with
    those two hidden; a later `import pandas` (the training job) works as usual."""
    if "sqlite_utils" in _sys.modules:
        return
    hidden = [name for name in ("pandas", "numpy") if name not in _sys.modules]
    for name in hidden:
        _sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` raise ImportError
    try:
        import sqlite_utils  # noqa: F401
    finally:
        for name in hidden:
            if _sys.modules.get(name) is None:
                del _sys.modules[name]


_import_sqlite_utils_without_pandas()
