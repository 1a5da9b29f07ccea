"""Generation throughput of the hf backend with the built-in tiny model: batched against unbatched, one run.

The prompts are real eval prompts (the BFCL simple_python set with the compact CEP when ../shared/data is
present, else the packaged demo set), rendered by the chat template exactly as `cep eval` renders them. Both
modes generate the same number of new tokens per prompt (greedy, fixed max_new_tokens), on the same model,
in the same process; the reference is the unbatched run (batch_size 1), and the ratio is batched / unbatched.

    python benchmarks/eval_throughput.py [--run RUN_DIR] [--n 32] [--batch-size 8] [--max-new-tokens 32]

--run evaluates a training run's tiny-base + adapter; without it an untrained tiny model is built on the fly.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from cep_core.evaluation.backends import Request  # noqa: E402
from cep_core.evaluation.config import SetSpec  # noqa: E402
from cep_core.evaluation.sets import load_set  # noqa: E402
from cep_core.prompts.prefix import apply_cep, get_cep  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BFCL = ROOT.parent / "shared" / "data" / "bfcl"


def prompts(n: int) -> tuple[str, list[Request]]:
    if BFCL.is_dir():
        os.environ.setdefault("CEP_BFCL_DIR", str(BFCL))
        source = "bfcl:simple_python"
    else:
        source = str(ROOT / "cep_core" / "data" / "samples" / "demo_toolcall.jsonl")
    examples = load_set(SetSpec(source, sample=n, seed=0)).examples
    cep = get_cep("compact")
    return source, [Request(ex.id, apply_cep(ex.messages, cep)) for ex in examples]


def build_untrained(requests: list[Request], folder: Path) -> Path:
    from cep_core.training.tiny import build_bpe_tokenizer, build_tiny_model, tokenizer_corpus

    tokenizer = build_bpe_tokenizer(tokenizer_corpus(r.messages for r in requests))
    model = build_tiny_model(tokenizer, seed=0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def measure(backend, requests: list[Request]) -> float:
    start = time.perf_counter()
    out = backend.generate(requests)
    elapsed = time.perf_counter() - start
    assert len(out) == len(requests)
    return len(requests) / elapsed


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", help="a training run directory (uses its tiny-base/ and adapter/)")
    parser.add_argument("--n", type=int, default=32, help="prompts (default 32)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds; the best of each mode counts"
    )
    args = parser.parse_args()

    import torch

    from cep_core.evaluation.backends.hf import HfBackend

    source, requests = prompts(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        if args.run:
            model, adapter = str(Path(args.run) / "tiny-base"), str(Path(args.run) / "adapter")
        else:
            model, adapter = str(build_untrained(requests, Path(tmp))), None

        def backend(batch_size: int) -> HfBackend:
            # min_new_tokens = max_new_tokens: every prompt gets the same work in both modes, eos or not.
            b = HfBackend(
                model, adapter, batch_size=batch_size, max_new_tokens=args.max_new_tokens, device="cpu"
            )
            b.model.generation_config.min_new_tokens = args.max_new_tokens
            return b

        unbatched, batched = backend(1), backend(args.batch_size)
        measure(batched, requests[: args.batch_size])  # warm-up (kernels, allocator)
        refs, fasts = [], []
        for _ in range(args.rounds):  # alternating, so a burst of load elsewhere hits both modes alike
            refs.append(measure(unbatched, requests))
            fasts.append(measure(batched, requests))
    ref, fast = max(refs), max(fasts)
    print(
        f"eval generation throughput — {len(requests)} prompts from {source}, compact CEP, "
        f"{args.max_new_tokens} new tokens each, greedy, CPU ({torch.get_num_threads()} threads), "
        f"best of {args.rounds} alternating rounds"
    )
    print(f"model: {model}{' + adapter' if adapter else ' (untrained tiny)'}")
    print(f"  unbatched (batch 1, reference): {ref:8.2f} examples/s   rounds: {_fmt(refs)}")
    print(f"  batched (batch {args.batch_size}):            {fast:8.2f} examples/s   rounds: {_fmt(fasts)}")
    print(f"  ratio batched/unbatched:        {fast / ref:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
