"""`python -m cep_console.preflight_check CONFIG RUNS_DIR`: the training pre-flight, as JSON on stdout.

Run as a subprocess by the launch form, so whatever the checks import (data loaders, the Hub client) stays out
of the console's process. Prints {"checks": [{name, status, detail}]}; exit 0 even when checks fail.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m cep_console.preflight_check CONFIG RUNS_DIR", file=sys.stderr)
        return 2
    try:
        from cep_core.training.preflight import run_preflight

        result = run_preflight(args[0], run_root=Path(args[1]))
        checks = [c.to_dict() for c in result.checks]
    except Exception as exc:  # noqa: BLE001 — the form shows it as a failed check
        checks = [
            {
                "name": "preflight",
                "status": "fail",
                "detail": f"the pre-flight could not run: {type(exc).__name__}: {exc}",
            }
        ]
    print(json.dumps({"checks": checks}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
