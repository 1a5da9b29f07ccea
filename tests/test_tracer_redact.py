"""Redaction: every kind of secret is out of stored traces, exports, log lines and error messages."""

from __future__ import annotations

import json
import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cep_core.tracer import TraceCaptureError, WorkflowTracer
from cep_core.tracer import query as q
from cep_core.tracer.export import export_dataset
from cep_core.tracer.redact import Redactor

# Realistic shapes, assembled so that no scanner mistakes this file for a leak.
OPENAI_PROJECT = (
    "sk-"
    + "proj-"
    + "Zr4kQ8vN2mX6pL1tY9wB3cD7fH5jK0sA-"
    + "T3BlbkFJ"
    + "u8Gq2WcE6rT4yU1iO9pLmNbVcXzAsDfG_hJkL"
)
OPENAI_LEGACY = "sk-" + "aB3dE5fG7hJ9kL1mN3pQ5rS7" + "T3BlbkFJ" + "tU9vW1xY3zA5bC7dE9fG1h"
ANTHROPIC = (
    "sk-"
    + "ant-api03-"
    + "R2D2c3poBB8xKq7LmN4vZ9tY6wU1iO3pAsDfGhJkLzXcVbNm"
    + "QwErTyUiOpAsDfGhJkLzXcVbNmQwErTyUiOpAsDfGhJkLz-AbCdEfAA"
)
HUGGINGFACE = "hf_" + "xKqPZmTlRvWcYbNdJhGfEaUoIsQpLkMnBv"
AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
GITHUB_CLASSIC = "ghp_" + "16C7e42F292c6912E7710c838347Ae178B4a"
GITHUB_OAUTH = "gho_" + "16C7e42F292c6912E7710c838347Ae178B4a"
GITHUB_SERVER = "ghs_" + "16C7e42F292c6912E7710c838347Ae178B4a"
GITHUB_FINE = (
    "github_pat_" + "11ABCDEFG0aBcDeFgHiJkL_" + "mNoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ01234"
)
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    + "eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    + "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
BASIC = "dXNlcjpwYXNzd29yZDEyMw=="  # user:password123
PRIVATE_KEY = (
    "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
    "aFDrBz9vFqU4yQ1Xn8nGmJvQm2vRjfk2lZq3Yw==\n-----END RSA PRIVATE KEY-----"
)
OPENSSH_KEY = (
    "-----BEGIN "
    + "OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACDlY0ZV2ZhYXBiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6AAAAA\n-----END OPENSSH PRIVATE KEY-----"
)

SECRETS = [
    OPENAI_PROJECT,
    OPENAI_LEGACY,
    ANTHROPIC,
    HUGGINGFACE,
    AWS_KEY_ID,
    AWS_SECRET,
    GITHUB_CLASSIC,
    GITHUB_OAUTH,
    GITHUB_SERVER,
    GITHUB_FINE,
    JWT,
    BASIC,
    PRIVATE_KEY,
    OPENSSH_KEY,
]

