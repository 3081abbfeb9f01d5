"""The programs in spoc's docs that need this plugin run with it installed (the docs live in the repository's docs/).

The core's test suite finds them (a ``requires="spoc_restart"`` comment) and
skips them, as the plugin is not installed there; here they run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).parents[3]
PAGES = sorted((CHECKOUT / "docs").glob("*.md"))

if (CHECKOUT / "tests" / "doc_programs.py").is_file():
    sys.path.insert(0, str(CHECKOUT / "tests"))
    from doc_programs import DocProgram, programs

    PROGRAMS = [p for p in programs(PAGES) if p.settings.get("requires") == "spoc_restart"]
else:  # not a checkout of the spoc repository
    PROGRAMS = []


def test_the_docs_have_programs_that_need_the_plugin() -> None:
    if not PAGES:
        pytest.skip("run from a checkout of the spoc repository, which has docs/")
    assert {p.page for p in PROGRAMS} >= {"supervision.md", "patterns.md"}


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.id)
def test_a_docs_program_that_needs_the_plugin_runs(program: DocProgram, tmp_path: Path) -> None:
    assert "signal" not in program.settings, "signalled programs are not supported here: end them by themselves"
    program.write_to(tmp_path)
    result = subprocess.run(
        program.argv(sys.executable),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert result.returncode == program.expected_exit, result.stderr
    for text in program.texts("stdout"):
        assert text in result.stdout, result.stderr
