"""`cep serve TARGET`: an OpenAI-compatible /v1/chat/completions endpoint for a trained model.

cep serve TARGET [--host 127.0.0.1] [--port 8000] [--cep VARIANT|FILE|none] [--engine auto|transformers|vllm]
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a run, an exported folder or a model on an OpenAI-compatible endpoint",
        description="Serve a trained model on /v1/chat/completions so an agent can swap it in: the request's "
        "`tools` are rendered into the system prompt as in training, the CEP the model was trained with is "
        "applied, and target-format calls come back as OpenAI `tool_calls`. TARGET: a folder `cep export` "
        "wrote, a training run (base + adapter), or a model (builtin:smollm2, a folder, a Hub id).",
    )
    p.add_argument("target", metavar="TARGET", help="an export folder, a training run, or a model")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this host only)"
    )
    p.add_argument(
        "--port", type=int, default=8000, help="port to listen on (default 8000; 0 picks a free one)"
    )
    p.add_argument(
        "--cep",
        metavar="VARIANT|FILE|none",
        help="the CEP to apply (default: the one the model was trained with; none for a plain model)",
    )
    p.add_argument(
        "--engine",
        choices=("auto", "transformers", "vllm"),
        default="auto",
        help="generation engine (auto: vLLM where it is installed on a GPU host, else transformers)",
    )
    p.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="transformers engine device"
    )
    p.add_argument(
        "--max-tokens", type=int, default=512, help="completion tokens when a request sets no max_tokens"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cep_core.cli.options import quiet_library_progress, stderr_console
    from cep_core.serve.engine import build_engine
    from cep_core.serve.server import ChatServer
    from cep_core.serve.target import resolve_target

    quiet_library_progress()
    err = stderr_console()
    target = resolve_target(args.target, args.cep)
    with err.status(f"loading {target.model}" + (f" + {target.adapter}" if target.adapter else "")):
        engine = build_engine(target, args.engine, device=args.device, max_new_tokens=args.max_tokens)
    server = ChatServer((args.host, args.port), target, engine)
    described = engine.describe()
    cep_name = target.cep.name if target.cep else "none"
    # One line each, never wrapped: scripts read the URL from here (--port 0 picks a free port).
    err.print(
        f"serving {target.name} ({target.kind}; CEP {cep_name}; {described.get('engine')} on "
        f"{described.get('device', 'gpu')})",
        soft_wrap=True,
    )
    err.print(f"listening at {server.url}", soft_wrap=True, highlight=False)
    err.print(
        f"  try: curl {server.url}/chat/completions -H 'Content-Type: application/json' "
        """-d '{"messages": [{"role": "user", "content": "hello"}]}'""",
        soft_wrap=True,
    )
    err.print("  Ctrl-C stops it", soft_wrap=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