CASES = [
    ("openai_key", f"export OPENAI_API_KEY={OPENAI_PROJECT}", OPENAI_PROJECT),
    ("openai_key", f'client = OpenAI(api_key="{OPENAI_LEGACY}")', OPENAI_LEGACY),
    ("anthropic_key", f"x-api-key: {ANTHROPIC}", ANTHROPIC),
    ("huggingface_token", f"huggingface-cli login --token {HUGGINGFACE}", HUGGINGFACE),
    ("aws_access_key_id", f"aws_access_key_id = {AWS_KEY_ID}", AWS_KEY_ID),
    ("aws_secret_access_key", f"[default]\naws_secret_access_key = {AWS_SECRET}\n", AWS_SECRET),
    ("aws_secret_access_key", f"AWS_SECRET_ACCESS_KEY={AWS_SECRET} python run.py", AWS_SECRET),
    ("aws_secret_access_key", f'{{"AccessKeyId": "ASIAXXX", "SecretAccessKey": "{AWS_SECRET}"}}', AWS_SECRET),
    ("github_token", f"git clone https://{GITHUB_CLASSIC}@github.com/acme/app.git", GITHUB_CLASSIC),
    ("github_token", f"GITHUB_TOKEN={GITHUB_OAUTH}", GITHUB_OAUTH),
    ("github_token", f"token {GITHUB_SERVER} expires soon", GITHUB_SERVER),
    ("github_token", f"gh auth login --with-token <<< {GITHUB_FINE}", GITHUB_FINE),
    ("authorization_header", f"curl -H 'Authorization: Bearer {JWT}' https://api.example.com", JWT),
    ("authorization_header", f'{{"headers": {{"Authorization": "Basic {BASIC}"}}}}', BASIC),
    ("bearer_token", f"use the bearer {JWT} for the next call", JWT),
    ("private_key", f"Here is my key:\n{PRIVATE_KEY}\nplease deploy", PRIVATE_KEY),
    ("private_key", f"id_ed25519:\n{OPENSSH_KEY}", OPENSSH_KEY),
]


