"""The model file: the versioned JSON form of a fitted model, dispatched on its family.

Common fields (every family): ``format``, ``schema_version``, ``family``, ``columns``,
``n_components``, ``n_features``, the fit's figures (``log_likelihood``, ``n_samples``,
``n_parameters``, ``bic``, ``aic``, ``n_iter``, ``converged``, ``degenerate``,
``collapsed_components``), ``settings``, ``history``, ``starts``, ``notes``, ``warnings``.
The family adds its parameters (``Family.params_to_dict``; Gaussian: ``covariance_type``,
``model_name``, ``weights``, ``means``, ``covariances`` in the native shape of the covariance
model).  Fields this module does not know are kept in ``model.extra`` and written back.

Schema version 2 (this one) stores native covariance shapes; version 1 (emcli 0.1.0) stored k
full matrices and is read as before.  docs/model-file.md has the field reference.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelFileError

if TYPE_CHECKING:  # model.py imports this module (no cycle at run time)
    from .model import MixtureModel

FORMAT = "emcli-gaussian-mixture"
SCHEMA_VERSION = 2
# Fields written by ``model_to_dict`` itself; anything else in a file is kept in ``extra``.
CORE_FIELDS = frozenset(
    "format schema_version family covariance_type model_name columns n_components "
    "n_features weights means covariances log_likelihood n_samples n_parameters bic aic "
    "n_iter converged degenerate collapsed_components settings history starts notes "
    "warnings blocks vocabulary word_probabilities".split()
)
_AGAIN = "write it again with 'emcli fit --params'"


def model_to_dict(model: MixtureModel) -> dict[str, Any]:
    """The model file's fields, in the order they are written."""
    out: dict[str, Any] = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "family": model.family_name,
    }
    params = model.family.params_to_dict(model.params)
    out["covariance_type"] = params.pop("covariance_type", None)
    if out["covariance_type"] is None:
        del out["covariance_type"]
    out.update(
        columns=list(model.columns),
        n_components=model.n_components,
        n_features=model.n_features,
    )
    out.update(params)
    out.update(
        log_likelihood=model.log_likelihood,
        n_samples=model.n_samples,
        n_parameters=model.n_parameters,
        bic=model.bic,
        aic=model.aic,
        n_iter=model.n_iter,
        converged=model.converged,
        degenerate=bool(model.collapsed),
        collapsed_components=list(model.collapsed),
        settings=dict(model.settings),
        history=list(model.history),
        starts=list(model.starts),
        notes=list(model.notes),
        warnings=list(model.warnings),
    )
    out.update(model.extra)
    return out


def to_json(model: MixtureModel) -> str:
    return json.dumps(finite(model_to_dict(model)), indent=2, allow_nan=False) + "\n"


def model_from_dict(data: Any, cls: type[MixtureModel]) -> MixtureModel:
    """A model from a parsed model file (``ModelFileError`` saying what is wrong)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelFileError(
            'not an emcli model file (no "format": "emcli-gaussian-mixture"); '
            "write one with: emcli fit DATA -k K --params model.json"
        )
    version = data.get("schema_version")
    if (
        not isinstance(version, int)
        or isinstance(version, bool)
        or not (1 <= version <= SCHEMA_VERSION)
    ):
        raise ModelFileError(
            f"model schema version {version!r} is not supported by this emcli "
            f"(it reads versions 1 to {SCHEMA_VERSION}); upgrade emcli"
        )
    try:
        return _model(data, version, cls)
    except ModelFileError:
        raise
    except KeyError as exc:
        raise ModelFileError(f"the model file is malformed: no field {exc}; {_AGAIN}") from None
    except Exception as exc:  # a malformed file, whatever part of it is wrong
        raise ModelFileError(f"the model file is malformed: {exc}; {_AGAIN}") from None


def _model(data: dict[str, Any], version: int, cls: type[MixtureModel]) -> MixtureModel:
    from .families import FAMILIES, family_class, get_family
    from .modelcheck import check_fields

    check_fields(data)  # every common field any command reads, once
    name = data.get("family", "gaussian")
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r} (this emcli knows {', '.join(FAMILIES)})")
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise ValueError("settings must be an object")
    columns = data["columns"]
    if not isinstance(columns, list):
        raise ValueError("columns must be a list of names")
    family_cls = family_class(name)
    if hasattr(family_cls, "from_model_file"):  # a family that reads its own settings
        family = family_cls.from_model_file(data)
    else:
        kind = data.get("covariance_type")
        reg = settings.get("reg_covar", 1e-6)
        if not isinstance(reg, (int, float)) or isinstance(reg, bool) or not reg >= 0:
            raise ValueError("settings.reg_covar must be a number >= 0")
        # The family's own settings (family "t": df, df_shared) as the fit recorded them.
        options = {
            key: settings[key]
            for key in getattr(family_cls, "options", ())
            if settings.get(key) is not None
        }
        family = get_family(name, covariance_type=kind, reg_covar=float(reg), **options)
    params = family.params_from_dict(data, version)
    return cls(
        params=params,
        columns=[str(c) for c in columns],
        log_likelihood=_number(data.get("log_likelihood"), math.nan),
        n_samples=_number(data.get("n_samples"), 0),
        n_iter=int(data.get("n_iter", 0)),
        converged=bool(data.get("converged", False)),
        history=[float(v) for v in data.get("history", [])],
        settings=dict(settings),
        starts=list(data.get("starts", [])),
        collapsed=[int(j) for j in data.get("collapsed_components", [])],
        notes=[str(v) for v in data.get("notes", [])],
        warnings=[str(v) for v in data.get("warnings", [])],
        extra={k: v for k, v in data.items() if k not in CORE_FIELDS},
        family=family,
    )


def _number(value: Any, default: float) -> Any:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, not {value!r}")
    return value


def load(path: str | Path, cls: type[MixtureModel]) -> MixtureModel:
    """Read and check a model file (``ModelFileError`` with the file's name)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelFileError(f"model file '{path}' does not exist") from None
    except IsADirectoryError:
        raise ModelFileError(
            f"model file '{path}' is a directory; give the JSON file written by "
            "'emcli fit --params'"
        ) from None
    except UnicodeDecodeError:
        raise ModelFileError(
            f"'{path}' is not an emcli model file (not UTF-8 text); give the JSON file "
            "written by 'emcli fit --params'"
        ) from None
    except OSError as exc:
        raise ModelFileError(f"cannot read model file '{path}': {exc}") from None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(
            f"'{path}' is not an emcli model file (not JSON: {exc}); give the JSON file "
            "written by 'emcli fit --params'"
        ) from None
    try:
        return model_from_dict(data, cls)
    except ModelFileError as exc:
        raise ModelFileError(f"'{path}': {exc.args[0]}") from None


def finite(value: Any) -> Any:
    """Replace non-finite floats by None (JSON has no NaN; no NaN reaches a file)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
