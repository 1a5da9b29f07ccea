"""Secrets out before anything is stored: API keys, tokens, Authorization headers, private keys and values
assigned to secret-named keys (`password=…`, `"api_key": "…"`).

Each match is replaced by `[REDACTED:<kind>]` and counted, so a trace records how many secrets it held
without holding them. Users add their own patterns (a regex string, a compiled pattern, or a
`(kind, pattern)` pair). Redaction applies to every string in nested data (dict values and keys, lists),
which covers metadata and tool-call arguments; in nested data, the value of a key named like a secret
(`{"password": "hunter2"}`) is replaced whole, since its text alone looks like nothing.

The provider token shapes follow Yelp's detect-secrets 1.5.0 plugins (Apache-2.0: slack, jwt, stripe,
sendgrid, gitlab_token, npm, pypi_token, twilio, square_oauth, azure_storage_key, basic_auth, keyword),
(also mailchimp, telegram, discord) re-expressed here rather than imported: importing detect-secrets costs ~200 ms and pulls in requests, and the
tracer must stay light. The test suite uses detect-secrets itself as an oracle: whatever its plugins find in
the test corpus, the redactor removes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

PatternSpec = str | re.Pattern[str] | tuple[str, str | re.Pattern[str]]
SECRET_GROUPS = ("secret", "s2", "s3", "s4")  # a match redacts the first of these groups that took part


def _keyword(key: str) -> str:
    """A name matching `key` (any prefix: `DB_PASSWORD`, `x-api-key`) assigned a value, its value the `secret`
    group (or s2-s4). The pattern starts at the name's literal, so the regex engine scans for it quickly."""
    quote = r"\\?[\"'`]"
    unquoted = r"(?!(?:null|none|true|false)\b)(?!\[REDACTED)[^\s'\"`,;&<>)}\]\\]+"
    wordlike = r"(?=[^\s'\"`,;&]*[^\sA-Za-z'\"`,;&])" + unquoted  # after a bare colon: a digit or a symbol
    return (
        rf"(?i:{key})(?:{quote})?(?:\[\])?\s*"
        rf"(?:(?::=|=>?)\s*(?:(?P<q1>{quote})(?P<secret>(?!\[REDACTED)[^\"'`\\\n]+)(?P=q1)|(?P<s2>{unquoted}))"
        rf"|:\s*(?:(?P<q3>{quote})(?P<s3>(?!\[REDACTED)[^\"'`\\\n]+)(?P=q3)|(?P<s4>{wordlike})))"
    )


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
    (
        "slack_token",
        r"(?<![A-Za-z0-9])(?:xox[abposre]-(?:\d+-)+[A-Za-z0-9-]+|xoxe\.xox[bp]-\d-[A-Za-z0-9]{20,}|"
        r"xapp-\d-[A-Z0-9]+-\d+-[a-f0-9]+|https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9_/]+)",
    ),
    ("jwt", r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_=-]{8,}\.[A-Za-z0-9_=-]{2,}\.[A-Za-z0-9_=+/-]*"),
    ("stripe_key", r"(?<![A-Za-z0-9])(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}"),
    ("sendgrid_key", r"(?<![A-Za-z0-9])SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"),
    (
        "gitlab_token",
        r"(?<![A-Za-z0-9])(?:(?:glpat|gldt|glft|glsoat|glrt|glcbt|glimt|glptt|glagent|gloas)-[A-Za-z0-9_-]{20,}|"
        r"GR1348941[A-Za-z0-9_-]{20,})",
    ),
    ("npm_token", r"(?<![A-Za-z0-9])npm_[A-Za-z0-9]{36}"),
    ("pypi_token", r"(?<![A-Za-z0-9])pypi-AgE[A-Za-z0-9_-]{50,}"),
    ("google_api_key", r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_-]{35}"),
    ("twilio_key", r"(?:AC|SK)(?<![A-Za-z0-9]..)[0-9a-f]{32}(?![A-Za-z0-9])"),  # literal first: scans fast
    ("square_token", r"(?<![A-Za-z0-9])sq0(?:csp|atp)-[0-9A-Za-z_-]{22,43}"),
    ("azure_storage_key", r"(?i:AccountKey)=(?P<secret>[A-Za-z0-9+/=]{86,88})"),
    (
        "url_password",  # https://user:PASSWORD@host, and curl's -u/--user user:PASSWORD
        r"(?<=[A-Za-z0-9])://[^\s:/@\[\]]+:(?P<secret>[^\s@/\[\]]+)@"
        r"|(?:(?<=\s)-u|--user)[\s=]+[^\s:'\"\[\]]+:(?P<s2>(?!\[REDACTED)[^\s'\"\[\]]+)",
    ),
    ("mailchimp_key", r"(?<![A-Za-z0-9])[0-9a-f]{32}-us[0-9]{1,2}(?![0-9])"),
    ("telegram_bot_token", r":(?<=[0-9]{8}:)(?P<secret>[0-9A-Za-z_-]{35})(?![0-9A-Za-z_-])"),
    ("discord_bot_token", r"[MNO](?<![\w-].)[\w-]{23,25}\.[\w-]{6}\.[\w-]{27}(?![\w-])"),
    # Values of keys named like secrets (detect-secrets' keyword plugin): `DB_PASSWORD=…`, `"api_key": "…"`,
    # `token=…&` in a URL, `password: s3cr3t!` in YAML. A bare word after a colon counts only when it holds a
    # digit or a symbol (`password: reset it` is prose); after `=` or in quotes any value does.
    ("password", _keyword(r"(?:password|passwd|pwd|passphrase|_pass)[\w-]*")),
    ("secret", _keyword(r"secret[\w-]*")),
    ("api_key", _keyword(r"(?:api|auth|access|private|client|service|account)[_-]?key")),
    ("token", _keyword(r"token")),
]


