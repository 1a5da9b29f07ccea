"""What used private attributes of other libraries now goes through their public API, with the same result."""

from __future__ import annotations

from rich.console import Console

from cep_core.formats.taxonomy import DESCRIPTIONS, ErrorCategory
from cep_core.scoring.report import errors_table, meaning_of


def test_every_category_has_its_meaning_and_an_unknown_one_has_none():
    for category in ErrorCategory:
        assert meaning_of(str(category)) == DESCRIPTIONS.get(category, "")
    assert meaning_of("a_category_from_a_newer_version") == ""


def test_the_errors_table_shows_known_meanings_beside_unknown_categories():
    known = next(iter(DESCRIPTIONS))
    table = errors_table({"n": 4, "errors": {str(known): 3, "from_elsewhere": 1}})
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    assert DESCRIPTIONS[known] in text and "from_elsewhere" in text


def test_the_tiny_model_asks_for_sdpa_through_the_config_argument():
    from cep_core.training.dataset import attention_of
    from cep_core.training.tiny import build_bpe_tokenizer, build_tiny_model

    tokenizer = build_bpe_tokenizer(["plan a trip to the sea"] * 8, vocab_size=300)
    assert attention_of(build_tiny_model(tokenizer)) == "sdpa"
