"""What a capture costs the caller, and batched throughput, against a bare sqlite3 INSERT in the same run.

Run: .venv/bin/python benchmarks/tracer_capture.py [--n 3000]
Target (issue 7): median capture cost < 1 ms. The reference is the cheapest possible durable write of the same
text: one sqlite3 INSERT into a plain table (no FTS, no indexes, no redaction) on a WAL connection with the same
pragmas. The ratio says what redaction, normalisation, the indexes and the FTS index cost on top of that.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from cep_core.tracer import WorkflowTracer
from cep_core.tracer.api import TraceRow  # noqa: F401  (imported to show the module graph is light)

SYSTEM = ("You are the orchestrator of a travel agency. Route each request to the right tool. " * 12).strip()
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": f"tool_{i}",
            "description": "Searches flights by city, dates and class with flexible cancellation.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "date": {"type": "string"},
                    "class": {"type": "string", "enum": ["economy", "business"]},
                },
                "required": ["city", "date"],
            },
        },
    }
    for i in range(3)
]


def call(i: int) -> dict:
    return {
        "agent_type": "orchestrator",
        "agent_name": f"agent{i % 4}",
        "model_used": "gpt-4",
        "system_prompt": SYSTEM,
        "user_query": f"Book me a flight from Los Angeles to Auckland on July {i % 28 + 1}, economy, with flexible "
        f"cancellation; my loyalty number is LA-{i:06d} and I prefer an aisle seat.",
        "assistant_response": f'<tool_call name="tool_0">{{"city": "Auckland", "date": "2023-07-{i % 28 + 1:02d}", '
        f'"class": "economy"}}</tool_call>',
        "success": True,
        "cost": 0.0123,
        "execution_time": 1.8,
        "tools": TOOLS,
        "metadata": {"request_id": f"req-{i}", "tokens_in": 812, "tokens_out": 64},
    }


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    s = sorted(samples)
    return statistics.median(s), s[int(0.95 * (len(s) - 1))], s[int(0.99 * (len(s) - 1))]


def bench_capture(tracer: WorkflowTracer, n: int) -> list[float]:
    times = []
    for i in range(n):
        c = call(i)
        t0 = time.perf_counter()
        tracer.capture_call(**c)
        times.append(time.perf_counter() - t0)
    return times


def reference_conn(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "busy_timeout = 10000"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute(
        "CREATE TABLE t (id TEXT, agent TEXT, model TEXT, system TEXT, query TEXT, response TEXT, "
        "tools TEXT, metadata TEXT, success INT, cost REAL, time REAL)"
    )
    return conn


def ref_params(i: int) -> tuple:
    c = call(i)
    return (
        f"{i:026d}",
        c["agent_name"],
        c["model_used"],
        c["system_prompt"],
        c["user_query"],
        c["assistant_response"],
        json.dumps(c["tools"]),
        json.dumps(c["metadata"]),
        1,
        c["cost"],
        c["execution_time"],
    )


def bench_reference(conn: sqlite3.Connection, n: int) -> list[float]:
    times = []
    for i in range(n):
        params = ref_params(i)  # building the row counts, as the tracer's does
        t0 = time.perf_counter()
        conn.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", params)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000, help="single captures to time")
    parser.add_argument("--batches", type=int, default=50, help="batches of --batch-size for throughput")
    parser.add_argument("--batch-size", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tracer = WorkflowTracer(Path(tmp) / "traces.db", strict=True)
        ref = reference_conn(Path(tmp) / "reference.db")
        bench_capture(tracer, 200)  # warm up: open, migrate, page cache
        bench_reference(ref, 200)
        cap = bench_capture(tracer, args.n)
        base = bench_reference(ref, args.n)
        cm, c95, c99 = percentiles(cap)
        rm, r95, r99 = percentiles(base)
        print(
            f"single capture (capture_call, {args.n} calls, ~{len(SYSTEM) + 400} chars of text + 3 tools each):"
        )
        print(f"  tracer     median {cm * 1e3:.3f} ms   p95 {c95 * 1e3:.3f} ms   p99 {c99 * 1e3:.3f} ms")
        print(
            f"  reference  median {rm * 1e3:.3f} ms   p95 {r95 * 1e3:.3f} ms   p99 {r99 * 1e3:.3f} ms"
            "   (bare sqlite3 INSERT, plain table)"
        )
        print(
            f"  ratio tracer/reference (median): {cm / rm:.1f}x   target median < 1 ms: "
            f"{'PASS' if cm < 1e-3 else 'FAIL'}"
        )

        total = args.batches * args.batch_size
        t0 = time.perf_counter()
        for b in range(args.batches):
            tracer.capture_many([call(b * args.batch_size + i) for i in range(args.batch_size)])
        batched = time.perf_counter() - t0
        t0 = time.perf_counter()
        for b in range(args.batches):
            rows = [ref_params(b * args.batch_size + i) for i in range(args.batch_size)]
            ref.execute("BEGIN")
            ref.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            ref.execute("COMMIT")
        ref_batched = time.perf_counter() - t0
        print(f"batched (capture_many, {args.batches} x {args.batch_size}):")
        print(f"  tracer     {total / batched:,.0f} captures/s")
        print(f"  reference  {total / ref_batched:,.0f} rows/s (executemany, plain table)")
        print(f"  ratio reference/tracer throughput: {(total / ref_batched) / (total / batched):.1f}x")
        assert tracer.dropped == 0 and tracer.store.count() == 200 + args.n + total


if __name__ == "__main__":
    main()
