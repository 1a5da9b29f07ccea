"""`cep traces import`: a JSONL log into the trace store, against `capture_many` of the same calls in memory.

Run: .venv/bin/python benchmarks/trace_import.py [--n 10000]
Both store the same calls in batches of 500 into a fresh store. The import also reads the file twice (a check
of every line, then the import), parses the JSON and checks each call; the ratio says what that costs on top
of the captures themselves.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tracer_capture import call  # the same realistic call (about 1.4 kB of text and three tools)

from cep_core.tracer import WorkflowTracer
from cep_core.tracer.importer import BATCH, check_file, import_file


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000, help="calls in the file")
    args = parser.parse_args()
    calls = [{**call(i), "captured_at": 1.7e9 + i} for i in range(args.n)]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "calls.jsonl"
        log.write_text("".join(json.dumps(c) + "\n" for c in calls))

        reference = WorkflowTracer(Path(tmp) / "reference.db", strict=True)
        t0 = time.perf_counter()
        for start in range(0, args.n, BATCH):
            reference.capture_many([dict(c) for c in calls[start : start + BATCH]])
        ref_s = time.perf_counter() - t0

        tracer = WorkflowTracer(Path(tmp) / "imported.db", strict=True)
        t0 = time.perf_counter()
        check = check_file(log)
        checked_s = time.perf_counter() - t0
        per_agent = import_file(log, tracer.capture_many)
        import_s = time.perf_counter() - t0
        assert not check.problems and sum(per_agent.values()) == args.n == tracer.store.count()
        assert reference.store.count() == args.n
        size = log.stat().st_size / 2**20
        print(f"{args.n:,} calls, {size:.1f} MiB of JSONL, batches of {BATCH}:")
        print(f"  import (check + store)   {import_s:.2f} s   {args.n / import_s:,.0f} calls/s")
        print(f"    of which the check     {checked_s:.2f} s")
        print(f"  capture_many (in memory) {ref_s:.2f} s   {args.n / ref_s:,.0f} calls/s")
        print(f"  ratio import/capture_many: {import_s / ref_s:.2f}x")
        reference.close()
        tracer.close()


if __name__ == "__main__":
    main()
