"""The programs in spoc's docs that need this plugin run with it installed (the docs live in the repository's docs/).

The core's test suite finds them (a ``requires="spoc_control"`` comment) and
skips them, as the plugin is not installed there; here they run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))  # the runner of the repository's docs

from doc_programs import DocProgram, requiring, run
from spoc.testing import App

PROGRAMS = requiring("spoc_control")


def test_the_docs_have_programs_that_need_the_plugin() -> None:
    assert {p.page for p in PROGRAMS} >= {"control.md"}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.id)
def test_a_docs_program_that_needs_the_plugin_runs(program: DocProgram, tmp_path: Path, spoc_app: type[App]) -> None:
    run(program, tmp_path, spoc_app)
