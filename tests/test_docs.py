"""The docs and tests stay whole: every hook has its reference section and its test, and the guide's examples run."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from spoc import hookspecs

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


def test_the_plugin_guide_example_runs() -> None:
    (example, *_) = re.findall(r"```python\n(.*?)```", (DOCS / "plugins.md").read_text(), re.DOTALL)
    result = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_plugin_options_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "workers.md").read_text(), re.DOTALL)
    (example,) = [b for b in blocks if "plugin_options=" in b]
    result = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, "always\n"), result.stderr
