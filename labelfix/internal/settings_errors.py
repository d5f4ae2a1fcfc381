"""A pydantic ``ValidationError`` of a settings model (a config file, command-line options) in words:
one line per problem, naming the key or the option that set it, without pydantic's URL."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol


class _ErrorList(Protocol):  # pydantic.ValidationError, without importing pydantic here
    def errors(self, *, include_url: bool = ...) -> Any: ...


def settings_problems(error: _ErrorList, *, names: Mapping[str, str] | None = None,
                      known: Iterable[str] = ()) -> list[str]:
    """One line per problem: ``NAME: what is wrong (given VALUE)``.

    Parameters
    ----------
    names
        The name a user knows a field by (``{"target_precision": "--target-precision"}``); others keep
        the key as written.
    known
        The valid keys, to suggest one for an unknown key.

    Examples
    --------
    >>> from pydantic import BaseModel, ConfigDict, Field, ValidationError
    >>> class Settings(BaseModel):
    ...     model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    ...     rate: float = Field(0.5, le=1.0)
    >>> try:
    ...     Settings(rate=2, ratte=1)
    ... except ValidationError as error:
    ...     print("\\n".join(settings_problems(error, names={"rate": "--rate"}, known=["rate"])))
    --rate: must be at most 1 (given 2)
    ratte: not a setting (did you mean 'rate'?)
    """
    names = names or {}
    lines = []
    for item in error.errors(include_url=False):
        key = ".".join(str(part) for part in item["loc"])
        name = names.get(key, key)
        if item["type"] == "extra_forbidden":
            close = difflib.get_close_matches(key, list(known), n=1)
            lines.append(f"{name}: not a setting" + (f" (did you mean {close[0]!r}?)" if close else ""))
            continue
        lines.append(f"{name}: {_in_words(item)} (given {item.get('input')!r})")
    return lines


def _in_words(item: Mapping[str, Any]) -> str:
    limit = (item.get("ctx") or {})
    bounds = {"less_than_equal": "at most {le}", "less_than": "less than {lt}", "greater_than": "more than {gt}",
              "greater_than_equal": "at least {ge}"}
    if item["type"] in bounds:
        return "must be " + bounds[item["type"]].format(**{k: f"{v:g}" if isinstance(v, float) else v
                                                           for k, v in limit.items()})
    if item["type"] == "finite_number":
        return "must be a finite number (not nan or inf)"
    message = str(item["msg"])
    if item["type"] == "value_error":  # a validator's own words: drop pydantic's "Value error, " prefix
        message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:]
