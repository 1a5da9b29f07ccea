"""The CEP: what each variant says, how it is applied, and that its hash is stable."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from cep_core.errors import InputError
from cep_core.prompts.prefix import (
    CLOSE_MARK,
    OPEN_MARK,
    VARIANTS,
    apply_cep,
    apply_cep_text,
    get_cep,
    strip_cep,
)


def test_universal_holds_every_rule_the_issue_names():
    text = get_cep("universal").text
    assert text.startswith(OPEN_MARK) and text.endswith(CLOSE_MARK)
    assert "no markdown fences" in text
    assert "exact field and parameter names" in text
    assert '<tool_call name="FUNCTION_NAME">{"argument": "value"}</tool_call>' in text
    assert "closing </tool_call> tag" in text and "self-closing" in text
    assert "arguments= attribute" in text
    assert text.count("❌") >= 5 and text.count("✅") >= 5
    assert "Verify before responding" in text.splitlines()[-2]


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_is_wrapped_and_distinct(variant):
    cep = get_cep(variant)
    assert cep.text.startswith(OPEN_MARK) and cep.text.endswith(CLOSE_MARK)
    assert cep.sha256 == hashlib.sha256(cep.text.encode()).hexdigest()
    others = {get_cep(v).sha256 for v in VARIANTS if v != variant}
    assert cep.sha256 not in others


def test_structured_and_toolcall_variants_keep_to_their_track():
    assert "<tool_call" not in get_cep("structured").text
    assert "JSON OUTPUT" not in get_cep("toolcall").text
    assert len(get_cep("compact").text) < len(get_cep("universal").text) / 2


def test_sha256_is_the_same_in_a_fresh_process():
    code = "from cep_core.prompts.prefix import get_cep; print(get_cep('universal').sha256)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == get_cep("universal").sha256


def test_apply_creates_a_system_message_when_absent():
    cep = get_cep("compact")
    messages = [{"role": "user", "content": "hi"}]
    out = apply_cep(messages, cep)
    assert out[0] == {"role": "system", "content": cep.text}
    assert out[1] == messages[0]
    assert messages == [{"role": "user", "content": "hi"}], "the input list is not modified"


def test_apply_prepends_to_the_existing_system_message_and_is_idempotent():
    cep = get_cep("universal")
    messages = [{"role": "system", "content": "You are the travel desk."}, {"role": "user", "content": "hi"}]
    once = apply_cep(messages, cep)
    assert once[0]["content"] == cep.text + "\n\nYou are the travel desk."
    assert apply_cep(once, cep) == once
    assert apply_cep(apply_cep(once, cep), cep) == once


def test_applying_another_variant_replaces_the_block_and_none_removes_it():
    messages = [{"role": "system", "content": "Base."}]
    first = apply_cep(messages, get_cep("universal"))
    second = apply_cep(first, get_cep("toolcall"))
    assert second[0]["content"].count(OPEN_MARK) == 1
    assert second[0]["content"].startswith(get_cep("toolcall").text)
    assert second[0]["content"].endswith("Base.")
    assert apply_cep(second, None) == messages
    assert strip_cep(second[0]["content"]) == "Base."
    assert apply_cep_text(None, get_cep("compact")) == get_cep("compact").text


def test_user_file_is_wrapped_in_the_markers(tmp_path):
    path = tmp_path / "my_cep.txt"
    path.write_text("Always answer with raw JSON.\n")
    cep = get_cep(path)
    assert cep.text == f"{OPEN_MARK}\nAlways answer with raw JSON.\n{CLOSE_MARK}"
    assert cep.name == str(path)
    already = tmp_path / "wrapped.txt"
    already.write_text(cep.text)
    assert get_cep(already).text == cep.text


def test_unknown_variant_and_empty_file_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="unknown CEP 'fancy'"):
        get_cep("fancy")
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(InputError, match="empty") as info:
        get_cep(empty)
    assert str(empty) in str(info.value)
