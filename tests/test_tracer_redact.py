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

# Kinds added after adversarial testing (issue #14): Slack, standalone JWTs, secret-named keys, more providers.
SLACK_BOT = "xoxb-" + "123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_USER = "xoxp-" + "123456789012-123456789012-123456789012-" + "0123456789abcdef0123456789abcdef"
SLACK_WEBHOOK = "https://hooks.slack.com/services/" + "T00000000/B00000000/" + "XXXXXXXXXXXXXXXXXXXXXXXX"
STRIPE = "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"
SENDGRID = "SG." + "ngeVfQFYQlKU0ufo8x5d1A" + "." + "TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr"
GITLAB = "glpat-" + "xYz12AbC3dEfGhIjKlMn"
NPM = "npm_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
PYPI = (
    "pypi-" + "AgEIcHlwaS5vcmc" + "CJDk5MWU4NWM1LTQ3ZjMtNGYzZS1hOTQ2LWE3YzRmYzNmNmU2MAACKlszLCJkYjg0MzA4OS1h"
)
GOOGLE = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
TWILIO = "SK" + "0123456789abcdef0123456789abcdef"
SQUARE = "sq0csp-" + "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg"
AZURE = "k7Xq2" + "A" * 78 + "3d4=="
URL_PASSWORD = "Pr0d-Db-P4ss"
PASSWORD = "hunter2-" + "Xq9"
JSON_PASSWORD = "c0rrect-" + "horse"
SECRET_VALUE = "s3cr3t-" + "value-77"
API_KEY_VALUE = "a1b2c3d4" + "e5f6"
TOKEN_VALUE = "tok-" + "9f8e7d6c"

NEW_SECRETS = [
    SLACK_BOT,
    SLACK_USER,
    SLACK_WEBHOOK,
    STRIPE,
    SENDGRID,
    GITLAB,
    NPM,
    PYPI,
    GOOGLE,
    TWILIO,
    SQUARE,
    AZURE,
    URL_PASSWORD,
    PASSWORD,
    JSON_PASSWORD,
    SECRET_VALUE,
    API_KEY_VALUE,
    TOKEN_VALUE,
]

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
    ("slack_token", f"SLACK_BOT_TOKEN={SLACK_BOT} ./bot", SLACK_BOT),
    ("slack_token", f"use {SLACK_USER} for the user scope", SLACK_USER),
    ("slack_token", f"post to {SLACK_WEBHOOK} when done", SLACK_WEBHOOK),
    ("jwt", f"the session is {JWT} until noon", JWT),
    ("jwt", f'{{"id_token_hint": "{JWT}"}}', JWT),
    ("stripe_key", f"stripe.api_key = '{STRIPE}'", STRIPE),
    ("sendgrid_key", f"SENDGRID={SENDGRID}", SENDGRID),
    ("gitlab_token", f"git clone https://oauth2:{GITLAB}@gitlab.com/a/b", GITLAB),
    ("npm_token", f"//registry.npmjs.org/:_authToken={NPM}", NPM),
    ("pypi_token", f"twine upload -p {PYPI} dist/*", PYPI),
    ("google_api_key", f"maps?key={GOOGLE}&q=Oslo", GOOGLE),
    ("twilio_key", f"Twilio API key {TWILIO} created", TWILIO),
    ("square_token", f"square secret {SQUARE}", SQUARE),
    ("azure_storage_key", f"DefaultEndpointsProtocol=https;AccountName=x;AccountKey={AZURE};Endpoint", AZURE),
    ("url_password", f"DATABASE_URL=postgres://app:{URL_PASSWORD}@db:5432/app", URL_PASSWORD),
    ("password", f"login --user bob --password={PASSWORD} now", PASSWORD),
    ("password", f"DB_PASSWORD={PASSWORD}", PASSWORD),
    ("password", f'{{"username": "bob", "password": "{JSON_PASSWORD}"}}', JSON_PASSWORD),
    ("password", f"{{'password': '{JSON_PASSWORD}'}}", JSON_PASSWORD),
    ("password", f'{{\\"password\\": \\"{JSON_PASSWORD}\\"}}', JSON_PASSWORD),
    ("password", f"db:\n  password: {PASSWORD}\n", PASSWORD),
    ("secret", f"CLIENT_SECRET={SECRET_VALUE}", SECRET_VALUE),
    ("secret", f'{{"client_secret": "{SECRET_VALUE}"}}', SECRET_VALUE),
    ("api_key", f"X-Api-Key: {API_KEY_VALUE}", API_KEY_VALUE),
    ("api_key", f'{{"api_key": "{API_KEY_VALUE}"}}', API_KEY_VALUE),
    ("token", f"GET /v1/items?access_token={TOKEN_VALUE}&page=2", TOKEN_VALUE),
    ("token", f'{{"token": "{TOKEN_VALUE}"}}', TOKEN_VALUE),
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


