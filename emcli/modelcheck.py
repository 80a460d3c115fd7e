"""The model file's common fields, checked once at load (``modelfile.model_from_dict``).

The rules are those of ``emcli/schema/model.schema.json`` for every field a command reads
(``describe``, ``plot``, ``predict``, ``score``, ``sample``, a warm start): types, signs,
shapes, no NaN or Infinity anywhere.  The family's parameter fields (weights, means,
covariances) are checked by the family.  Each rule raises ValueError naming the field, so a
model file that loads can be used by every command without a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Check = Callable[[Any, str], None]


# ---------------------------------------------------------------------------- value rules
def _fail(where: str, what: str) -> None:
    raise ValueError(f"{where} must be {what}")


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    def check(value: Any, where: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            _fail(where, "an integer")
        if minimum is not None and value < minimum:
            _fail(where, f"an integer >= {minimum}")
        if maximum is not None and value > maximum:
            _fail(where, f"an integer <= {maximum}")

    return check


def number(minimum: float | None = None, positive: bool = False) -> Check:
    def check(value: Any, where: str) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            _fail(where, "a number")
        if not math.isfinite(float(value)):
            _fail(where, "a finite number")
        if positive and not value > 0:
            _fail(where, "a number > 0")
        if minimum is not None and value < minimum:
            _fail(where, f"a number >= {minimum:g}")

    return check


def boolean(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        _fail(where, "true or false")


def string(value: Any, where: str) -> None:
    if not isinstance(value, str):
        _fail(where, "a string")


def nullable(rule: Check) -> Check:
    def check(value: Any, where: str) -> None:
        if value is not None:
            rule(value, where)

    return check


def array_of(rule: Check, min_items: int = 0) -> Check:
    def check(value: Any, where: str) -> None:
        if not isinstance(value, list):
            _fail(where, "a list")
        if len(value) < min_items:
            _fail(where, f"a list of at least {min_items} item(s)")
        for i, item in enumerate(value):
            rule(item, f"{where}[{i}]")

    return check


def obj(fields: dict[str, Check], required: tuple[str, ...] = ()) -> Check:
    """An object whose known ``fields`` follow their rules (others are free)."""

    def check(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            _fail(where, "an object")
        for key in required:
            if key not in value:
                raise ValueError(f"{where} has no field '{key}'")
        for key, rule in fields.items():
            if key in value:
                rule(value[key], f"{where}.{key}")

    return check


# ---------------------------------------------------------------------------- the fields
_START = obj(
    {
        "start": integer(0),
        "n_iter": integer(0),
        "log_likelihood": nullable(number()),
        "converged": boolean,
        "collapsed": boolean,
        "error": nullable(string),
        "history": array_of(number()),
    }
)
_CANDIDATE = obj(
    {
        "components": integer(1),
        "covariance": string,
        "status": string,
        "log_likelihood": nullable(number()),
        "n_parameters": nullable(integer(0)),
        "bic": nullable(number()),
        "aic": nullable(number()),
        "icl": nullable(number()),
        "converged": nullable(boolean),
        "n_iter": nullable(integer(0)),
        "reason": nullable(string),
    },
    required=("components", "covariance"),
)


def _criterion(value: Any, where: str) -> None:
    if value not in ("bic", "icl", "aic"):
        _fail(where, "one of bic, icl, aic")


FIELDS: dict[str, Check] = {
    "family": string,
    "covariance_type": string,
    "columns": array_of(string, min_items=1),
    "n_components": integer(1),
    "n_features": integer(1),
    "log_likelihood": nullable(number()),
    "n_samples": number(positive=True),
    "n_parameters": integer(0),
    "bic": nullable(number()),
    "aic": nullable(number()),
    "n_iter": integer(0),
    "converged": boolean,
    "degenerate": boolean,
    "collapsed_components": array_of(integer(0)),
    "settings": obj(
        {
            "n_components": integer(1),
            "covariance_type": string,
            "init": string,
            "n_restarts": integer(1),
            "max_iter": integer(0),
            "accelerate": boolean,
            "dtype": string,
            "tol": number(minimum=0),
            "reg_covar": number(minimum=0),
            "seed": integer(),
            "init_sample": integer(1),
            "family": string,
        }
    ),
    "history": array_of(number()),
    "starts": array_of(_START),
    "notes": array_of(string),
    "warnings": array_of(string),
    "best_start": integer(0),
    "reseeded": boolean,
    "model_name": string,
    "missing": obj(
        {
            "policy": string,
            "cells": integer(0),
            "rows": integer(0),
            "rows_all_missing": integer(0),
            "rows_dropped": integer(0),
        }
    ),
    "selection": obj(
        {
            "criterion": _criterion,
            "winner": obj({"components": integer(1), "covariance": string}),
            "runner_up_margin": nullable(number()),
            "table": array_of(_CANDIDATE),
        },
        required=("criterion", "table"),
    ),
    "sample_weight": obj({"rows": integer(0), "total": number(minimum=0)}),
}


def check_fields(data: dict[str, Any]) -> None:
    """Raise ValueError for the first common field of ``data`` that breaks its rule, or for
    a NaN, an Infinity or a number too large for a float anywhere in the file."""
    for key, value in data.items():
        check_finite(value, str(key))
    for key, rule in FIELDS.items():
        if key in data:
            rule(data[key], key)
    n_components = data.get("n_components")
    for j in data.get("collapsed_components", []):
        if isinstance(n_components, int) and j >= n_components:
            raise ValueError(f"collapsed_components names component {j} of {n_components}")


def check_finite(value: Any, where: str) -> None:
    """No NaN, Infinity (nor an integer beyond a float's range, which no reader can use)."""
    stack = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"{at} holds {item!r}, which a model file cannot hold")
        elif isinstance(item, int) and not isinstance(item, bool):
            if abs(item) > 2**1023:
                raise ValueError(f"{at} holds a number too large for a float")
        elif isinstance(item, dict):
            stack.extend((v, f"{at}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(item))
