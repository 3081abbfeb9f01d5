"""What ``spoc run TARGET`` runs: import ``module:attribute`` or ``path/to/file.py:attribute`` and make a Server of it.

The attribute may be a `Server`, a worker, a list or tuple of workers, a
worker class (one worker, named after it), or a callable that returns one of
those. A target that cannot be found or has the wrong type raises
`TargetError`, saying what was looked for and found (exit code 2); what the
user's own code raises propagates as it is.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from ._errors import SpocError
from ._server import Server
from ._worker import AbstractWorker

__all__ = ["TargetError", "describe", "load_server"]

EXPECTED = "a Server, a worker, a list of workers, or a callable returning one of those"


class TargetError(SpocError):
    """``spoc run``'s target cannot be imported, has no such attribute, or is not something spoc can run."""


def load_server(target: str) -> Server:
    """Import `target` (``module:attribute`` or ``file.py:attribute``) and return the Server to run."""
    location, separator, attribute = target.rpartition(":")
    if not separator or not location or not attribute:
        location = location or attribute
        module = _import(location) if location else None
        found = _candidates(module) if module is not None else []
        example = f"{location}:{found[0][0]}" if found else f"{location or 'app'}:server"
        have = f" ({location} has: {_listing(found)})" if found else ""
        raise TargetError(f"{target!r}: name the object to run after a colon, e.g. spoc run {example}{have}")
    module = _import(location)
    obj = _attribute(module, location, attribute)
    server = _as_server(obj, target)
    if not server.workers:
        found = [(name, kind) for name, kind in _candidates(module) if name != attribute]
        hint = f"; did you mean {location}:{found[0][0]}? ({location} has: {_listing(found)})" if found else ""
        source = f"{target!r} is" if obj is server else f"{target!r} ({describe(obj)}) made"
        raise TargetError(
            f"{source} a Server with no workers: there is nothing to run; add them with server.add_worker(){hint}"
        )
    return server


def describe(obj: object) -> str:
    """What `obj` is, for a message: ``a str ('x')``, ``the class Foo``, ``a list of 3 items``."""
    if isinstance(obj, type):
        return f"the class {obj.__qualname__}"
    if isinstance(obj, list | tuple):
        return f"a {type(obj).__name__} of {len(obj)} items"
    if isinstance(obj, ModuleType):
        return f"the module {obj.__name__}"
    text = repr(obj)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{_article(type(obj).__name__)} {type(obj).__name__} ({text})"


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _import(location: str) -> ModuleType:
    if location.endswith(".py") or os.sep in location:
        return _import_file(Path(location))
    return _import_module(location)


def _import_module(name: str) -> ModuleType:
    """Import `name` as ``python -m`` would find it: the current directory comes first on sys.path."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise TargetError(
                f"no module named {exc.name!r} (looked on sys.path, from {cwd}); give an importable module "
                f"(pkg.module:attribute) or a file (path/to/file.py:attribute)"
            ) from None
        raise


def _import_file(path: Path) -> ModuleType:
    """Import a file as the module named after it, its directory first on sys.path: a spawn or forkserver
    child finds a ProcessWorker class of the file again under that name."""
    if path.suffix != ".py":
        raise TargetError(f"{str(path)!r} is not a Python file; give path/to/file.py:attribute")
    if not path.is_file():
        raise TargetError(f"no file {str(path)!r} (from {os.getcwd()})")
    path = path.resolve()
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None:
        if getattr(existing, "__file__", None) == str(path):
            return existing
        raise TargetError(
            f"{str(path)!r} would be imported as the module {name!r}, but that name is already taken by "
            f"{getattr(existing, '__file__', None) or 'a built-in module'}; rename the file"
        )
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _attribute(module: ModuleType, location: str, attribute: str) -> object:
    obj: object = module
    for depth, part in enumerate(attribute.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            owner = location if depth == 0 else f"{location}:{'.'.join(attribute.split('.')[:depth])}"
            found = _candidates(module) if depth == 0 else []
            have = f"; it has: {_listing(found)}" if found else ""
            raise TargetError(f"{owner} has no attribute {part!r}{have}") from None
    return obj


def _candidates(module: ModuleType) -> list[tuple[str, str]]:
    """The module-level names `spoc run` could run, with their kinds."""
    found = []
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if isinstance(value, Server | AbstractWorker):
            found.append((name, type(value).__name__))
        elif _is_workers(value):
            found.append((name, "workers"))
    return found


def _listing(found: list[tuple[str, str]]) -> str:
    """``server (Server), jobs (workers)``: the candidates, for a message."""
    return ", ".join(f"{name} ({kind})" for name, kind in found)


def _is_workers(obj: object) -> bool:
    return isinstance(obj, list | tuple) and bool(obj) and all(isinstance(w, AbstractWorker) for w in obj)


def _as_server(obj: object, target: str, called: bool = False) -> Server:
    if isinstance(obj, Server):
        return obj
    if isinstance(obj, AbstractWorker):
        obj = [obj]
    if isinstance(obj, list | tuple):
        wrong = [(i, w) for i, w in enumerate(obj) if not isinstance(w, AbstractWorker)]
        if wrong:
            index, item = wrong[0]
            raise TargetError(f"{target!r}: item {index} of the list is {describe(item)}, not a worker")
        if not obj:
            raise TargetError(f"{target!r} is an empty {type(obj).__name__}: there is no worker to run")
        server = Server(target)
        for worker in obj:
            server.add_worker(worker)
        return server
    source = f"{target!r} returned" if called else f"{target!r} is"
    if called or not callable(obj):
        hint = "; spoc run calls the factory without an event loop: make it a plain def" if _is_coroutine(obj) else ""
        raise TargetError(f"{source} {describe(obj)}; spoc run needs {EXPECTED}{hint}")
    if isinstance(obj, type) and issubclass(obj, AbstractWorker):
        return _as_server(_one_of(obj), target, called=True)
    factory: Callable[[], object] = obj
    return _as_server(factory(), target, called=True)


def _one_of(worker_class: type[AbstractWorker]) -> AbstractWorker:
    """One worker of `worker_class`, named after it: ``spoc run app:Fetcher`` runs a worker named Fetcher."""
    try:
        return worker_class(name=worker_class.__name__)
    except TypeError as exc:
        raise TargetError(
            f"the worker class {worker_class.__qualname__} cannot be built from its name alone ({exc}); "
            f"point spoc run at an instance, a list of them, or a function that builds them"
        ) from None


def _is_coroutine(obj: object) -> bool:
    if inspect.iscoroutine(obj):
        obj.close()  # never awaited, on purpose: no "never awaited" warning
        return True
    return False
