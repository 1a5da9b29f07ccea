"""The metric definitions, in one place (README: "Metrics").

- BFCL accuracy: an example is correct when its calls pass BFCL's AST checker for its category
  (`bfcl_checker.check_example`). `strict_accuracy` also requires a format-clean output.
- Toolcall F1: predicted calls matched one-to-one to expected calls by an optimal matching (a pair matches
  when BFCL's checker accepts the call for that answer); P = matched / predicted, R = matched / expected;
  an example with no expected and no predicted call scores 1. Macro average over examples, and micro.
- Argument F1: over (function, argument, value) triples of paired calls; a predicted argument counts when
  the checker accepts its value; expected arguments are the answer's mandatory ones plus optional ones the
  prediction gave correctly.
- Structured F1: predicted and reference JSON flattened to (path, value) leaves, list items keeping their
  index; P, R and F1 on the multisets of leaves per example, macro-averaged; unparseable output scores 0.
- Format compliance: the share of outputs with no format-class error; on the toolcall track an output
  with no call where one was expected does not comply either (it answered in text, not in the format).

By default an output is scored on what the lenient parsers recover (a fenced JSON still has its fields
compared), and format errors are counted apart; `strict=True` scores any output with a format error as
unparseable, for the reading where a caller would have rejected it.

Modules: `result` (one example's score), `toolcall` and `structured` (the two tracks), `aggregate` (results.json),
`bfcl_checker` (BFCL's AST checks), `baselines` (the large model's figures) and `report` (how results read).
"""

from cep_core.scoring.aggregate import aggregate, score_all, score_example
from cep_core.scoring.result import ExampleScore
from cep_core.scoring.structured import json_leaves, score_structured
from cep_core.scoring.toolcall import score_toolcall

__all__ = [
    "ExampleScore",
    "aggregate",
    "json_leaves",
    "score_all",
    "score_example",
    "score_structured",
    "score_toolcall",
]
