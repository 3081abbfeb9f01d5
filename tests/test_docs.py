"""The docs and tests stay whole: every hook has its reference section and its test, and the guide's examples run."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from doc_programs import DocProgram, programs, run, undefined_names
from harness import ROOT, App
from spoc import hookspecs
from spoc._server import KILL_GRACE

DOCS = Path(__file__).resolve().parent.parent / "docs"
HOOKS = sorted(name for name in hookspecs.__all__ if name != "hookspec")


def signature_heading(name: str) -> str:
    parameters = inspect.signature(getattr(hookspecs, name)).parameters
    return f"### `{name}({', '.join(parameters)})`"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_headed_by_its_exact_signature(hook: str) -> None:
    assert signature_heading(hook) in (DOCS / "hooks.md").read_text().splitlines()


def test_the_hook_reference_documents_no_hook_that_does_not_exist() -> None:
    documented = re.findall(r"^### `(\w+)\(", (DOCS / "hooks.md").read_text(), re.MULTILINE)
    assert sorted(documented) == HOOKS


def hooks_with_a_test() -> set[str]:
    """The hooks named by a ``test_hook_<name>`` function anywhere in the tests."""
    found = set()
    for path in Path(__file__).parent.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_hook_"):
                found.add(node.name.removeprefix("test_hook_"))
    return found


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test_named_after_it(hook: str) -> None:
    assert hook in hooks_with_a_test(), f"write test_hook_{hook}, a test that exercises the hook {hook}"


PAGES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]
PROGRAMS = programs(PAGES)


def test_the_docs_have_programs_to_run() -> None:
    assert {p.page for p in PROGRAMS} >= {"cli.md", "workers.md", "plugins.md", "README.md"}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.id)
def test_every_complete_program_in_the_docs_runs(program: DocProgram, tmp_path: Path, app_factory: type[App]) -> None:
    """Each block that defines or imports every name it uses runs as its comment says (default: exit 0)."""
    run(program, tmp_path, app_factory)


def test_a_fragment_is_told_apart_from_a_program() -> None:
    assert undefined_names("server.add_worker(Poller('p'))") == ["server", "Poller"]
    assert undefined_names("import sys\nprint(sys.argv)") == []
    assert undefined_names("def broken(:") == ["<syntax error: invalid syntax>"]


def test_the_deployment_examples_give_spoc_time_to_stop_before_the_outer_sigkill() -> None:
    """Each example's outer stop timeout exceeds spoc's shutdown timeout plus the kill grace."""
    page = (DOCS / "deployment.md").read_text()
    given = r"(?:--shutdown-timeout |SPOC_SHUTDOWN_TIMEOUT(?:[=:] ?\"?|, value: \"))(\d+)"
    shutdown = {float(seconds) for seconds in re.findall(given, page)}
    outer = [
        float(seconds)
        for seconds in re.findall(
            r"(?:TimeoutStopSec=|--stop-timeout |stop_grace_period: |terminationGracePeriodSeconds: )(\d+)", page
        )
    ]
    assert shutdown == {20.0} and len(outer) == 4
    assert min(outer) > max(shutdown) + KILL_GRACE
