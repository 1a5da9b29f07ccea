"""The error taxonomy: one enum used by the parsers, the scorer, the eval screen and the tracer."""

from __future__ import annotations

from enum import StrEnum


class ErrorCategory(StrEnum):
    """What went wrong with one model output. An output gets every category that applies."""

    # Format class: the shape of the text, independent of what the call means.
    MARKDOWN_WRAPPER = "markdown_wrapper"  # ```json fences around the output
    PROSE_AROUND_OUTPUT = "prose_around_output"  # text before or after the JSON / the tags
    INVALID_JSON = "invalid_json"  # not strict JSON (may still be recovered leniently)
    SELF_CLOSING_TAG = "self_closing_tag"  # <tool_call name="f"/>
    ARGUMENTS_ATTRIBUTE = "arguments_attribute"  # <tool_call name="f" arguments='{…}'>
    MISSING_CLOSE_TAG = "missing_close_tag"
    MISSING_OPEN_TAG = "missing_open_tag"
    WRONG_FORMAT = "wrong_format"  # Hermes JSON where the target format was asked, or the reverse
    # Content class: what the calls say against the signature and the answer.
    UNKNOWN_FUNCTION = "unknown_function"
    PARAM_NAME_MISMATCH = "param_name_mismatch"  # an argument name not in the signature
    MISSING_REQUIRED_PARAM = "missing_required_param"
    WRONG_VALUE = "wrong_value"
    WRONG_TYPE = "wrong_type"
    WRONG_CALL_COUNT = "wrong_call_count"
    SPURIOUS_CALL = "spurious_call"  # a call where none was expected
    NO_CALL = "no_call"  # no call where one was expected


FORMAT_ERRORS: frozenset[ErrorCategory] = frozenset(
    {
        ErrorCategory.MARKDOWN_WRAPPER,
        ErrorCategory.PROSE_AROUND_OUTPUT,
        ErrorCategory.INVALID_JSON,
        ErrorCategory.SELF_CLOSING_TAG,
        ErrorCategory.ARGUMENTS_ATTRIBUTE,
        ErrorCategory.MISSING_CLOSE_TAG,
        ErrorCategory.MISSING_OPEN_TAG,
        ErrorCategory.WRONG_FORMAT,
    }
)

DESCRIPTIONS: dict[ErrorCategory, str] = {
    ErrorCategory.MARKDOWN_WRAPPER: "output wrapped in ``` markdown fences",
    ErrorCategory.PROSE_AROUND_OUTPUT: "text before or after the output",
    ErrorCategory.INVALID_JSON: "not valid JSON",
    ErrorCategory.SELF_CLOSING_TAG: 'self-closing <tool_call name="f"/> tag',
    ErrorCategory.ARGUMENTS_ATTRIBUTE: "arguments given as an arguments= attribute",
    ErrorCategory.MISSING_CLOSE_TAG: "no closing </tool_call> tag",
    ErrorCategory.MISSING_OPEN_TAG: "no opening <tool_call> tag",
    ErrorCategory.WRONG_FORMAT: "a different tool-call format than the one asked for",
    ErrorCategory.UNKNOWN_FUNCTION: "called a function that is not offered",
    ErrorCategory.PARAM_NAME_MISMATCH: "an argument name that is not in the signature",
    ErrorCategory.MISSING_REQUIRED_PARAM: "a required argument is missing",
    ErrorCategory.WRONG_VALUE: "an argument value the answer does not accept",
    ErrorCategory.WRONG_TYPE: "an argument of the wrong type",
    ErrorCategory.WRONG_CALL_COUNT: "a different number of calls than expected",
    ErrorCategory.SPURIOUS_CALL: "a call where none was expected",
    ErrorCategory.NO_CALL: "no call where one was expected",
}


def is_format_error(category: ErrorCategory | str) -> bool:
    return ErrorCategory(category) in FORMAT_ERRORS
