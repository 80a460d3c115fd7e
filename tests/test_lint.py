"""Lint, format and types are part of the test run (ruff and mypy come with the test
extra), so each can fail CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "emcli", "tests", "benchmarks"],
        ["ruff", "format", "--check", "emcli", "tests", "benchmarks"],
        ["mypy", "emcli"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_tool_finds_nothing(command):
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
