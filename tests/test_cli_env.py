"""Environment variables named after the long options (EMCLI_<COMMAND>_<LONG_NAME>)."""

from __future__ import annotations

import json
from pathlib import Path

from clirun import run

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "faithful.csv"


def test_options_come_from_environment_variables_named_after_long_flags():
    env = {
        "EMCLI_FIT_COMPONENTS": "2",
        "EMCLI_FIT_COVARIANCE": "diag",
        "EMCLI_FIT_RESTARTS": "2",
        "EMCLI_FIT_SEED": "7",
        "EMCLI_FIT_PARAMS": "-",
    }
    result = run("fit", SAMPLE, "-q", env=env)
    assert result.exit_code == 0, result.output
    model = json.loads(result.stdout)
    assert (model["n_components"], model["covariance_type"]) == (2, "diag")
    assert (model["settings"]["n_restarts"], model["settings"]["seed"]) == (2, 7)


def test_command_line_wins_over_environment():
    env = {"EMCLI_FIT_COMPONENTS": "2"}
    result = run("fit", SAMPLE, "-k", "3", "-n", "1", "-q", "--params", "-", env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_components"] == 3
