"""What `cep-console --demo` captures into its fresh home's trace store (through the real WorkflowTracer)."""

from __future__ import annotations

import time
from collections import Counter

from cep_core.demo_home import PLANNER_CALLS, SEARCH_CALLS, SPREAD_S, capture_demo_traces
from cep_core.tracer import query as q
from cep_core.tracer.store import TraceStore


def test_demo_captures_spread_over_the_past_week_with_both_agents_interleaved(tmp_path):
    db = tmp_path / "demo-traces.db"
    assert capture_demo_traces(db) == PLANNER_CALLS + SEARCH_CALLS
    store = TraceStore(db)
    now = time.time()
    rows = q.page(store, limit=500).rows
    assert len(rows) == PLANNER_CALLS + SEARCH_CALLS
    ages = [now - r.ts for r in rows]
    assert min(ages) >= 0 and max(ages) > 0.8 * SPREAD_S and max(ages) <= SPREAD_S + 600
    assert Counter(r.agent for r in rows[:12]).keys() == {"travel/planner", "support/search"}
    recent = q.page(store, limit=500, where=q.TraceFilter(since=now - 2 * 86400)).rows
    assert 0 < len(recent) < len(rows) and all(now - r.ts <= 2 * 86400 for r in recent)
    failed = q.page(store, limit=500, where=q.TraceFilter(success=False)).rows
    assert {r.agent for r in failed} == {"support/search"}
