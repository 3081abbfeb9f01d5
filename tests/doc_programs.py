"""The code blocks of the docs, and which of them are complete programs.

A ```` ```python ```` block is a *complete program* when pyflakes finds no
undefined name in it: everything it uses, it imports or defines. Every
complete program is run by the tests (`test_docs.py`), so no documented
program can rot. A fragment (a method shown alone, a line that uses a
``server`` defined elsewhere) uses a name it does not define, and is not run.

A program that does not simply end with exit code 0 says how to run it in an
HTML comment on the line before its block, which the rendered page does not
show::

    <!-- test: command="spoc run service.py:server" after="beat 1" signal="SIGTERM" stdout="stopping" -->
    ```python title="service.py"

Keys: ``command`` (default ``python FILE``; ``spoc`` stands for ``python -m
spoc``), ``after`` (texts, comma-separated, to wait for on stdout; then
``signal`` is sent), ``stdout`` (texts, comma-separated, the output must
contain), ``exit`` (the expected exit code, default 0) and ``requires`` (a module that must be importable, or
the program is skipped). The block is saved under its ``title`` (default
``program.py``) in a scratch directory, which is the working directory,
next to the page's other titled blocks: a test file can import the plugin
the page showed before it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pyflakes import api as pyflakes_api
from pyflakes import messages as pyflakes_messages
from pyflakes.reporter import Reporter

import docs_probe
from harness import ROOT, App
from spoc._plugins import names_in

FENCE = re.compile(
    r"(?:<!-- test: (?P<test>.*?) -->\n)?^```python(?P<info>[^\n]*)\n(?P<code>.*?)^```$", re.DOTALL | re.MULTILINE
)
KEY_VALUE = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class DocProgram:
    """One complete program from a docs page, and how to run it."""

    page: str
    line: int
    title: str
    code: str
    settings: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    """The page's titled blocks, by title: saved next to the program."""

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}:{self.title}"

    @property
    def expected_exit(self) -> int:
        return int(self.settings.get("exit", "0"))

    def texts(self, key: str) -> list[str]:
        """The comma-separated texts of setting `key`."""
        return names_in(self.settings.get(key, ""))

    def write_to(self, directory: Path) -> None:
        """Save the program, and the page's other titled blocks, under their titles in `directory`."""
        for title, code in {**self.files, self.title: self.code}.items():
            (directory / title).write_text(code)

    def argv(self, python: str) -> list[str]:
        words = shlex.split(self.settings.get("command", f"python {self.title}"))
        if words[0] == "spoc":
            return [python, "-m", "spoc", *words[1:]]
        if words[0] == "python":
            return [python, *words[1:]]
        raise ValueError(f"{self.id}: command {words[0]!r}: use python ... or spoc ...")


class _Collector(Reporter):  # type: ignore[misc]
    def __init__(self) -> None:
        self.undefined: list[str] = []

    def flake(self, message: object) -> None:
        if isinstance(message, pyflakes_messages.UndefinedName):
            self.undefined.append(str(message.message_args[0]))

    def unexpectedError(self, filename: str, msg: str) -> None:
        self.undefined.append(f"<{msg}>")

    def syntaxError(self, filename: str, msg: str, lineno: int, offset: int, text: str) -> None:
        self.undefined.append(f"<syntax error: {msg}>")


def undefined_names(code: str) -> list[str]:
    """The names `code` uses without importing or defining them (a syntax error counts as one)."""
    collector = _Collector()
    pyflakes_api.check(code, "<docs>", collector)
    return collector.undefined


def python_blocks(path: Path) -> list[tuple[int, str, str, dict[str, str]]]:
    """Every python block of a page: its line, title, code and test settings."""
    text = path.read_text()
    found = []
    for match in FENCE.finditer(text):
        title = re.search(r'title="([^"]+)"', match["info"])
        settings = dict(KEY_VALUE.findall(match["test"] or ""))
        line = text.count("\n", 0, match.start("code"))
        found.append((line, title[1] if title else "program.py", match["code"], settings))
    return found


def programs(pages: list[Path]) -> list[DocProgram]:
    """The complete programs of `pages`."""
    found = []
    for page in pages:
        blocks = python_blocks(page)
        files = {title: code for _, title, code, _ in blocks if title != "program.py"}
        for line, title, code, settings in blocks:
            if not undefined_names(code):
                found.append(DocProgram(page.name, line, title, code, settings, files))
    return found


def requiring(module: str) -> list[DocProgram]:
    """The programs of the repository's docs pages that need `module` (``requires=``): a plugin's suite runs them."""
    return [p for p in programs(sorted((ROOT / "docs").glob("*.md"))) if p.settings.get("requires") == module]


def run(program: DocProgram, directory: Path, app_factory: type[App]) -> None:
    """Run `program` in `directory` as its test comment says; assert its exit code and output.

    A program that needs a module that is not installed (``requires=``) is
    skipped: it runs in the test suite of the distribution that provides it.
    A signalled program is signalled after the texts it names, or after the
    probe plugin reports that its server started.
    """
    required = program.settings.get("requires")
    if required and importlib.util.find_spec(required) is None:
        pytest.skip(f"{program.id} needs {required}, which is tested with its own distribution")
    program.write_to(directory)
    tests = str(Path(__file__).parent)
    env = {
        "SPOC_PLUGINS": "docs_probe",
        "PYTHONPATH": os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")])),
    }
    app = app_factory(command=program.argv(sys.executable), cwd=directory, env=env)
    signal_name = program.settings.get("signal")
    if signal_name:
        for text in program.texts("after") or [docs_probe.MARKER]:
            app.expect(re.escape(text), timeout=60)
        app.signal(signal.Signals[signal_name])
    code = app.wait(60)
    assert code == program.expected_exit, f"{program.id}\n{app.stdout}\n{app.stderr}"
    for text in program.texts("stdout"):
        assert text in app.stdout, f"{program.id}: {text!r} not in\n{app.stdout}\n{app.stderr}"
