"""BFCL's AST checker rules, reproduced verdict for verdict (Python categories), quirks included.

The rules follow `bfcl_eval/eval_checker/ast_eval/ast_checker.py` of the public gorilla repository:
- exact function name; every required parameter present (a required parameter beats a `""` marker);
- no parameter outside the schema, and none outside the answer even when the schema has it;
- types by Python's `type(v) == T`, so bool is not int; int is accepted for float at the top level only;
- "variables": when the answer's values are of another type than the schema says, the value is compared as is;
- strings compared after lower-casing, removing spaces and `,./-_*^`, and reading `'` as `"`;
- lists compared in order (strings inside standardised); dicts one level deep; lists of dicts in order;
- simple categories check the first function description; `multiple` checks the first call; parallel
  categories match answers to outputs greedily, in the answers' order.
Where BFCL would crash on malformed input (an unknown type name, a missing description) this module returns an
invalid verdict instead. Results are small tuples because this runs tens of thousands of times a second.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, NamedTuple

from cep_core.formats.toolcalls import ToolCall

PY_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}
NESTED_TYPES = ("array", "tuple")
# JSON-Schema names used by the project's own eval sets, read as BFCL's.
TYPE_ALIASES = {
    "number": "float",
    "object": "dict",
    "str": "string",
    "int": "integer",
    "bool": "boolean",
    "list": "array",
}

_STANDARDIZE = re.compile(r"[ ,./\-_*^]")


class Verdict(NamedTuple):
    valid: bool
    error_type: str = ""  # BFCL's error_type, e.g. "type_error:simple", "value_error:string"
    param: str | None = None


VALID = Verdict(True)


@lru_cache(maxsize=1 << 16)
def standardize_string(text: str) -> str:
    """BFCL's string normalisation: drop spaces and `,./-_*^`, lower-case, `'` -> `"`."""
    return _STANDARDIZE.sub("", text).lower().replace("'", '"')


def _answer_type(possible: list[Any]) -> type | None:
    for answer in possible:
        if answer != "":
            return type(answer)
    return None


def type_check(
    value: Any, possible: list[Any], expected: type, nested: type | None
) -> tuple[bool, bool, str]:
    """(valid, is_variable, error_type) exactly as BFCL's type_checker decides them."""
    answer_type = _answer_type(possible)
    is_variable = answer_type is not None and answer_type != expected
    if type(value) == expected:  # noqa: E721 - BFCL compares exact types (bool is not int)
        if nested is None:
            return True, is_variable, ""
        for item in possible:
            flag = True
            if type(item) == list:  # noqa: E721
                for element in value:
                    if not type_check(element, item, nested, None)[0]:
                        flag = False
                        break
            if flag:
                return True, is_variable, ""
        if answer_type is not None and type(value) == answer_type:  # noqa: E721
            return False, True, "type_error:nested"
        return False, False, "type_error:simple"
    if answer_type is not None and type(value) == answer_type:  # noqa: E721
        return True, True, ""
    return False, False, "type_error:simple"


def _standardized(values: Any) -> list[Any]:
    return [standardize_string(v) if type(v) == str else v for v in values]  # noqa: E721


def string_ok(value: str, possible: list[Any]) -> bool:
    return standardize_string(value) in [standardize_string(p) for p in possible if type(p) == str]  # noqa: E721


def list_ok(value: list[Any], possible: list[Any]) -> bool:
    # A "" marker iterates as an empty list, so [] is accepted where the parameter may be omitted (BFCL does this).
    return _standardized(value) in [_standardized(p) for p in possible if isinstance(p, list | tuple | str)]


def dict_ok(value: dict[str, Any], possibles: list[Any]) -> bool:
    for possible in possibles:
        if possible == "":
            continue
        flag = True
        for key, item in value.items():
            if key not in possible:
                flag = False
                break
            standardized = standardize_string(item) if type(item) == str else item  # noqa: E721
            if standardized not in _standardized(possible[key]):
                flag = False
                break
        if flag:
            for key, acceptable in possible.items():
                if key not in value and "" not in acceptable:
                    flag = False
                    break
        if flag:
            return True
    return False


def list_dict_ok(value: list[Any], possibles: list[Any]) -> bool:
    for possible in possibles:
        if len(value) != len(possible):
            continue
        if all(_is_dict_like(v) and dict_ok(v, [possible[i]]) for i, v in enumerate(value)):
            return True
    return False


def _is_dict_like(value: Any) -> bool:
    return isinstance(value, dict)