@pytest.mark.parametrize(("kind", "text", "secret"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_kind_of_secret_is_replaced_and_counted(kind, text, secret):
    red, count = Redactor().text(text)
    assert secret not in red and f"[REDACTED:{kind}]" in red
    assert count >= 1
    # The context stays readable: the header name, the command, the surrounding prose.
    assert red.split("[REDACTED")[0] == text.split(secret)[0][: len(red.split("[REDACTED")[0])]


def test_a_truncated_private_key_is_redacted_to_the_end():
    red, n = Redactor().text(
        "key: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49"
    )
    assert red == "key: [REDACTED:private_key]" and n == 1


def test_ordinary_text_is_left_alone():
    text = (
        "Basic information: the task-manager skill (sk-learn style) uses a bearer of good news. "
        "AKIA is a prefix; hf_ is a prefix; Authorization is required. -----BEGIN PUBLIC KEY-----"
    )
    assert Redactor().text(text) == (text, 0)


def test_user_patterns_are_applied_and_named():
    redactor = Redactor([("employee_id", r"\bEMP-\d{6}\b"), r"internal-[a-z]+-token"])
    red, n = redactor.text("EMP-123456 used internal-prod-token")
    assert red == "[REDACTED:employee_id] used [REDACTED:custom_1]" and n == 2


def test_stored_traces_hold_no_secret_in_any_field(tmp_path):
    tracer = WorkflowTracer(tmp_path / "t.db", strict=True, redact_patterns=[("ticket", r"TICKET-\d{4}")])
    messages = [
        {"role": "system", "content": f"Use key {OPENAI_PROJECT} for the upstream API."},
        {
            "role": "user",
            "content": f"Deploy with {AWS_KEY_ID} / aws_secret_access_key={AWS_SECRET} (TICKET-4821)",
        },
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {
                        "name": "deploy",
                        "arguments": json.dumps(
                            {
                                "token": GITHUB_FINE,
                                "ssh_key": PRIVATE_KEY,
                                "headers": {"Authorization": f"Bearer {JWT}"},
                            }
                        ),
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": json.dumps({"echo": HUGGINGFACE})},
        {"role": "assistant", "content": f"Deployed. Anthropic fallback {ANTHROPIC} was not needed."},
    ]
    tid = tracer.capture_messages(
        messages,
        agent_type="ops",
        agent_name="deployer",
        model_used="gpt-4o",
        tools=[{"name": "deploy", "description": f"default token {GITHUB_CLASSIC}", "parameters": {}}],
        metadata={
            "env": {"HF_TOKEN": HUGGINGFACE, "basic": f"Authorization: Basic {BASIC}"},
            "keys": [GITHUB_OAUTH, GITHUB_SERVER, OPENAI_LEGACY, OPENSSH_KEY],
        },
        error=None,
    )
    raw = "\n".join(
        str(v) for v in tracer.store.conn.execute("SELECT * FROM traces WHERE id = ?", (tid,)).fetchone()
    )
    fts = " ".join(str(r) for r in tracer.store.conn.execute("SELECT * FROM traces_fts").fetchall())
    for secret in SECRETS:
        assert secret not in raw and secret not in fts
        assert secret[:12] not in raw  # not even a recognisable prefix of one
    assert "TICKET-4821" not in raw and "[REDACTED:ticket]" in raw
    row = q.get(tracer.store, tid)
    assert row.redactions == 16
    assert row.messages[2]["tool_calls"][0]["arguments"]["token"] == "[REDACTED:github_token]"

    result = export_dataset(tracer.store, tmp_path / "out", holdout_fraction=0.0)
    exported = result.train_path.read_text()
    assert result.train == 1 and "[REDACTED:private_key]" in exported
    for secret in SECRETS:
        assert secret not in exported and json.dumps(secret)[1:-1] not in exported


def test_export_applies_patterns_added_after_capture(tmp_path):
    tracer = WorkflowTracer(tmp_path / "t.db", strict=True)
    tracer.capture_call("a", "b", "m", user_query="order ORD-99-123", assistant_response="ok")
    result = export_dataset(
        tracer.store, tmp_path / "out", holdout_fraction=0.0, redactor=Redactor([("order", r"ORD-\d+-\d+")])
    )
    assert "ORD-99-123" not in result.train_path.read_text() and result.redactions == 1


class LeakyMessage:
    """A message object whose serialisation fails with the secret in the error, as validation errors do."""

    def model_dump(self):
        raise ValueError(f"invalid message: api_key={OPENAI_PROJECT} Authorization: Bearer {JWT}")


def test_secrets_never_reach_a_log_line_or_error_message(tmp_path, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("x")
    lenient = WorkflowTracer(tmp_path / "t.db")
    with caplog.at_level(logging.DEBUG, logger="cep_core.tracer"):
        assert (
            lenient.capture_messages(
                [LeakyMessage()], agent_type="a", agent_name=f"n {HUGGINGFACE}", model_used="m"
            )
            is None
        )
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "invalid message" in logged and "[REDACTED:" in logged
    for secret in (OPENAI_PROJECT, JWT, HUGGINGFACE):
        assert secret not in logged

    strict = WorkflowTracer(tmp_path / "t.db", strict=True)
    with pytest.raises(TraceCaptureError) as info:
        strict.capture_messages([LeakyMessage()], agent_type="a", agent_name="b", model_used="m")
    assert OPENAI_PROJECT not in str(info.value) and JWT not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_an_exception_with_a_secret_is_stored_redacted_and_reraised_unchanged(tmp_path):
    tracer = WorkflowTracer(tmp_path / "t.db", strict=True)
    exc = PermissionError(f"401 for key {ANTHROPIC}")
    with pytest.raises(PermissionError) as info, tracer.trace("a", "b", "claude") as call:
        raise exc
    assert info.value is exc and ANTHROPIC in str(info.value)  # the caller's exception is theirs, untouched
    row = q.get(tracer.store, call.trace_id)
    assert row.error == "PermissionError: 401 for key [REDACTED:anthropic_key]" and row.redactions == 1


_pieces = st.sampled_from(
    [
        "sk-",
        "ant-",
        "proj-",
        "hf_",
        "ghp_",
        "github_pat_",
        "AKIA",
        "Bearer ",
        "Basic ",
        "Authorization: ",
        "aws_secret_access_key=",
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----END RSA PRIVATE KEY-----",
        "\n",
        " ",
        "=",
        "/",
        "'",
        '"',
    ]
)
_fill = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=0, max_size=50
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_pieces, _fill, st.text(max_size=20)), max_size=20))
def test_redaction_never_raises_and_leaves_nothing_to_redact(parts):
    redactor = Redactor()
    once, _ = redactor.text("".join(parts))
    again, n = redactor.text(once)
    assert n == 0 and again == once
    assert not re.search(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]{20,}", once.replace("[REDACTED:", "["))
