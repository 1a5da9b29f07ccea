"""Rows to chat messages: Hermes conversations, OpenAI-style messages, json-mode rows and BFCL entries.

Hermes tool calls can be rewritten into the target format (the default), keeping argument values exactly,
so the model learns one format. A row that cannot be used raises SkipRow with a short reason that the
preparation step counts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cep_core.data.bfcl import BfclEntry, gold_calls, rule_for, structured_case
from cep_core.formats.jsonish import loads_lenient
from cep_core.formats.toolcalls import CallFormat, parse_tool_calls, render
from cep_core.prompts.toolprompt import render_tools_prompt, tools_from_system_prompt

HERMES_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
    "function_response": "tool",
}
_HERMES_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_TOOLS_BLOCK = re.compile(r"<tools>(.*?)</tools>", re.DOTALL)
_HERMES_BOILERPLATE = re.compile(r"^\s*You are a function calling AI model\b", re.IGNORECASE)


# What a model answers when no function fits the request (BFCL's irrelevance entries): no call, one short line.
NO_CALL_ANSWER = "None of the available functions can help with this request, so I will not call one."


class SkipRow(ValueError):
    """A row that cannot be trained on; `reason` is the key it is counted under."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def row_to_messages(row: dict[str, Any], tool_format: str = "target") -> list[dict[str, Any]]:
    """Chat messages for one dataset row (Hermes `conversations`, or OpenAI-style `messages`)."""
    if isinstance(row.get("conversations"), list):
        messages = _hermes_messages(row["conversations"])
    elif isinstance(row.get("messages"), list):
        messages = _openai_messages(row["messages"])
    else:
        raise SkipRow("no_conversation", "the row has neither 'conversations' nor 'messages'")
    while messages and messages[-1]["role"] != "assistant":
        messages.pop()
    if not messages:
        raise SkipRow("no_assistant_turn")
    if tool_format == "target":
        messages = [_to_target(m) for m in messages]
    if row.get("schema") and not _is_json(messages[-1]["content"]):
        raise SkipRow("unparseable_json_answer", "a json-mode row whose answer is not JSON")
    return messages


def _hermes_messages(turns: list[Any]) -> list[dict[str, Any]]:
    out = []
    for turn in turns:
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            raise SkipRow("bad_turn", "a turn without a string 'value'")
        role = HERMES_ROLES.get(str(turn.get("from", "")).lower())
        if role is None:
            raise SkipRow("unknown_role", str(turn.get("from")))
        out.append({"role": role, "content": turn["value"]})
    return out


def _openai_messages(turns: list[Any]) -> list[dict[str, Any]]:
    out = []
    for turn in turns:
        if not isinstance(turn, dict) or not isinstance(turn.get("content"), str):
            raise SkipRow("bad_turn", "a message without string 'content'")
        role = HERMES_ROLES.get(str(turn.get("role", "")).lower())
        if role is None:
            raise SkipRow("unknown_role", str(turn.get("role")))
        out.append({"role": role, "content": turn["content"]})
    return out


def _to_target(message: dict[str, Any]) -> dict[str, Any]:
    if message["role"] == "system":
        return {**message, "content": rewrite_system_prompt(message["content"])}
    if message["role"] == "assistant" and "<tool_call>" in message["content"]:
        return {**message, "content": rewrite_hermes_calls(message["content"])}
    return message


def rewrite_hermes_calls(text: str) -> str:
    """Each Hermes `<tool_call>…</tool_call>` block replaced by target-format calls with the same arguments."""

    def one(match: re.Match[str]) -> str:
        body = match.group(1).strip()
        # Some dataset rows escape the newlines inside the block ("\\n" as two characters).
        body = body.removeprefix("\\n").removesuffix("\\n").strip()
        parsed = parse_tool_calls(f"<tool_call>\n{body}\n</tool_call>", expected=CallFormat.HERMES)
        if not parsed.calls or any(not c.name for c in parsed.calls):
            raise SkipRow("unparseable_tool_call", body[:80])
        return render(parsed.calls, CallFormat.TARGET)

    rewritten = _HERMES_BLOCK.sub(one, text)
    if "<tool_call>" in rewritten:  # an opening tag without its closing tag
        raise SkipRow("unparseable_tool_call", "unclosed <tool_call>")
    return rewritten.strip()


def rewrite_system_prompt(text: str) -> str:
    """A Hermes tools prompt re-rendered the one project way (render_tools_prompt), in the target call format.

    The Hermes call-format instructions after `</tools>` are dropped (they teach the other format), and so is
    the stock "You are a function calling AI model" preamble, which render_tools_prompt writes itself.
    """
    found = find_tools(text)
    if found is None:
        return text
    tools, start = found
    residual = text[:start].strip()
    if _HERMES_BOILERPLATE.match(residual):
        residual = ""
    return render_tools_prompt(tools, residual or None)


def find_tools(text: str) -> tuple[list[dict[str, Any]], int] | None:
    """The first non-empty `<tools>` block of a system prompt and where it starts.

    Prompts often mention "<tools></tools>" in prose before the real block, so every block is tried in turn.
    """
    for match in _TOOLS_BLOCK.finditer(text):
        tools = tools_from_system_prompt(match.group(0))
        if tools:
            return tools, match.start()
    return None


def _is_json(text: str) -> bool:
    value, _ = loads_lenient(text)
    return isinstance(value, dict | list)


def bfcl_to_messages(entry: BfclEntry, tool_format: str = "target") -> list[dict[str, Any]]:
    """A BFCL question as a conversation whose assistant turn is the gold call(s).

    Irrelevance entries (no function fits, so no call is the right answer) become a plain answer without a call:
    a model trained only on calls learns to call something on every prompt."""
    if rule_for(entry.category) == "irrelevance":
        answer = NO_CALL_ANSWER
    elif not entry.ground_truth:
        raise SkipRow("no_gold_answer", f"{entry.category} entries have no answer to train on")
    else:
        answer = render(gold_calls(entry), tool_format)
    messages = [dict(m) for m in entry.messages if isinstance(m, dict)]
    system = next((m["content"] for m in messages if m.get("role") == "system"), None)
    rest = [
        {"role": m.get("role"), "content": m.get("content")} for m in messages if m.get("role") != "system"
    ]
    if not rest or any(not isinstance(m["content"], str) for m in rest):
        raise SkipRow("bad_turn", "a question message without string content")
    prompt = render_tools_prompt(entry.functions, system)
    return [
        {"role": "system", "content": prompt},
        *rest,
        {"role": "assistant", "content": answer},
    ]


def bfcl_to_structured_messages(entry: BfclEntry) -> list[dict[str, Any]]:
    """A simple BFCL entry as a structured-output conversation: the evaluation's bfcl-json prompt, answered
    with the gold call's arguments as one raw JSON object."""
    case = structured_case(entry)
    if case is None:
        raise SkipRow("not_one_call", f"{entry.id}: bfcl-json takes entries with one function and one call")
    messages, _schema, expected = case
    return [*messages, {"role": "assistant", "content": json.dumps(expected, ensure_ascii=False)}]