@pytest.mark.parametrize(
    "text",
    [
        "Enter your password: it must be long",
        "the password is required; reset your password at https://example.com/reset",
        '{"max_tokens": 256, "total_tokens": 1024, "tokens": 5, "token_count": 3}',
        "secret = null, password: none, token: true",
        "the api key is in the vault; a secret recipe; keyboard shortcuts",
        "Look at https://docs.python.org/3/library/re.html and mailto:bob@example.com",
        "The ACME SKU list: ACDC and SKY",
        "eyJ alone is not a token; nor is header.payload",
    ],
)
def test_prose_about_secrets_is_not_redacted(text):
    assert Redactor().text(text) == (text, 0)


def test_a_secret_named_key_hides_its_value_whole_in_nested_data():
    data = {
        "user": "bob",
        "password": "hunter2",  # text alone that looks like nothing
        "DB_PASSWORD": 12345678,
        "x-api-key": "abc",
        "access_token": GITHUB_CLASSIC,  # a recognised token keeps its own kind
        "token": None,
        "secret": True,
        "max_tokens": 100,
        "headers": {"Client-Secret": "plain"},
    }
    red, n = Redactor().data(data)
    assert red == {
        "user": "bob",
        "password": "[REDACTED:password]",
        "DB_PASSWORD": "[REDACTED:password]",
        "x-api-key": "[REDACTED:api_key]",
        "access_token": "[REDACTED:github_token]",
        "token": None,
        "secret": True,
        "max_tokens": 100,
        "headers": {"Client-Secret": "[REDACTED:secret]"},
    }
    assert n == 5


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
        "xoxb-",
        "xoxp-123-",
        "eyJ",
        ".",
        "password=",
        '"password": "',
        "api_key: ",
        "token=",
        "://user:",
        "@",
        "SG.",
        "AC",
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


