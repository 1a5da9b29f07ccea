"""Assistant-only labels on two template styles built locally (ChatML-like and Llama-3-like)."""

from __future__ import annotations

import pytest

from cep_core.training.labels import IGNORE_INDEX, LabelError, labelled_segments, tokenize_conversation
from cep_core.training.templates import CHATML_TEMPLATE, tool_role_for
from cep_core.training.tiny import build_bpe_tokenizer

LLAMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{%- if message['role'] in ['tool', 'ipython'] %}{%- set role = 'ipython' %}"
    "{%- else %}{%- set role = message['role'] %}{%- endif %}"
    "{{- '<|start_header_id|>' + role + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
LLAMA3_SPECIALS = {
    "bos": "<|begin_of_text|>",
    "eos": "<|eot_id|>",
    "pad": "<|finetune_right_pad_id|>",
    "extra": [
        "<|begin_of_text|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eot_id|>",
        "<|finetune_right_pad_id|>",
    ],
}
# A template that shows only the last assistant turn in full (as reasoning templates drop earlier thoughts).
REWRITING_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' and not loop.last -%}{{- '<|im_start|>assistant\\n…<|im_end|>\\n' -}}"
    "{%- else -%}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

CALL = '<tool_call name="get_weather">{"city": "Paris", "unit": "celsius"}</tool_call>'
ANSWER = "It is 18 degrees and sunny in Paris."
CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant with tools."},
    {"role": "user", "content": "What is the weather in Paris?"},
    {"role": "assistant", "content": CALL},
    {"role": "tool", "content": '<tool_response>\n{"temperature": 18, "sky": "sunny"}\n</tool_response>'},
    {"role": "assistant", "content": ANSWER},
]


def _corpus():
    return [m["content"] for m in CONVERSATION] * 20 + ["assistant user system tool ipython"] * 5


@pytest.fixture(scope="module")
def chatml():
    return build_bpe_tokenizer(_corpus(), vocab_size=400)


@pytest.fixture(scope="module")
def llama3():
    return build_bpe_tokenizer(
        _corpus(), chat_template=LLAMA3_TEMPLATE, specials=LLAMA3_SPECIALS, vocab_size=400
    )


def test_chatml_labels_exactly_the_assistant_turns_with_end_of_turn(chatml):
    tok = tokenize_conversation(chatml, CONVERSATION)
    assert labelled_segments(chatml, tok) == [CALL + "<|im_end|>", ANSWER + "<|im_end|>"]
    assert len(tok.input_ids) == len(tok.labels)
    # Header, system, user and tool text, and the newline after <|im_end|>, are all masked.
    masked = chatml.decode(
        [t for t, lab in zip(tok.input_ids, tok.labels, strict=True) if lab == IGNORE_INDEX]
    )
    assert masked == tok.text.replace(CALL + "<|im_end|>", "").replace(ANSWER + "<|im_end|>", "")
    assert masked.startswith("<|im_start|>system\n") and masked.endswith("<|im_start|>assistant\n\n")


def test_llama3_labels_exactly_the_assistant_turns_with_eot(llama3):
    tok = tokenize_conversation(llama3, CONVERSATION)
    assert tok.text.startswith("<|begin_of_text|><|start_header_id|>system")
    assert "<|start_header_id|>ipython<|end_header_id|>" in tok.text
    assert labelled_segments(llama3, tok) == [CALL + "<|eot_id|>", ANSWER + "<|eot_id|>"]
    first_label = next(i for i, lab in enumerate(tok.labels) if lab != IGNORE_INDEX)
    assert llama3.decode(tok.input_ids[:first_label]).endswith(
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_template_that_rewrites_earlier_turns_labels_only_the_placeable_turn():
    tok_ = build_bpe_tokenizer(_corpus(), chat_template=REWRITING_TEMPLATE, vocab_size=400)
    tok = tokenize_conversation(tok_, CONVERSATION)
    assert labelled_segments(tok_, tok) == [ANSWER + "<|im_end|>"]


def test_over_length_and_no_assistant_are_label_errors(chatml):
    with pytest.raises(LabelError) as info:
        tokenize_conversation(chatml, CONVERSATION, max_length=10)
    assert info.value.reason == "over_length"
    with pytest.raises(LabelError) as info:
        tokenize_conversation(chatml, CONVERSATION[:2])
    assert info.value.reason == "no_assistant_span"


def test_tool_role_follows_the_template():
    assert tool_role_for(CHATML_TEMPLATE) == "tool"
    assert tool_role_for(LLAMA3_TEMPLATE) == "tool"
    assert tool_role_for("{% if m.role == 'ipython' %}{% endif %}") == "ipython"
    assert tool_role_for("{{ '[INST]' + messages[0]['content'] }}") == "user"
