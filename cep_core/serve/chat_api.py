"""The OpenAI chat-completions protocol, as far as a served small model needs it.

A request is checked field by field (an error names the field, never echoes a message's content) and becomes
the prompt the model was trained on: OpenAI `tools` rendered into the system prompt the one project way
(`toolprompt.render_tools_prompt`), earlier assistant `tool_calls` written back in the target format, and the
served CEP applied. The model's text becomes an OpenAI message: with `tools` in the request, the target-format
calls are parsed into `tool_calls` (content keeps only the prose around them, null when there is none); without
`tools`, nothing can be a call and the text is returned as it is — which is what `cep eval` (backend openai)
reads, so it scores exactly what the model wrote.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from cep_core.formats.toolcalls import CallFormat, ToolCall, parse_tool_calls, render
from cep_core.prompts.prefix import Cep, apply_cep
from cep_core.prompts.toolprompt import render_tools_prompt

ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_TOKENS_LIMIT = 32_768


class ApiError(Exception):
    """A request the server refuses: OpenAI's error shape, HTTP status 400 unless said otherwise."""

    def __init__(
        self, message: str, param: str | None = None, status: int = 400, kind: str = "invalid_request_error"
    ):
        super().__init__(message)
        self.param = param
        self.status = status
        self.kind = kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": None}}


@dataclass(slots=True)
class ChatRequest:
    """A checked request: the prompt messages to generate from and the generation settings."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    parse_calls: bool = False
    max_tokens: int | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    model: str = ""


def parse_request(body: Any, cep: Cep | None) -> ChatRequest:
    """A chat-completions body as the prompt the model was trained on, or an ApiError naming the field."""
    if not isinstance(body, dict):
        raise ApiError("the request body must be a JSON object")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise ApiError("messages must be a non-empty list", "messages")
    messages = [_message(m, i) for i, m in enumerate(raw_messages)]
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise ApiError("tools must be a list of tool objects", "tools")
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise ApiError("every tool needs a function name", f"tools[{i}].function.name")
    choice = body.get("tool_choice", "auto")
    if choice == "none":
        tools = []
    n = body.get("n", 1)
    if n not in (1, None):
        raise ApiError("only n = 1 is supported", "n")
    request = ChatRequest(
        messages=_with_tools(messages, tools),
        tools=tools,
        parse_calls=bool(tools),
        max_tokens=_int_or_none(body, ("max_completion_tokens", "max_tokens")),
        temperature=_number(body, "temperature", 0.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
        stop=_stop(body.get("stop")),
        stream=bool(body.get("stream", False)),
        model=str(body.get("model") or ""),
    )
    if cep is not None:
        request.messages = apply_cep(request.messages, cep)
    return request


def _message(raw: Any, index: int) -> dict[str, Any]:
    where = f"messages[{index}]"
    if not isinstance(raw, dict):
        raise ApiError("each message must be an object", where)
    role = raw.get("role")
    if role not in ROLES:
        raise ApiError(f"role must be one of {', '.join(ROLES)}", f"{where}.role")
    content = _text(raw.get("content"), f"{where}.content")
    if role == "assistant" and raw.get("tool_calls"):
        calls = _calls(raw["tool_calls"], f"{where}.tool_calls")
        content = "\n".join(p for p in (content, render(calls, CallFormat.TARGET)) if p)
    if role == "developer":
        role = "system"
    return {"role": role, "content": content}


def _text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only text parts can reach a text model
        texts = []
        for i, part in enumerate(content):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise ApiError("only text content parts are supported", f"{where}[{i}]")
            texts.append(part["text"])
        return "".join(texts)
    raise ApiError("content must be a string or a list of text parts", where)


def _calls(raw: Any, where: str) -> list[ToolCall]:
    if not isinstance(raw, list):
        raise ApiError("tool_calls must be a list", where)
    calls = []
    for i, item in enumerate(raw):
        fn = item.get("function") if isinstance(item, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise ApiError("a tool call needs function.name", f"{where}[{i}].function.name")
        args = fn.get("arguments", "{}")
        try:
            parsed = json.loads(args) if isinstance(args, str) else args
        except ValueError:
            raise ApiError(
                "function.arguments must be a JSON object string", f"{where}[{i}].function.arguments"
            ) from None
        if not isinstance(parsed, dict):
            raise ApiError("function.arguments must be a JSON object", f"{where}[{i}].function.arguments")
        calls.append(ToolCall(fn["name"], parsed))
    return calls


def _with_tools(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tools rendered into the system prompt (created if absent), as in training."""
    if not tools:
        return messages
    index = next((i for i, m in enumerate(messages) if m["role"] == "system"), None)
    if index is None:
        return [{"role": "system", "content": render_tools_prompt(tools)}, *messages]
    out = list(messages)
    system = out[index]["content"]
    if "<tools>" not in system:  # a prompt that lists the tools itself is left as written
        out[index] = {"role": "system", "content": render_tools_prompt(tools, system)}
    return out


