"""Dataset preparation speed: ours (cep_core.data + assistant-only tokenisation) vs the usual `datasets` pipeline.

Reference: `datasets.load_dataset("json")`, a `.map` that converts Hermes turns to messages (with the same
tool-call rewrite and CEP), and a `.map` that tokenises with the chat template (`return_assistant_tokens_mask`
cannot be used: the template has no generation markers, so the reference produces no labels — it does less
work than ours). Both run on the same files in the same process; rows/s and the ratio are printed.

    .venv/bin/python benchmarks/data_prep.py [--data PATH_OR_builtin:demo] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="builtin:sample")
    parser.add_argument("--repeat", type=int, default=3)
    ns = parser.parse_args()

    import datasets

    from cep_core.data.convert import SkipRow, row_to_messages
    from cep_core.data.prepare import prepare
    from cep_core.data.sources import resolve_source
    from cep_core.prompts.prefix import apply_cep, get_cep
    from cep_core.training.dataset import tokenize_examples
    from cep_core.training.tiny import build_bpe_tokenizer, tokenizer_corpus

    datasets.disable_caching()
    cep = get_cep("compact")
    files = [f for f in resolve_source(ns.data) if f.endswith(".jsonl")]
    prepared = prepare(files, cep=cep, holdout_fraction=0)
    tokenizer = build_bpe_tokenizer(tokenizer_corpus(ex.messages for ex in prepared.train))
    rows = prepared.rows

    def ours() -> int:
        p = prepare(files, cep=cep, holdout_fraction=0)
        features, _ = tokenize_examples(p.train, tokenizer, 4096)
        return len(features)

    def convert(row):
        try:
            return {"messages": apply_cep(row_to_messages(row), cep), "ok": True}
        except SkipRow:
            return {"messages": [], "ok": False}

    def reference() -> int:
        with tempfile.TemporaryDirectory() as cache:
            ds = datasets.load_dataset("json", data_files=files, split="train", cache_dir=cache)
            ds = ds.map(convert, remove_columns=ds.column_names).filter(lambda r: r["ok"])
            ds = ds.map(lambda r: {"input_ids": tokenizer.apply_chat_template(r["messages"], tokenize=True)})
            return len(ds)

    timings = {}
    for name, fn in (("ours", ours), ("reference (datasets map)", reference)):
        best = float("inf")
        for _ in range(ns.repeat):
            start = time.perf_counter()
            kept = fn()
            best = min(best, time.perf_counter() - start)
        timings[name] = rows / best
        print(f"{name}: {rows / best:,.0f} rows/s ({kept} of {rows} rows kept, best of {ns.repeat})")
    values = list(timings.values())
    print(f"ratio ours/reference: {values[0] / values[1]:.2f}")


if __name__ == "__main__":
    main()