# Substrings (lower-cased) without which a built-in pattern cannot match: checked with `in`, which is far
# cheaper than running the regex, so text without a secret costs one lower() and a few substring tests. Each
# kind has gates (one must be in the text) and, for kinds with many prefixes, the prefixes themselves, tested
# only when a gate is there: ordinary text pays for the gates alone. A gate in upper case is tested against the
# text as written (Twilio's AC/SK prefixes: their lower-case forms are in every other word).
_GITLAB = ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "glcbt-", "glimt-", "glptt-", "glagent-", "gloas-")
_KEY_FAMILIES = ("api", "auth", "access", "private", "client", "service", "account")
_TRIGGERS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "private_key": (("private key",), None),
    "anthropic_key": (("sk-ant-",), None),
    "openai_key": (("sk-",), None),
    "huggingface_token": (("hf_",), None),
    "github_token": (("gh",), ("github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    "aws_access_key_id": (("akia", "asia", "abia", "acca", "aroa", "aida"), None),
    "aws_secret_access_key": (("secret",), None),
    "authorization_header": (("authorization",), None),
    "bearer_token": (("bearer",), None),
    "slack_token": (("xox", "xapp-", "hooks.slack.com"), None),
    "jwt": (("eyj",), None),
    "stripe_key": (("k_live_", "k_test_"), None),
    "sendgrid_key": (("sg.",), None),
    "gitlab_token": (("gl", "gr1348941"), (*_GITLAB, "gr1348941")),
    "npm_token": (("npm_",), None),
    "pypi_token": (("pypi-age",), None),
    "google_api_key": (("aiza",), None),
    "twilio_key": (("AC", "SK"), None),  # upper case: tested against the text as written
    "square_token": (("sq0",), None),
    "azure_storage_key": (("accountkey=",), None),
    "url_password": (("://", "-u", "--user"), None),
    "mailchimp_key": (("-us",), None),
    "telegram_bot_token": ((":",), None),
    "discord_bot_token": (("M", "N", "O"), None),
    "password": (("pass", "pwd"), ("password", "passwd", "pwd", "passphrase", "_pass")),
    "secret": (("secret",), None),
    "api_key": (("key",), tuple(f"{f}{sep}key" for f in _KEY_FAMILIES for sep in ("_", "-", ""))),
    "token": (("token",), None),
}
# Keys whose value, in nested data, is a secret whole (`{"password": "hunter2"}`): names that end like these
# (`DB_PASSWORD`, `x-api-key`, `access_token`); the kind is the group's name.
SECRET_KEY = re.compile(
    r"(?i)(?:(?P<password>password|passwd|pwd|passphrase|_pass)[\w-]*|(?P<secret>secret)[\w-]*|"
    r"(?P<api_key>(?:api|auth|access|private|client|service|account)[_-]?key)|(?P<token>token))\Z"
)
_KEY_MARKERS = {kind: f"[REDACTED:{kind}]" for kind in ("password", "secret", "api_key", "token")}
_SHORTEST_BUILTIN = 16  # no token-shaped built-in pattern matches fewer characters than this
_SHORTEST_KEYWORD = 5  # an assignment to a secret-named key can be short (`pwd=x`)
_KEYWORD_KINDS = ("password", "secret", "api_key", "token")


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
            (
                kind,
                re.compile(p, re.DOTALL),
                *_TRIGGERS[kind],
                _TRIGGERS[kind][0][0].isupper(),
                _replacer(kind),
            )
            for kind, p in BUILTIN_PATTERNS
        ]
        self._short = [entry for entry in self._builtin if entry[0] in _KEYWORD_KINDS]
        self._custom: list[tuple[str, re.Pattern[str], Callable[[re.Match[str]], str]]] = []
        self.patterns = [(kind, pattern) for kind, pattern, *_ in self._builtin]
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
        size = len(value)
        if size >= _SHORTEST_BUILTIN:
            kinds = self._builtin
        elif size >= _SHORTEST_KEYWORD:  # short strings (most of a tool schema): only `pwd=x` assignments
            low = value.lower()
            hinted = "pass" in low or "pwd" in low or "secret" in low or "key" in low or "token" in low
            kinds = self._short if hinted else []
        else:
            kinds = []
        if kinds:
            low = value.lower()
            for _kind, pattern, gates, prefixes, cased, replace in kinds:
                where = value if cased else low
                for gate in gates:  # a loop, not any(): this runs for every string of every capture
                    if gate in where:
                        break
                else:
                    continue
                if prefixes is not None and not any(p in low for p in prefixes):
                    continue
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
                named = None
                if isinstance(key, str):
                    low_key = key.lower()
                    if (
                        "pass" in low_key
                        or "pwd" in low_key
                        or "secret" in low_key
                        or "key" in low_key
                        or ("token" in low_key)
                    ):  # every SECRET_KEY name holds one of these: most keys stop here
                        named = SECRET_KEY.search(key)
                if isinstance(key, str):
                    key, n = self.text(key)
                    total += n
                if named and _is_secret_value(item):
                    red, n = self.text(item) if isinstance(item, str) else (item, 0)
                    # A value a pattern recognises keeps that kind (a GitHub token under "token"); else it is
                    # hidden whole under the key's kind.
                    out[key] = red if n else _KEY_MARKERS[named.lastgroup or "secret"]
                    total += n or 1
                    continue
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


def _is_secret_value(value: Any) -> bool:
    """A scalar worth hiding under a secret-named key (not null, not a flag, not empty, not already hidden)."""
    if isinstance(value, str):
        return bool(value.strip()) and not value.startswith("[REDACTED:")
    return isinstance(value, int | float) and not isinstance(value, bool)


def _replacer(kind: str):
    marker = f"[REDACTED:{kind}]"

    def replace(match: re.Match[str]) -> str:
        names = match.re.groupindex
        for group in SECRET_GROUPS:
            if group in names and match.group(group) is not None:
                start, end = match.span(group)
                whole_start = match.start()
                text = match.group(0)
                return text[: start - whole_start] + marker + text[end - whole_start :]
        return marker

    return replace


DEFAULT_REDACTOR = Redactor()


def redact_text(value: str) -> str:
    """Redact with the built-in patterns only (for log lines and error messages)."""
    return DEFAULT_REDACTOR.text(value)[0]