def _cli(home, *args):
    import os
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def test_every_kind_is_out_of_the_db_its_wal_every_export_and_every_output(tmp_path):
    """Each case's text captured through every door — a field, a tool-call argument, metadata, an error, an
    import — then the raw bytes of traces.db and its WAL, list/show/search output, export and retrain data."""
    home = tmp_path / "home"
    db = home / "traces.db"
    tracer = WorkflowTracer(db, strict=True)
    for i, (_kind, text, _secret) in enumerate(CASES):
        tracer.capture_messages(
            [
                {"role": "user", "content": f"case {i}: {text}"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": f"c{i}",
                            "type": "function",
                            "function": {"name": "run", "arguments": json.dumps({"command": text})},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": f"c{i}", "content": text},
                {"role": "assistant", "content": f"done with {text}"},
            ],
            agent_type="ops",
            agent_name="runner",
            model_used="gpt-4o",
            metadata={"note": text, "password": PASSWORD, "api_key": API_KEY_VALUE},
        )
        tracer.capture_call(
            "ops", "runner", "gpt-4o", user_query=text, success=False, error=f"failed: {text}"
        )
    wal = db.with_name(
        "traces.db-wal"
    ).read_bytes()  # before the tracer closes: the WAL still holds the pages
    tracer.close()
    calls = tmp_path / "calls.jsonl"
    calls.write_text(
        "".join(
            json.dumps(
                {
                    "agent_type": "ops",
                    "agent_name": "importer",
                    "model_used": "m",
                    "user_query": text,
                    "assistant_response": "ok",
                    "metadata": {"token": TOKEN_VALUE},
                    "extra": text,
                }
            )
            + "\n"
            for _kind, text, _secret in CASES
        )
    )
    outputs = [_cli(home, "traces", "import", str(calls))]
    later_wal = db.with_name("traces.db-wal")  # gone when the last connection closed cleanly
    stored = db.read_bytes() + wal + (later_wal.read_bytes() if later_wal.exists() else b"")
    assert len(wal) > 100_000  # the captures' pages really were in the WAL that was read
    rows = json.loads(_cli(home, "traces", "list", "--limit", "1000", "--json"))["rows"]
    assert len(rows) == 3 * len(CASES)
    outputs.append(json.dumps(rows))
    outputs += [_cli(home, "traces", "show", r["id"], "--json") for r in rows[:: max(1, len(rows) // 12)]]
    outputs += [_cli(home, "traces", "show", r["id"]) for r in rows[:6]]
    outputs.append(_cli(home, "traces", "list", "--limit", "1000"))
    for word in ("REDACTED", "case", "done", "failed", "xoxb", "password", "hunter2", "token"):
        outputs.append(_cli(home, "traces", "search", word, "--limit", "1000", "--json"))
        outputs.append(_cli(home, "traces", "search", word, "--limit", "1000"))
    outputs.append(_cli(home, "traces", "export", "--include-failed", "--out", str(tmp_path / "export")))
    outputs.append(_cli(home, "traces", "retrain", "ops/runner", "--force", "--no-launch"))
    files = [
        *(tmp_path / "export").glob("*"),
        *home.glob("retrain/*/data/*"),
        *home.glob("retrain/*/run.toml"),
    ]
    assert len(files) >= 6
    exported = "".join(f.read_text() for f in files)
    for secret in SECRETS + NEW_SECRETS:
        encoded = json.dumps(secret)[1:-1]
        assert secret.encode() not in stored and encoded.encode() not in stored, secret
        for text in (*outputs, exported):
            assert secret not in text and encoded not in text, secret
    assert "[REDACTED:slack_token]" in exported and "[REDACTED:password]" in exported


def _detect_secrets_findings(line: str) -> set[str]:
    """What detect-secrets' own plugins find in a line (its entropy plugins excepted: unfiltered, they flag
    every word)."""
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import default_settings

    with default_settings():
        return {s.secret_value for s in scan_line(line) if "High Entropy" not in s.type and s.secret_value}


ORACLE_LINES = [
    *(text for _kind, text, _secret in CASES),
    f'slack_token = "{SLACK_BOT}"',
    f"webhook: {SLACK_WEBHOOK}",
    f'password = "{PASSWORD}"',
    f'db_pass: "{JSON_PASSWORD}"',
    f"private_key = '{SECRET_VALUE}'",
    f'my_secret := "{SECRET_VALUE}"',
    f'char pwd[] = "{PASSWORD}";',
    f"curl -u admin:{URL_PASSWORD} https://admin:{URL_PASSWORD}@example.com/api",
    f"AccountKey={AZURE}",
    f'stripe = "{STRIPE}"',
    f"mailchimp {'0123456789abcdef0123456789abcdef'}-us12",
    f"telegram bot {'123456789'}:{'AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0'}",
    f"discord {'MTk4NjIyNDgzNDcxOTI1MjQ4'}.{'Cl2FMQ'}.{'ZnCjm1XVW7vRze4b7Cq4se7kKWs'}",
    f"//registry.npmjs.org/:_authToken={NPM}",
    f"IBM_CLOUD_IAM_KEY={'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR'}",
]


@pytest.mark.parametrize("line", ORACLE_LINES, ids=[f"line{i}" for i in range(len(ORACLE_LINES))])
def test_whatever_detect_secrets_finds_is_redacted(line):
    pytest.importorskip("detect_secrets", reason="detect-secrets (the dev extra) is the oracle here")
    red, _ = Redactor().text(line)
    for found in _detect_secrets_findings(line):
        assert found not in red, (found, red)
