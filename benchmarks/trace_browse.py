"""Browsing a 1,000,000-trace store: newest page, filtered pages and full-text search, against naive queries.

Run: .venv/bin/python benchmarks/trace_browse.py [--rows 1000000] [--rebuild]
Targets (issue 7): newest page and a filtered page < 50 ms, a full-text search < 200 ms.
The store is built once through the real schema (indexes, FTS triggers) and cached at
$CEP_BENCH_CACHE (default ~/.cache/cep/bench/traces-<rows>.db). References, timed in the same run:
OFFSET paging to a deep page, and a LIKE scan instead of the FTS index — what a console without keyset ids
and FTS would do.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from cep_core.tracer import query as q
from cep_core.tracer.ids import new_id
from cep_core.tracer.store import TraceRow, TraceStore
from cep_core.tracer.thresholds import progress

CITIES = [
    "Paris",
    "Oslo",
    "Lima",
    "Auckland",
    "Nairobi",
    "Kyoto",
    "Quito",
    "Reykjavik",
    "Hanoi",
    "Bergen",
    "Seville",
    "Tbilisi",
    "Zanzibar",
    "Valparaiso",
    "Hobart",
    "Tromso",
    "Cusco",
    "Luang",
    "Sapporo",
    "Kochi",
]
WORDS = [
    "flight",
    "hotel",
    "train",
    "refund",
    "invoice",
    "weather",
    "booking",
    "seat",
    "upgrade",
    "luggage",
    "cancel",
    "receipt",
    "schedule",
    "transfer",
    "visa",
    "insurance",
    "itinerary",
    "delay",
    "voucher",
    "loyalty",
    "meal",
    "window",
    "aisle",
    "lounge",
    "baggage",
    "customs",
]
AGENTS = [(f"type{t}", f"agent{a}") for t in range(4) for a in range(5)]  # 20 agents
MODELS = ["gpt-4", "gpt-4o", "claude-3-5-sonnet", "llama-3.1-8b", "phi-4"]
RARE = "xylophonist"  # appears in 1 row in 20,000


def cache_path(rows: int) -> Path:
    base = Path(os.environ.get("CEP_BENCH_CACHE", Path.home() / ".cache" / "cep" / "bench"))
    return base / f"traces-{rows}-v1.db"


def build(path: Path, rows: int) -> None:
    tmp = path.with_suffix(".building")
    for suffix in ("", "-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    store = TraceStore(tmp)
    store.conn.execute("PRAGMA synchronous = OFF")
    rng = random.Random(42)
    start = time.time() - 30 * 86400
    step = 30 * 86400 / rows
    batch: list[TraceRow] = []
    t0 = time.perf_counter()
    for i in range(rows):
        agent_type, agent_name = AGENTS[rng.randrange(len(AGENTS))]
        words = " ".join(rng.choice(WORDS) for _ in range(6))
        city = rng.choice(CITIES)
        query = f"Please handle {words} for a trip to {city} ref {rng.randrange(10**6):06d}"
        if i % 20_000 == 7:
            query += f" with a {RARE}"
        success = rng.random() > 0.08
        response = (
            f'<tool_call name="search_{rng.choice(WORDS)}">{{"city": "{city}", "words": "{words}"}}</tool_call>'
            if success
            else ""
        )
        ts = start + i * step
        batch.append(
            TraceRow(
                id=new_id(now=ts),
                ts=ts,
                agent_type=agent_type,
                agent_name=agent_name,
                model=rng.choice(MODELS),
                system_prompt="You route travel requests to tools.",
                user_query=query,
                response=response,
                messages=[{"role": "user", "content": query}, {"role": "assistant", "content": response}],
                success=success,
                cost=rng.random() / 50,
                execution_time=rng.lognormvariate(0, 0.6),
                error=None if success else rng.choice(["RateLimitError: 429", "TimeoutError: upstream 30s"]),
            )
        )
        if len(batch) == 20_000:
            store.insert_many(batch)
            batch = []
            done = i + 1
            rate = done / (time.perf_counter() - t0)
            print(f"\r  building {done:,}/{rows:,} ({rate:,.0f} rows/s)", end="", flush=True)
    if batch:
        store.insert_many(batch)
    store.conn.execute("INSERT INTO traces_fts(traces_fts) VALUES('optimize')")
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.conn.execute("ANALYZE")
    store.close()
    os.replace(tmp, path)
    print(
        f"\n  built {rows:,} rows in {time.perf_counter() - t0:.0f} s: {path} "
        f"({path.stat().st_size / 1e6:,.0f} MB)"
    )


def timeit(fn: Callable[[], object], runs: int = 25) -> tuple[float, float, object]:
    """(first run, median of the rest) in ms, and the last result."""
    t0 = time.perf_counter()
    result = fn()
    first = (time.perf_counter() - t0) * 1e3
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return first, statistics.median(samples), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    path = cache_path(args.rows)
    if args.rebuild or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"building a {args.rows:,}-trace store once (cached for later runs)")
        build(path, args.rows)
    store = TraceStore(path)
    total = store.count()
    print(f"store: {path} — {total:,} traces")
    middle_id = store.conn.execute(
        "SELECT id FROM traces ORDER BY id LIMIT 1 OFFSET ?", (total // 2,)
    ).fetchone()[0]
    last_hour = time.time() - 3 * 86400
    rows: list[tuple[str, float, float, float, str]] = []

    def row(name: str, fn: Callable[[], object], target_ms: float, check: Callable[[object], bool]) -> float:
        first, median, result = timeit(fn)
        assert check(result), f"{name}: unexpected result"
        rows.append((name, first, median, target_ms, "PASS" if median < target_ms else "FAIL"))
        return median

    newest = row("newest page (50)", lambda: q.page(store, limit=50), 50, lambda p: len(p.rows) == 50)
    deep = row(
        "keyset page at the middle (50)",
        lambda: q.page(store, before_id=middle_id, limit=50),
        50,
        lambda p: len(p.rows) == 50,
    )
    agent = row(
        "filtered: agent",
        lambda: q.page(store, limit=50, where=q.TraceFilter(agent_type="type2", agent_name="agent3")),
        50,
        lambda p: len(p.rows) == 50,
    )
    row(
        "filtered: model",
        lambda: q.page(store, limit=50, where=q.TraceFilter(model="phi-4")),
        50,
        lambda p: len(p.rows) == 50,
    )
    row(
        "filtered: failed only",
        lambda: q.page(store, limit=50, where=q.TraceFilter(success=False)),
        50,
        lambda p: len(p.rows) == 50,
    )
    row(
        "filtered: agent + failed + model",
        lambda: q.page(
            store,
            limit=50,
            where=q.TraceFilter(agent_type="type1", agent_name="agent4", model="gpt-4", success=False),
        ),
        50,
        lambda p: len(p.rows) > 0,
    )
    row(
        "filtered: since 3 days, agent",
        lambda: q.page(
            store, limit=50, where=q.TraceFilter(agent_type="type0", agent_name="agent0", since=last_hour)
        ),
        50,
        lambda p: len(p.rows) == 50,
    )
    common = row(
        "search: common word (city)",
        lambda: q.search(store, "Reykjavik", limit=50),
        200,
        lambda p: len(p.rows) == 50,
    )
    rare = row(
        f"search: rare word ({RARE})",
        lambda: q.search(store, RARE, limit=50),
        200,
        lambda p: len(p.rows) == min(50, (total + 19_992) // 20_000),
    )
    row(
        "search: two words",
        lambda: q.search(store, "Kyoto voucher", limit=50),
        200,
        lambda p: len(p.rows) == 50,
    )
    row(
        "search: word + agent filter",
        lambda: q.search(
            store, "Hobart lounge", limit=50, where=q.TraceFilter(agent_type="type3", agent_name="agent1")
        ),
        200,
        lambda p: len(p.rows) > 0,
    )
    row(
        "search: word in every row + 4-way filter",
        lambda: q.search(
            store,
            "please",
            limit=50,
            where=q.TraceFilter(agent_type="type1", agent_name="agent4", model="gpt-4", success=False),
        ),
        200,
        lambda p: len(p.rows) > 0,
    )
    row(
        "search: word in every row + filter, no hit",
        lambda: q.search(
            store,
            "please",
            limit=50,
            where=q.TraceFilter(agent_type="type1", agent_name="agent4", model="no-such-model"),
        ),
        200,
        lambda p: p.rows == [],
    )
    row(
        "search: word in every row + last 5 hours",
        lambda: q.search(store, "please", limit=50, where=q.TraceFilter(since=time.time() - 5 * 3600)),
        200,
        lambda p: len(p.rows) > 0,
    )
    row(
        "search: an error text",
        lambda: q.search(store, "TimeoutError upstream", limit=50),
        200,
        lambda p: len(p.rows) == 50,
    )
    row("show one trace", lambda: q.get(store, middle_id), 50, lambda r: r is not None)

    conn = store.conn
    ref_deep = row(
        "REFERENCE: OFFSET page at the middle",
        lambda: conn.execute(
            "SELECT id FROM traces ORDER BY id DESC LIMIT 50 OFFSET ?", (total // 2,)
        ).fetchall(),
        float("inf"),
        lambda r: len(r) == 50,
    )
    ref_agent = row(
        "REFERENCE: agent filter, no index",
        lambda: conn.execute(
            "SELECT id FROM traces NOT INDEXED WHERE agent_type = 'type2' AND agent_name = 'agent3' "
            "ORDER BY id DESC LIMIT 50"
        ).fetchall(),
        float("inf"),
        lambda r: len(r) == 50,
    )
    ref_common = row(
        "REFERENCE: LIKE scan, common word",
        lambda: conn.execute(
            "SELECT id FROM traces WHERE user_query LIKE '%Reykjavik%' OR response LIKE '%Reykjavik%' "
            "ORDER BY rowid DESC LIMIT 50"
        ).fetchall(),
        float("inf"),
        lambda r: len(r) == 50,
    )
    ref_rare = row(
        "REFERENCE: LIKE scan, rare word",
        lambda: conn.execute(
            f"SELECT id FROM traces WHERE user_query LIKE '%{RARE}%' OR response LIKE '%{RARE}%' "
            "ORDER BY rowid DESC LIMIT 50"
        ).fetchall(),
        float("inf"),
        lambda r: len(r) > 0,
    )

    print(f"{'query':42} {'first ms':>9} {'median ms':>10} {'target':>8}")
    for name, first, median, target, verdict in rows:
        tgt = "" if target == float("inf") else f"< {target:.0f}"
        print(f"{name:42} {first:9.2f} {median:10.2f} {tgt:>8} {verdict if tgt else ''}")
    print("ratios (reference / ours, medians):")
    print(f"  deep page: OFFSET {ref_deep / deep:,.0f}x slower than keyset")
    print(f"  agent page: unindexed scan {ref_agent / agent:,.1f}x slower than the index")
    print(
        f"  common word: LIKE {ref_common / common:,.1f}x slower than FTS;  rare word: LIKE {ref_rare / rare:,.0f}x"
        " slower than FTS"
    )
    print(f"  newest page {newest:.2f} ms")
    t0 = time.perf_counter()
    q.stats(store)
    print(f"stats over all traces (cep traces stats): {(time.perf_counter() - t0) * 1e3:,.0f} ms (no target)")
    t0 = time.perf_counter()
    progress(store)
    print(f"per-agent progress to threshold: {(time.perf_counter() - t0) * 1e3:,.0f} ms (no target)")


if __name__ == "__main__":
    main()
