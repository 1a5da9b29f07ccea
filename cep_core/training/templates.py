"""Chat templates the project builds locally: ChatML for the built-in tiny model, and the role rules for tool turns.

Real models bring their own template; these exist so the tiny model has one and so the label-masking code can
be tested on more than one template style without a download.
"""

from __future__ import annotations

CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
CHATML_SPECIALS = {
    "bos": None,
    "eos": "<|im_end|>",
    "pad": "<|endoftext|>",
    "extra": ["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
}


def tool_role_for(chat_template: str | None) -> str:
    """The role a tool result takes in this template: `tool` where it has one, `ipython` for Llama-3.1-style
    templates that only know that, else `user` (the content keeps its <tool_response> wrapper)."""
    source = chat_template or ""
    if "'tool'" in source or '"tool"' in source:
        return "tool"
    if "ipython" in source:
        return "ipython"
    if "message['role']" in source or 'message["role"]' in source or "message.role" in source:
        # A template that prints the role verbatim (ChatML and friends) renders any role.
        return "tool"
    return "user"
