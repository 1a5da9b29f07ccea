"""Tool signatures in the system prompt: one rendering, used by training data, evaluation and trace export.

Tools arrive in three shapes — OpenAI (`{"type": "function", "function": {...}}`), bare (`{"name", "description",
"parameters"}`) and BFCL (bare, with BFCL's type names `dict`, `float`, `tuple`, `any`). They are normalised to
OpenAI's shape with JSON-Schema types, rendered Hermes-style inside `<tools></tools>`, and followed by the target
call format, so the model sees one convention whatever the source.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cep_core.formats.jsonish import loads_lenient

TOOLS_PREAMBLE = (
    "You are a function calling AI model. You are provided with function signatures within <tools></tools> "
    "XML tags. You may call one or more functions to assist with the user query. Don't make assumptions about "
    "what values to plug into functions."
)
CALL_INSTRUCTION = (
    'For each function call, write <tool_call name="FUNCTION_NAME">{"argument": "value"}</tool_call> '
    "with the arguments as one JSON object. If no function fits, answer without calling one."
)

STRUCTURED_INSTRUCTION = (
    "Answer with the arguments for a call to the function {name} as one JSON object matching this JSON "
    "schema, and nothing else.\nFunction: {name} - {description}\nSchema: {schema}"
)

_BFCL_TO_JSON_SCHEMA = {"dict": "object", "float": "number", "tuple": "array", "any": None}
_TOOLS_BLOCK = re.compile(r"<tools>\s*(.*?)\s*</tools>", re.DOTALL)


def function_of(tool: dict[str, Any]) -> dict[str, Any]:
    """The function description inside an OpenAI-style tool, or the tool itself when bare."""
    if isinstance(tool.get("function"), dict):
        return tool["function"]
    return tool


def to_json_schema(schema: Any) -> Any:
    """A BFCL parameter schema with JSON-Schema type names (recursively); other schemas pass unchanged."""
    if isinstance(schema, list):
        return [to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str) and value in _BFCL_TO_JSON_SCHEMA:
            mapped = _BFCL_TO_JSON_SCHEMA[value]
            if mapped is not None:
                out[key] = mapped
        elif key in ("properties",) and isinstance(value, dict):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = to_json_schema(value)
        else:
            out[key] = value
    return out


def normalize_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's tool shape with JSON-Schema types."""
    fn = function_of(tool)
    out = {"name": fn.get("name", ""), "description": fn.get("description", "")}
    if "parameters" in fn:
        out["parameters"] = to_json_schema(fn["parameters"])
    return {"type": "function", "function": out}


def render_tools_prompt(tools: list[dict[str, Any]], system_prompt: str | None = None) -> str:
    """The system prompt with the tools block and the call format, after the user's own system text."""
    lines = [TOOLS_PREAMBLE, "<tools>"]
    lines.extend(json.dumps(normalize_tool(t), ensure_ascii=False) for t in tools)
    lines.extend(["</tools>", CALL_INSTRUCTION])
    block = "\n".join(lines)
    base = (system_prompt or "").strip()
    return f"{base}\n\n{block}" if base else block


def tools_from_system_prompt(text: str) -> list[dict[str, Any]]:
    """The tools listed inside `<tools>…</tools>` of a system prompt (JSON or Python-literal; one list or one per line)."""
    # Prompts mention the tags in prose first ("within <tools></tools> XML tags"): take the first block that
    # holds tools.
    for match in _TOOLS_BLOCK.finditer(text or ""):
        tools = _tools_in(match.group(1))
        if tools:
            return tools
    return []


def _tools_in(body: str) -> list[dict[str, Any]]:
    value, _ = loads_lenient(body)
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    if isinstance(value, dict):
        return [value]
    tools: list[dict[str, Any]] = []
    for line in body.splitlines():
        item, _ = loads_lenient(line)
        if isinstance(item, dict):
            tools.append(item)
    return tools


def structured_prompt(
    function: dict[str, Any], schema: dict[str, Any], messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The conversation asking for one function's arguments as one raw JSON object (the structured track's
    prompt, in evaluation and in training alike)."""
    instruction = STRUCTURED_INSTRUCTION.format(
        name=function.get("name", ""),
        description=(function.get("description") or "").strip(),
        schema=json.dumps(schema, ensure_ascii=False),
    )
    system = next((m.get("content") for m in messages if m.get("role") == "system"), None)
    content = (
        f"{system.strip()}\n\n{instruction}" if isinstance(system, str) and system.strip() else instruction
    )
    rest = [
        {"role": m.get("role"), "content": m.get("content")} for m in messages if m.get("role") != "system"
    ]
    return [{"role": "system", "content": content}, *rest]
