"""The Context Engineering Prefix (CEP): formatting rules prepended to the system prompt.

The same text is used in training and at inference, so it lives here once, each variant with a stable
sha256 that run metadata and evaluation results record. A user may supply their own file instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cep_core.errors import InputError

OPEN_MARK = "<|formatting_rules|>"
CLOSE_MARK = "<|end_formatting_rules|>"

_JSON_RULES = """\
JSON OUTPUT
- Answer with one raw JSON object and nothing else: no markdown fences, no text before or after it.
- Use double quotes for keys and strings; true, false and null in lower case; no trailing commas.
- Use the exact field and parameter names from the schema or signature; never rename, translate or invent one.
- Give every required field; give a value of the type the schema names (a number is not a string)."""

_JSON_EXAMPLES = """\
  ❌ ```json
     {"city": "Paris"}
     ```
  ✅ {"city": "Paris"}
  ❌ Here is the result: {"city": "Paris"}
  ✅ {"city": "Paris"}
  ❌ {'city': 'Paris', 'metric': True}
  ✅ {"city": "Paris", "metric": true}
  ❌ {"location": "Paris"}   (the signature says "city")
  ✅ {"city": "Paris"}"""

_TOOL_RULES = """\
TOOL CALLS
- Call a tool with exactly this form, one tag per call:
  <tool_call name="FUNCTION_NAME">{"argument": "value"}</tool_call>
- Every call has an opening tag and a closing </tool_call> tag. Never write a self-closing tag.
- The arguments are one JSON object between the tags, never an arguments= attribute.
- Use the function name and parameter names exactly as the signature spells them; give every required one.
- For several independent calls, write several tags one after another.
- When no tool fits the request, do not call one; answer in plain text."""

_TOOL_EXAMPLES = """\
  ❌ <tool_call name="get_weather"/>
  ✅ <tool_call name="get_weather">{"city": "Paris"}</tool_call>
  ❌ <tool_call name="get_weather" arguments='{"city": "Paris"}'></tool_call>
  ✅ <tool_call name="get_weather">{"city": "Paris"}</tool_call>
  ❌ <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>
  ✅ <tool_call name="get_weather">{"city": "Paris"}</tool_call>
  ❌ ```xml
     <tool_call name="get_weather">{"city": "Paris"}</tool_call>
     ```
  ✅ <tool_call name="get_weather">{"city": "Paris"}</tool_call>
  ❌ <tool_call name="get_weather">{"location": "Paris"}</tool_call>   (the signature says "city")
  ✅ <tool_call name="get_weather">{"city": "Paris"}</tool_call>"""

_VERIFY = (
    "Verify before responding: the output parses, every tag is opened and closed, every name matches the "
    "signature exactly, and nothing surrounds the output."
)


def _block(*parts: str) -> str:
    return OPEN_MARK + "\n" + "\n\n".join(parts) + "\n" + CLOSE_MARK


VARIANT_TEXTS: dict[str, str] = {
    "universal": _block(
        "Follow these formatting rules exactly.",
        _JSON_RULES,
        "Examples:\n" + _JSON_EXAMPLES,
        _TOOL_RULES,
        "Examples:\n" + _TOOL_EXAMPLES,
        _VERIFY,
    ),
    "compact": _block(
        "Formatting rules:\n"
        "- JSON: one raw object, no ``` fences, no surrounding text, exact names from the schema.\n"
        '- Tool calls: <tool_call name="FUNC">{"arg": "value"}</tool_call>; always a closing tag; no '
        "self-closing tags; no arguments= attribute; exact names from the signature.\n"
        '  ❌ <tool_call name="f"/>   ✅ <tool_call name="f">{"x": 1}</tool_call>',
        _VERIFY,
    ),
    "structured": _block(
        "Follow these formatting rules exactly.", _JSON_RULES, "Examples:\n" + _JSON_EXAMPLES, _VERIFY
    ),
    "toolcall": _block(
        "Follow these formatting rules exactly.", _TOOL_RULES, "Examples:\n" + _TOOL_EXAMPLES, _VERIFY
    ),
}

VARIANTS: tuple[str, ...] = tuple(VARIANT_TEXTS)
NO_CEP = "none"


@dataclass(frozen=True, slots=True)
class Cep:
    """One prefix: its name (a variant, or the file it came from), its full text and its sha256."""

    name: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def get_cep(name_or_path: str | Path) -> Cep:
    """A built-in variant by name, or a user's file (wrapped in the markers if it lacks them)."""
    key = str(name_or_path)
    if key in VARIANT_TEXTS:
        return Cep(key, VARIANT_TEXTS[key])
    path = Path(key).expanduser()
    if not path.is_file():
        raise InputError(f"unknown CEP {key!r}: not one of {', '.join(VARIANTS)} and not a readable file")
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read CEP file: {exc}", path=path) from exc
    if not text:
        raise InputError("the CEP file is empty", path=path)
    if OPEN_MARK not in text:
        text = f"{OPEN_MARK}\n{text}\n{CLOSE_MARK}"
    return Cep(str(path), text)


def strip_cep(text: str) -> str:
    """`text` without any formatting-rules block (and the blank line that followed it)."""
    start = text.find(OPEN_MARK)
    if start < 0:
        return text
    end = text.find(CLOSE_MARK, start)
    if end < 0:
        return text
    return text[:start] + text[end + len(CLOSE_MARK) :].lstrip("\n")


def apply_cep(messages: list[dict[str, Any]], cep: Cep | None) -> list[dict[str, Any]]:
    """Messages with the CEP at the head of the system message (created if absent).

    Idempotent: applying the same CEP twice gives the same messages; applying another replaces the
    block that is there. `None` removes any block. The input list is not modified.
    """
    out = [dict(m) for m in messages]
    sys_index = next((i for i, m in enumerate(out) if m.get("role") == "system"), None)
    if sys_index is None:
        if cep is None:
            return out
        out.insert(0, {"role": "system", "content": cep.text})
        return out
    content = out[sys_index].get("content") or ""
    if not isinstance(content, str):
        content = str(content)
    base = strip_cep(content)
    if cep is None:
        out[sys_index]["content"] = base
    else:
        out[sys_index]["content"] = cep.text + ("\n\n" + base if base.strip() else "")
    return out


def apply_cep_text(system_prompt: str | None, cep: Cep | None) -> str:
    """The system prompt text with the CEP applied (same rules as apply_cep)."""
    msgs = apply_cep([{"role": "system", "content": system_prompt or ""}], cep)
    return msgs[0]["content"]
