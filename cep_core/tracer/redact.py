"""Secrets out before anything is stored: API keys, tokens, Authorization headers and private keys.

Each match is replaced by `[REDACTED:<kind>]` and counted, so a trace records how many secrets it held
without holding them. Users add their own patterns (a regex string, a compiled pattern, or a
`(kind, pattern)` pair). Redaction applies to every string in nested data (dict values and keys, lists),
which covers metadata and tool-call arguments.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

PatternSpec = str | re.Pattern[str] | tuple[str, str | re.Pattern[str]]

# Order matters: the more specific kinds come first (Anthropic's `sk-ant-` before OpenAI's `sk-`).
# Token prefixes must not follow a letter or digit ("task-management-…" is no key) but may follow `_`
# (`MY_KEY_sk-…`). A pattern with a group named `secret` redacts only that group, keeping the context (a header name).
BUILTIN_PATTERNS: list[tuple[str, str]] = [
    (
        "private_key",
        r"-----BEGIN (?P<label>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----(?:.*?-----END (?P=label)-----|.*\Z)",
    ),
    ("anthropic_key", r"(?<![A-Za-z0-9])sk-ant-[A-Za-z0-9_\-]{20,}"),
    ("openai_key", r"(?<![A-Za-z0-9])sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}"),
    ("huggingface_token", r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}"),
    ("github_token", r"(?<![A-Za-z0-9])(?:github_pat_[A-Za-z0-9_]{22,}|gh[pousr]_[A-Za-z0-9]{36,})"),
    ("aws_access_key_id", r"\b(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[0-9A-Z]{16}\b"),
    (
        "aws_secret_access_key",
        r"(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key)[\"']?\s*[:=]\s*[\"']?(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
    ),
    (
        "authorization_header",
        r"(?i:\b(?:proxy-)?authorization)[\"']?\s*[:=]\s*[\"']?(?i:bearer|basic|token|digest)\s+(?P<secret>[A-Za-z0-9._~+/\-]+=*)",
    ),
    ("bearer_token", r"(?i:\bbearer)\s+(?P<secret>[A-Za-z0-9._~+/\-]{20,}=*)"),
]


# Substrings (lower-cased) without which a built-in pattern cannot match: checked with `in`, which is far
# cheaper than running the regex, so text without a secret costs one lower() and a few substring tests.
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "private_key": ("private key",),
    "anthropic_key": ("sk-ant-",),
    "openai_key": ("sk-",),
    "huggingface_token": ("hf_",),
    "github_token": ("github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    "aws_access_key_id": ("akia", "asia", "abia", "acca", "aroa", "aida"),
    "aws_secret_access_key": ("secret",),
    "authorization_header": ("authorization",),
    "bearer_token": ("bearer",),
}
_SHORTEST_BUILTIN = 16  # no built-in pattern matches fewer characters than this


def _compile(spec: PatternSpec, index: int) -> tuple[str, re.Pattern[str]]:
    if isinstance(spec, tuple):
        kind, pattern = spec
    else:
        kind, pattern = f"custom_{index}", spec
    compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.DOTALL)
    return kind, compiled


@dataclass
class Redactor:
    """Replaces secrets in text and nested data; counts what it replaced."""

    extra: Iterable[PatternSpec] = ()
    patterns: list[tuple[str, re.Pattern[str]]] = field(init=False)

    def __post_init__(self) -> None:
        self._builtin = [
            (kind, re.compile(p, re.DOTALL), _TRIGGERS[kind], _replacer(kind)) for kind, p in BUILTIN_PATTERNS
        ]
        self._custom: list[tuple[str, re.Pattern[str], Callable[[re.Match[str]], str]]] = []
        self.patterns = [(kind, pattern) for kind, pattern, _, _ in self._builtin]
        for i, spec in enumerate(self.extra):
            self.add(spec, index=i)

    def add(self, spec: PatternSpec, *, index: int | None = None) -> None:
        """Add a user pattern (kept after the built-in ones)."""
        kind, pattern = _compile(spec, len(self._custom) if index is None else index)
        self._custom.append((kind, pattern, _replacer(kind)))
        self.patterns.append((kind, pattern))

    def text(self, value: str) -> tuple[str, int]:
        """`value` with every secret replaced, and how many were replaced."""
        total = 0
        if len(value) >= _SHORTEST_BUILTIN:
            low = value.lower()
            for _kind, pattern, triggers, replace in self._builtin:
                if any(t in low for t in triggers):
                    value, n = pattern.subn(replace, value)
                    if n:
                        total += n
                        low = value.lower()
        for _kind, pattern, replace in self._custom:
            value, n = pattern.subn(replace, value)
            total += n
        return value, total

    def data(self, value: Any) -> tuple[Any, int]:
        """A copy of nested JSON-like data with every string redacted, and the count."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            total = 0
            for key, item in value.items():
                if isinstance(key, str):
                    key, n = self.text(key)
                    total += n
                out[key], n = self.data(item)
                total += n
            return out, total
        if isinstance(value, list | tuple):
            items = []
            total = 0
            for item in value:
                red, n = self.data(item)
                items.append(red)
                total += n
            return items, total
        return value, 0


def _replacer(kind: str):
    marker = f"[REDACTED:{kind}]"

    def replace(match: re.Match[str]) -> str:
        if "secret" in match.re.groupindex and match.group("secret") is not None:
            start, end = match.span("secret")
            whole_start = match.start()
            text = match.group(0)
            return text[: start - whole_start] + marker + text[end - whole_start :]
        return marker

    return replace


DEFAULT_REDACTOR = Redactor()


def redact_text(value: str) -> str:
    """Redact with the built-in patterns only (for log lines and error messages)."""
    return DEFAULT_REDACTOR.text(value)[0]