def param_types(schema: dict[str, Any]) -> tuple[str | None, type | None, type | None]:
    """(type name, Python type, nested Python type) of one parameter schema, BFCL's way."""
    name = schema.get("type") if isinstance(schema, dict) else None
    if not isinstance(name, str):
        return None, None, None
    name = TYPE_ALIASES.get(name, name)
    expected = PY_TYPES.get(name)
    nested = None
    if name in NESTED_TYPES:
        items = schema.get("items")
        item_type = items.get("type") if isinstance(items, dict) else None
        if isinstance(item_type, str):
            nested = PY_TYPES.get(TYPE_ALIASES.get(item_type, item_type))
    return name, expected, nested


def check_param(schema: dict[str, Any], value: Any, possible: list[Any]) -> str:
    """'' when `value` is accepted for one parameter, else BFCL's error_type (type_error:… / value_error:…)."""
    type_name, expected, nested = param_types(schema)
    if type_name == "float" and type(value) == int:  # noqa: E721 - Python's int -> float, top level only
        value = float(value)
    if expected is None:  # a type BFCL does not know: compare the value as is
        return "" if value in possible else "value_error:others"
    valid, is_variable, error_type = type_check(value, possible, expected, nested)
    if not valid:
        return error_type
    if not is_variable:
        if expected is dict:
            return "" if dict_ok(value, possible) else "value_error:dict_value"
        if expected is list and nested is dict:
            return "" if list_dict_ok(value, possible) else "value_error:list_dict_count"
        if expected is str:
            return "" if string_ok(value, possible) else "value_error:string"
        if expected is list:
            return "" if list_ok(value, possible) else "value_error:list/tuple"
    return "" if value in possible else "value_error:others"


def check_call(
    description: dict[str, Any] | None, call: ToolCall, answer: dict[str, dict[str, list[Any]]]
) -> Verdict:
    """BFCL's simple_function_checker: is `call` one of the calls `answer` accepts?"""
    if not isinstance(description, dict):
        return Verdict(False, "simple_function_checker:missing_description")
    possible = next(iter(answer.values()))
    parameters = description.get("parameters") or {}
    properties = parameters.get("properties") or {}
    if call.name != description.get("name"):
        return Verdict(False, "simple_function_checker:wrong_func_name")
    args = call.arguments
    for param in parameters.get("required") or ():
        if param not in args:
            return Verdict(False, "simple_function_checker:missing_required", param)
    for param, value in args.items():
        if param not in properties or param not in possible:
            return Verdict(False, "simple_function_checker:unexpected_param", param)
        error_type = check_param(properties[param], value, possible[param])
        if error_type:
            return Verdict(False, error_type, param)
    for param, acceptable in possible.items():
        if param not in args and "" not in acceptable:
            return Verdict(False, "simple_function_checker:missing_optional", param)
    return VALID


def find_description(functions: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    for fn in functions:
        if fn.get("name") == name:
            return fn
    return None


def check_example(
    rule: str, functions: list[dict[str, Any]], calls: list[ToolCall], answers: list[dict[str, Any]] | None
) -> Verdict:
    """BFCL's verdict for one entry, by the category's rule."""
    if rule == "irrelevance":
        return VALID if not calls else Verdict(False, "irrelevance:spurious_call")
    if rule == "relevance":
        return VALID if calls else Verdict(False, "relevance:no_call")
    answers = answers or []
    if rule == "parallel":
        if len(calls) != len(answers):
            return Verdict(False, "parallel_function_checker_no_order:wrong_count")
        matched: set[int] = set()
        for answer in answers:
            description = find_description(functions, next(iter(answer)))
            verdict = Verdict(False, "parallel_function_checker_no_order:cannot_find_match")
            for index, call in enumerate(calls):
                if index in matched:
                    continue
                verdict = check_call(description, call, answer)
                if verdict.valid:
                    matched.add(index)
                    break
            if not verdict.valid:
                return Verdict(False, "parallel_function_checker_no_order:cannot_find_match", verdict.param)
        return VALID
    if rule == "multiple":
        if len(calls) != len(answers):
            return Verdict(False, "multiple_function_checker:wrong_count")
        if not answers:
            return Verdict(False, "multiple_function_checker:missing_answer")
        description = find_description(functions, next(iter(answers[0])))
        return check_call(description, calls[0], answers[0])
    # simple: exactly one call, checked against the first description
    if len(calls) != 1:
        return Verdict(False, "simple_function_checker:wrong_count")
    if not functions or not answers:
        return Verdict(False, "simple_function_checker:missing_description")
    return check_call(functions[0], calls[0], answers[0])
