"""The programs in spoc's docs that need this plugin run with it installed, against the test's redis-server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))  # the runner of the repository's docs

from doc_programs import DocProgram, requiring, run
from spoc.testing import App

PROGRAMS = requiring("spoc_redis")


def test_the_docs_have_programs_that_need_the_plugin() -> None:
    assert {p.page for p in PROGRAMS} >= {"redis.md"}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.id)
def test_a_docs_program_that_needs_the_plugin_runs(
    program: DocProgram, tmp_path: Path, spoc_app: type[App], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOC_REDIS_URL", redis_url)  # the programs read it, as the plugin does
    run(program, tmp_path, spoc_app)
