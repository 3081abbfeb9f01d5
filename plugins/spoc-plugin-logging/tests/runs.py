"""Running the test app under `spoc run`, and reading its JSON stream back."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from spoc.testing import App

APP = Path(__file__).parent / "apps" / "logging_app.py"


def spoc_run(spoc_app: type[App], mode: str, *options: str, env: dict[str, str] | None = None) -> App:
    """`spoc run` of the test app in `mode`, with `options`."""
    return spoc_app(
        command=[sys.executable, "-m", "spoc", "run", f"{APP}:server", *options],
        env={"SPOC_TEST_APP": mode, **(env or {})},
        cwd=APP.parent,
    )


def records(text: str) -> list[dict[str, Any]]:
    """Every line of `text` parsed as JSON (a line that is not fails the test, naming it)."""
    parsed = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"line {number} of stdout is not JSON: {line[:300]!r}")
    return parsed


def own_record(record: dict[str, Any], worker: str) -> bool:
    """Whether `record` is one of `worker`'s own (its output, its records, its lifecycle), not another plugin's
    record about it (spoc-plugin-restart's "is not restarted", when it is installed too)."""
    return record.get("worker") == worker and not str(record.get("logger", "")).startswith("spoc.")