def _int_or_none(body: dict[str, Any], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_TOKENS_LIMIT:
            raise ApiError(f"{name} must be an integer in 1..{MAX_TOKENS_LIMIT}", name)
        return value
    return None


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ApiError(f"{name} must be a number in [{low}, {high}]", name)
    return float(value)


def _stop(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(s, str) for s in value) and len(value) <= 4:
        return [s for s in value if s]
    raise ApiError("stop must be a string or a list of up to 4 strings", "stop")


def apply_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """The text cut at the first stop string (and whether it was cut)."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


@dataclass(slots=True)
class Completion:
    """What the engine produced for one request."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # stop | length


def response_message(request: ChatRequest, text: str) -> tuple[dict[str, Any], bool]:
    """The assistant message for `text` and whether it holds tool calls."""
    if not request.parse_calls:
        return {"role": "assistant", "content": text}, False
    parsed = parse_tool_calls(text, CallFormat.TARGET)
    calls = [c for c in parsed.calls if c.name]
    if not calls:
        return {"role": "assistant", "content": text}, False
    prose = _outside_calls(text).strip()
    message = {
        "role": "assistant",
        "content": prose or None,
        "tool_calls": [
            {
                "id": f"call_{secrets.token_hex(12)}",
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)},
            }
            for c in calls
        ],
    }
    return message, True


def _outside_calls(text: str) -> str:
    """The text with every <tool_call …>…</tool_call> (or an unclosed one, to the end) removed."""
    out, rest = [], text
    while True:
        start = rest.find("<tool_call")
        if start < 0:
            out.append(rest)
            return "".join(out)
        out.append(rest[:start])
        end = rest.find("</tool_call>", start)
        if end < 0:
            return "".join(out)
        rest = rest[end + len("</tool_call>") :]


def completion_body(request: ChatRequest, completion: Completion, model: str) -> dict[str, Any]:
    """A chat.completion object."""
    message, has_calls = response_message(request, completion.text)
    finish = "tool_calls" if has_calls and completion.finish_reason == "stop" else completion.finish_reason
    return {
        "id": f"chatcmpl-{secrets.token_hex(12)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "total_tokens": completion.prompt_tokens + completion.completion_tokens,
        },
    }


def stream_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A finished completion as chat.completion.chunk objects (the whole message in one delta, then the finish):
    clients that always stream get the same answer."""
    choice = body["choices"][0]
    delta = {k: v for k, v in choice["message"].items() if v is not None}
    if "tool_calls" in delta:
        delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(delta["tool_calls"])]
    base = {
        "id": body["id"],
        "object": "chat.completion.chunk",
        "created": body["created"],
        "model": body["model"],
    }
    return [
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}]},
        {
            **base,
            "choices": [
                {"index": 0, "delta": {}, "finish_reason": choice["finish_reason"], "logprobs": None}
            ],
            "usage": body["usage"],
        },
    ]
