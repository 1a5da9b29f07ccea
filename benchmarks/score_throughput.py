"""Scoring throughput on every BFCL category with answers (goal: >= 20,000 examples/s on one core).

Outputs are the gold answers in the target format, half of them degraded the way small models degrade
(fences, self-closing tags, renamed parameters, wrong values), so parsing and error attribution are both
exercised. The reference, measured in the same run on the same outputs, is the floor any scorer pays:
`json.loads` of every call's arguments. The ratio says how many times that floor our full scoring costs.

    python benchmarks/score_throughput.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import sys
import time
from pathlib import Path

from cep_core.data.bfcl import ANSWER_CATEGORIES, gold_calls, load_bfcl, rule_for
from cep_core.data.evalset import load_examples
from cep_core.formats.toolcalls import render_target
from cep_core.scoring import score_example

BFCL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bfcl"
CATEGORIES = [*ANSWER_CATEGORIES, "irrelevance", "live_irrelevance", "live_relevance"]


def degrade(text: str, rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return "```xml\n" + text + "\n```"
    if kind == 1:
        return re.sub(r'<tool_call name="([^"]+)">.*?</tool_call>', r'<tool_call name="\1"/>', text, count=1)
    if kind == 2:
        return text.replace('{"', '{"x_', 1)
    if kind == 3:
        return "Sure, here you go:\n" + text
    if kind == 4:
        return text.replace("</tool_call>", "", 1)
    return text.replace(": ", ": 1", 1)


def workload() -> list[tuple[object, str]]:
    rng = random.Random(7)
    pairs = []
    for category in CATEGORIES:
        path = BFCL / f"BFCL_v4_{category}.json"
        entries = {e.id: e for e in load_bfcl(path)}
        for ex in load_examples(path):
            rule = rule_for(category)
            if rule == "irrelevance":
                text = "" if rng.random() < 0.5 else '<tool_call name="lookup">{"q": "x"}</tool_call>'
            elif rule == "relevance":
                text = '<tool_call name="lookup">{"q": "x"}</tool_call>'
            else:
                text = render_target(gold_calls(entries[ex.id]))
                if rng.random() < 0.5:
                    text = degrade(text, rng)
            pairs.append((ex, text))
    return pairs


def reference(pairs) -> None:
    for _ex, text in pairs:
        for body in re.findall(r">(\{.*?\})</tool_call>", text):
            with contextlib.suppress(ValueError):
                json.loads(body)


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not BFCL.is_dir():
        print(f"needs the BFCL data at {BFCL}", file=sys.stderr)
        return 2
    pairs = workload()
    ours = timed(lambda: [score_example(ex, text) for ex, text in pairs], args.repeat)
    floor = timed(lambda: reference(pairs), args.repeat)
    rate = len(pairs) / ours
    print(f"examples: {len(pairs)} across {len(CATEGORIES)} BFCL categories (half degraded)")
    print(f"cep scoring:  {ours * 1000:8.1f} ms CPU  -> {rate:10,.0f} examples/s")
    print(
        f"reference:    {floor * 1000:8.1f} ms CPU  -> {len(pairs) / floor:10,.0f} examples/s (json.loads floor)"
    )
    print(f"ratio: scoring costs {ours / floor:.1f}x the json.loads floor")
    print(f"goal >= 20,000 examples/s: {'met' if rate >= 20_000 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
