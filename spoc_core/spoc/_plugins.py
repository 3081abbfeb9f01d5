"""One server's plugins: which are loaded, from where, and hook calls that cannot hurt the server.

Plugins come from ``Server(plugins=[...])``, the entry point group ``spoc``
(unless ``SPOC_DISABLE_PLUGIN_AUTOLOAD`` is set) and ``SPOC_PLUGINS`` (entry
point names, or ``module`` / ``module:attribute`` paths); any can be blocked
by name (``disable_plugins``, ``SPOC_DISABLE_PLUGINS``). They load when the
server starts; entry points are scanned once per process and ``sys.path``.
Hooks are called through pluggy, one call at a time per server, each
implementation isolated by `hookimpl` (see docs/plugins.md).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import logging
import os
import pickle
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, ParamSpec, TypeVar, overload

import pluggy

from . import hookspecs
from ._errors import SpocError
from ._log_extra import log_extra

__all__ = [
    "AUTOLOAD_ENV",
    "CHILD_HOOKS",
    "ChildPlugins",
    "DISABLE_ENV",
    "ENTRY_POINT_GROUP",
    "PLUGINS_ENV",
    "PluginError",
    "PluginInfo",
    "Plugins",
    "hookimpl",
    "installed_names",
    "names_in",
    "raises_refusals_here",
    "refused_by",
]

logger = logging.getLogger("spoc")

ENTRY_POINT_GROUP = "spoc"
AUTOLOAD_ENV = "SPOC_DISABLE_PLUGIN_AUTOLOAD"
DISABLE_ENV = "SPOC_DISABLE_PLUGINS"
PLUGINS_ENV = "SPOC_PLUGINS"

Source = Literal["builtin", "explicit", "entry point"]

CHECK_HOOKS = frozenset({"server_check", "worker_check"})
"""Hooks whose exceptions are not isolated: they refuse the worker, and the caller sees why."""

CHILD_HOOKS = ("child_starting", "child_event", "child_stopping")
"""Hooks that run inside process workers' children: the plugins implementing one travel there."""

_F = TypeVar("_F", bound=Callable[..., Any])
_pluggy_marker = pluggy.HookimplMarker("spoc")


@overload
def hookimpl(function: _F, /) -> _F: ...
@overload
def hookimpl(
    *,
    hookwrapper: bool = False,
    optionalhook: bool = False,
    tryfirst: bool = False,
    trylast: bool = False,
    specname: str | None = None,
    wrapper: bool = False,
) -> Callable[[_F], _F]: ...
def hookimpl(
    function: _F | None = None,
    /,
    *,
    hookwrapper: bool = False,
    optionalhook: bool = False,
    tryfirst: bool = False,
    trylast: bool = False,
    specname: str | None = None,
    wrapper: bool = False,
) -> _F | Callable[[_F], _F]:
    """Mark a function or method as the implementation of the spoc hook of the same name (or `specname`).

    pluggy's `HookimplMarker` for the project ``spoc``, with its options
    (``tryfirst``, ``trylast``, ``wrapper``, ...), and one addition: the
    implementation is isolated where it is marked. What it raises comes back
    among the hook's results (a `Failed`) instead of stopping pluggy's call:
    spoc logs it once, with the plugin's and the hook's names, and the other
    implementations still run; a check hook's (``server_check``, ``worker_check``) refusal
    propagates to the caller instead. Hook wrappers are not isolated.
    """

    def mark(function: _F) -> _F:
        if not (hookwrapper or wrapper):
            function = _isolated(function, (specname or function.__name__) in CHECK_HOOKS)
        return _pluggy_marker(
            function,
            hookwrapper=hookwrapper,
            optionalhook=optionalhook,
            tryfirst=tryfirst,
            trylast=trylast,
            specname=specname,
            wrapper=wrapper,
        )

    return mark if function is None else mark(function)


class Failed(NamedTuple):
    """What an isolated implementation returns instead of raising: `Plugins.call` logs it, naming the plugin."""

    isolated: Callable[..., Any]
    bound: tuple[object, ...]  # the object a method was called on, to tell two instances' methods apart
    exception: BaseException


def _isolated(function: _F, refuses: bool) -> _F:
    """`function`, returning a `Failed` instead of raising; a check hook's (`refuses`) raises, tagged for the caller."""

    @functools.wraps(function)
    def isolated(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (Exception, SystemExit) as exc:
            if refuses:
                exc._spoc_raised_in = (isolated, args[:1])  # type: ignore[union-attr]
                raise
            return Failed(isolated, args[:1], exc)

    return isolated  # type: ignore[return-value]


class PluginError(SpocError):
    """A plugin could not be loaded or registered; the message names it and says why."""

    __module__ = "spoc"


@dataclass(frozen=True)
class PluginInfo:
    """One active plugin, as ``spoc plugins`` lists it.

    Attributes:
        name: the name it is registered (and can be blocked) under.
        source: ``"entry point"``, ``"explicit"`` (given to the Server, or a
            module named by ``SPOC_PLUGINS``) or ``"builtin"`` (the core's own backends, ``spoc.backends``).
        distribution: the distribution that provides it, if known.
        version: that distribution's version, if known.
        hooks: the hooks it implements, sorted.
    """

    name: str
    source: Source
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]


@dataclass(frozen=True)
class ChildPlugin:
    """A plugin that implements a hook of the child (`CHILD_HOOKS`): a fork inherits it; pickled, a module
    travels by its name and an entry point's plugin by its entry point; any other object pickles."""

    name: str
    plugin: object
    entry_point: tuple[str, str] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        if self.entry_point is not None:
            return (_child_plugin_from_entry_point, (self.name, *self.entry_point))
        if isinstance(self.plugin, types.ModuleType):
            return (_child_plugin_from_module, (self.name, self.plugin.__name__))
        return (ChildPlugin, (self.name, self.plugin))


def _child_plugin_from_entry_point(name: str, ep_name: str, value: str) -> ChildPlugin:
    entry_point = importlib.metadata.EntryPoint(ep_name, value, ENTRY_POINT_GROUP)
    return ChildPlugin(name, _load(entry_point), (ep_name, value))


def _child_plugin_from_module(name: str, module: str) -> ChildPlugin:
    return ChildPlugin(name, importlib.import_module(module))


_loaded_entry_points: dict[tuple[str, str], object] = {}
_load_lock = threading.Lock()


_scanned: dict[tuple[str, ...], list[importlib.metadata.EntryPoint]] = {}


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    """The group's entry points, scanned once per process and `sys.path` (start latency: a scan takes milliseconds)."""
    key = tuple(sys.path)
    with _load_lock:
        if key not in _scanned:
            found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
            _scanned[key] = sorted(found, key=lambda ep: ep.name)
        return list(_scanned[key])


def installed_names() -> list[str]:
    """The entry point names of the installed plugins, sorted."""
    return sorted({entry_point.name for entry_point in _entry_points()})


_distributions: dict[tuple[str, str], tuple[str | None, str | None]] = {}


def _distribution_of(entry_point: importlib.metadata.EntryPoint) -> tuple[str | None, str | None]:
    """The name and version of the distribution that provides `entry_point`, read once per process (start
    latency: its metadata file is parsed on every read, a sixth of a millisecond per plugin per server)."""
    key = (entry_point.name, entry_point.value)
    found = _distributions.get(key)
    if found is None:
        dist = entry_point.dist
        found = (None, None) if dist is None else (dist.metadata["Name"], dist.version)
        _distributions[key] = found
    return found


class _Manager(pluggy.PluginManager):
    """pluggy's plugin manager, which finds the hook implementations of a plugin's class once per process.

    Start latency: pluggy looks at every attribute of a plugin with `inspect.getattr_static` on each
    registration, a third of a millisecond for a plugin of 50 attributes, paid by every server for every
    plugin (and again for the plugins its children get). An instance's own attribute (in its ``__dict__``),
    a module's and a class's are looked up as pluggy does.
    """

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        if isinstance(plugin, (type, types.ModuleType)) or name in _own_attributes(plugin):
            return super().parse_hookimpl_opts(plugin, name)
        found = _class_hookimpls.setdefault(type(plugin), {})
        try:
            return found[name]
        except KeyError:
            opts = found[name] = super().parse_hookimpl_opts(plugin, name)
            return opts


_class_hookimpls: weakref.WeakKeyDictionary[type, dict[str, Any]] = weakref.WeakKeyDictionary()
"""A plugin class's hook implementation options by attribute name (None: not one), as pluggy found them on the
first instance registered; a class changed afterwards is not looked at again."""


def _own_attributes(plugin: object) -> dict[str, Any]:
    """`plugin`'s ``__dict__``, read as pluggy reads it (no ``__getattr__``); empty without one."""
    try:
        own = object.__getattribute__(plugin, "__dict__")
    except AttributeError:
        return {}
    return own if isinstance(own, dict) else {}


def _load(entry_point: importlib.metadata.EntryPoint) -> object:
    """Import an entry point's plugin, once per process; wrap a failure in a PluginError."""
    key = (entry_point.name, entry_point.value)
    with _load_lock:
        if key in _loaded_entry_points:
            return _loaded_entry_points[key]
        try:
            plugin = entry_point.load()
        except Exception as exc:
            dist, version = _distribution_of(entry_point)
            provider = f"distribution {dist} {version}" if dist else "an unknown distribution"
            raise PluginError(
                f"spoc plugin entry point {entry_point.name!r} = {entry_point.value!r} (from {provider}) "
                f"failed to load: {type(exc).__name__}: {exc}. Fix or uninstall that distribution, or "
                f"block the plugin with {DISABLE_ENV}={entry_point.name} (or Server(disable_plugins=[...]))."
            ) from exc
        _loaded_entry_points[key] = plugin
        return plugin


def _name_of(plugin: object) -> str:
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    name = getattr(plugin, "name", None)
    return name if isinstance(name, str) and name else type(plugin).__name__


def names_in(text: str) -> list[str]:
    """The names of a comma-separated list, as ``SPOC_PLUGINS`` and ``SPOC_DISABLE_PLUGINS`` hold them."""
    return [name.strip() for name in text.split(",") if name.strip()]


def _import_requested(path: str) -> object:
    """The module (``pkg.module``) or attribute (``pkg.module:plugin``) `path` in ``SPOC_PLUGINS`` names."""
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise PluginError(f"spoc plugin module {module_name!r} ({PLUGINS_ENV}) failed to import: {exc}") from exc
        raise PluginError(
            f"{PLUGINS_ENV} names {path!r}, but no installed spoc plugin has that name "
            f"(installed: {', '.join(installed_names()) or 'none'}) and no module {module_name!r} can be imported. "
            f"Name an installed plugin, or a module (pkg.module or pkg.module:attribute) on sys.path."
        ) from exc
    except Exception as exc:
        raise PluginError(
            f"spoc plugin module {module_name!r} ({PLUGINS_ENV}) failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    if not attribute:
        return module
    try:
        return functools.reduce(getattr, attribute.split("."), module)
    except AttributeError:
        raise PluginError(
            f"{PLUGINS_ENV} names {path!r}, but module {module_name!r} has no attribute {attribute!r}"
        ) from None


def refused_by(exc: BaseException) -> str | None:
    """The plugin whose check hook raised `exc`, a TypeError or ValueError refusing a setting, else None.

    ``spoc run`` then prints the message alone; any other exception from a check hook is a bug, with a traceback.
    """
    if not isinstance(exc, TypeError | ValueError):
        return None
    who = getattr(exc, "_spoc_refused_by", None)
    return who if isinstance(who, str) else None


_P = ParamSpec("_P")
_R = TypeVar("_R")


def raises_refusals_here(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Make a public method raise a check hook's refusal (`refused_by`) from itself, without the frames below.

    The message says it all: the user's traceback ends at their call, and one frame of spoc's.
    """

    @functools.wraps(method)
    def trimmed(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            if refused_by(exc) is None:
                raise
            exc.__traceback__ = None  # its __cause__, if the plugin chained one, stays
            raise exc

    return trimmed


class Plugins:
    """The plugins of one server (named `owner` in messages), and the way its hooks are called; `hooks`: the
    hookspecs (a child's plugins need only the child's)."""

    def __init__(
        self,
        owner: str,
        explicit: Sequence[object] = (),
        disabled: Iterable[str] = (),
        hooks: types.ModuleType | type = hookspecs,
    ) -> None:
        self.owner = owner
        self._explicit = list(explicit)
        self._disabled = set(disabled)
        self._manager = _Manager("spoc")
        self._manager.add_hookspecs(hooks)
        self._all_hooks = hooks is hookspecs  # else (a child's) another hook's implementation is left alone
        self._infos: list[PluginInfo] = []
        self.implemented: set[str] = set()
        """The hooks with at least one implementation: calls of the others cost nothing."""
        self._for_children: list[ChildPlugin] = []
        self.for_children = ChildPlugins(owner, ())
        """The plugins that implement a hook of the child, to send to each process worker's child."""
        self._loaded = False
        self._lock = threading.RLock()
        self.lock = self._lock
        """Held while a hook runs (one call at a time per server). Whoever holds the server's lock and then calls a
        hook takes this one first (`Server._locked`): a hook that calls the server takes them in that order."""

    # ------------------------------------------------------------------ loading

    def add_builtin(self, plugin: object, name: str) -> None:
        """Register one of the core's own plugins (the server's backends): it cannot be blocked."""
        with self._lock:
            self._register(plugin, name, "builtin", "spoc-core", _core_version())

    def load(self) -> None:
        """Register every plugin that is not blocked (once). Raises PluginError naming the plugin at fault."""
        with self._lock:
            if self._loaded:
                return
            blocked = self._disabled | set(names_in(os.environ.get(DISABLE_ENV, "")))
            matched: set[str] = set()
            given = {_name_of(plugin) for plugin in self._explicit}
            requested = set(names_in(os.environ.get(PLUGINS_ENV, "")))
            autoload = os.environ.get(AUTOLOAD_ENV, "").strip() in ("", "0")
            if autoload or requested:
                for entry_point in _entry_points():
                    if not autoload and entry_point.name not in requested:
                        continue
                    requested.discard(entry_point.name)
                    dist, version = _distribution_of(entry_point)
                    if entry_point.name in given:
                        logger.info(
                            "installed spoc plugin %r (%s) is replaced by the one given to server %r",
                            entry_point.name,
                            dist,
                            self.owner,
                            extra=log_extra(server=self.owner),
                        )
                        continue
                    hit = {entry_point.name, dist or ""} & blocked
                    if hit:
                        matched |= hit
                        logger.info(
                            "spoc plugin %r (%s) is blocked", entry_point.name, dist, extra=log_extra(server=self.owner)
                        )
                        continue
                    plugin = _load(entry_point)
                    hooks = self._register(plugin, entry_point.name, "entry point", dist, version)
                    self._send_to_children(plugin, entry_point.name, hooks, (entry_point.name, entry_point.value))
            for plugin in [*self._explicit, *(_import_requested(path) for path in sorted(requested))]:
                name = _name_of(plugin)
                if plugin not in self._explicit and name in given:
                    continue  # the server's own plugin of that name wins, as it does over an entry point
                if name in blocked:
                    matched.add(name)
                    logger.info(
                        "spoc plugin %r given to server %r is blocked",
                        name,
                        self.owner,
                        extra=log_extra(server=self.owner),
                    )
                    continue
                hooks = self._register(plugin, name, "explicit", None, None)
                self._send_to_children(plugin, name, hooks, None)
            for name in sorted(blocked - matched):
                logger.warning(
                    "server %r: %r is blocked but no such plugin is installed or given (active: %s)",
                    self.owner,
                    name,
                    ", ".join(info.name for info in self._infos) or "none",
                    extra=log_extra(server=self.owner),
                )
            self.for_children = ChildPlugins(self.owner, tuple(self._for_children))
            if self.for_children:
                self.for_children.prepare()  # here, so that a forked child finds them registered
            self._loaded = True

    def _register(
        self, plugin: object, name: str, source: Source, dist: str | None, version: str | None
    ) -> tuple[str, ...]:
        """Register one plugin; return the hooks it implements."""
        if self._manager.has_plugin(name) or self._manager.is_registered(plugin):
            raise PluginError(
                f"server {self.owner!r}: a plugin named {name!r} is already registered; give each plugin "
                f"object a distinct `name` attribute"
            )
        try:
            self._manager.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"spoc plugin {name!r} does not fit spoc's hooks: {exc}") from exc
        hooks = []
        for caller in self._manager.get_hookcallers(plugin) or []:
            if not caller.has_spec() and self._all_hooks:
                self._manager.unregister(plugin)
                raise PluginError(self._unknown_hook_message(name, caller.name))
            hooks.append(caller.name)
        info = PluginInfo(name, source, dist, version, tuple(sorted(hooks)))
        self._infos.append(info)
        self.implemented.update(hooks)
        return info.hooks

    def _send_to_children(
        self, plugin: object, name: str, hooks: tuple[str, ...], entry_point: tuple[str, str] | None
    ) -> None:
        """Keep a plugin that implements a hook of the child (`CHILD_HOOKS`) for the children; it must pickle."""
        in_child = [hook for hook in CHILD_HOOKS if hook in hooks]
        if not in_child:
            return
        travelling = ChildPlugin(name, plugin, entry_point)
        try:
            pickle.dumps(travelling)
        except Exception as exc:
            self._manager.unregister(plugin)
            raise PluginError(
                f"spoc plugin {name!r} implements {' and '.join(in_child)}, which run"
                f"{'s' if len(in_child) == 1 else ''} in process workers' children, "
                f"but it cannot be sent there ({type(exc).__name__}: {exc}); spoc pickles it for spawn, "
                f"forkserver and its fork server. Make the plugin a module, a module-level object, or an "
                f"object that pickles."
            ) from exc
        self._for_children.append(travelling)

    def _unknown_hook_message(self, plugin: str, hook: str) -> str:
        known = sorted(name for name in hookspecs.__all__ if name != "hookspec")
        close = difflib.get_close_matches(hook, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return (
            f"spoc plugin {plugin!r} implements {hook!r}, which is not a spoc hook.{hint} "
            f"The hooks are: {', '.join(known)} (see spoc.hookspecs)."
        )

    @property
    def infos(self) -> list[PluginInfo]:
        """The active plugins, in the order they were registered."""
        self.load()
        return list(self._infos)

    # ------------------------------------------------------------------ calling

    def call(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call `hook` through pluggy, one call at a time per server; return its results. Never raises.

        What an implementation raised is logged once, naming its plugin and
        the hook, after the others have run.
        """
        if hook not in self.implemented:
            return []
        return self._call(hook, getattr(self._manager.hook, hook), kwargs)

    def _call(self, hook: str, caller: pluggy.HookCaller, kwargs: dict[str, Any]) -> list[Any]:
        with self._lock:
            try:
                results: list[Any] = caller(**kwargs)
            except Exception:  # a hook wrapper, or an implementation not marked with spoc.hookimpl
                logger.exception(
                    "server %r: hook %r raised outside its implementations; it goes on",
                    self.owner,
                    hook,
                    extra=log_extra(server=self.owner),
                )
                return []
        for result in results:
            if type(result) is Failed:
                logger.error(
                    "spoc plugin %r raised in hook %r; the server and the other plugins go on",
                    self._plugin_of(hook, result.isolated, result.bound),
                    hook,
                    exc_info=result.exception,
                    extra=log_extra(server=self.owner),
                )
        return [result for result in results if type(result) is not Failed] if results else results

    def _plugin_of(self, hook: str, isolated: Callable[..., Any], bound: tuple[object, ...]) -> str:
        """The name of the plugin whose implementation of `hook` is `isolated` (called with `bound` first)."""
        caller: pluggy.HookCaller = getattr(self._manager.hook, hook)
        for impl in caller.get_hookimpls():
            function = impl.function
            if getattr(function, "__func__", function) is isolated and (
                not hasattr(function, "__self__") or (bound and bound[0] is function.__self__)
            ):
                return impl.plugin_name
        return str(getattr(isolated, "__qualname__", isolated))

    def collect(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """(plugin name, result) for each non-None result of `hook`, in registration order: one call per plugin.

        For ``backend_register``, where a conflict must name the plugins.
        """
        results: list[tuple[str, Any]] = []
        with self._lock:
            for impl in getattr(self._manager.hook, hook).get_hookimpls():
                others = [plugin for plugin in self._manager.get_plugins() if plugin is not impl.plugin]
                caller = self._manager.subset_hook_caller(hook, others)
                results.extend((impl.plugin_name, result) for result in self._call(hook, caller, kwargs))
        return results

    def check(self, hook: str, **kwargs: Any) -> None:
        """Call a check hook (`CHECK_HOOKS`); what an implementation raises propagates, naming the plugin."""
        if hook not in self.implemented:
            return
        with self._lock:
            try:
                getattr(self._manager.hook, hook)(**kwargs)
            except Exception as exc:
                raised_in = getattr(exc, "_spoc_raised_in", None)
                if raised_in is None:
                    raise
                plugin = self._plugin_of(hook, *raised_in)
                exc._spoc_refused_by = f"spoc plugin {plugin!r} in its {hook} hook"  # type: ignore[attr-defined]
                note = f"(raised by spoc plugin {plugin!r} in its {hook} hook)"
                if sys.version_info >= (3, 11):
                    exc.add_note(note)
                else:
                    logger.error("server %r: %s %s", self.owner, exc, note, extra=log_extra(server=self.owner))
                raise


class ChildPlugins:
    """The server's plugins that implement a hook of the child (`CHILD_HOOKS`), as they travel to the children.

    The parent registers them (`prepare`) before it forks: start latency, a
    plugin manager built in a fresh fork costs most of a millisecond. Pickled
    into a fork of the process that made it (the fork server, its children)
    it is that very object again (its token); elsewhere (spawn) the members
    are registered anew.
    """

    def __init__(self, owner: str, members: tuple[ChildPlugin, ...], token: tuple[int, int] | None = None) -> None:
        self.owner = owner
        self.members = members
        self.token = token if token is not None else (os.getpid(), id(self))
        self._plugins: Plugins | None = None
        _made_here[self.token] = self

    def __reduce__(self) -> tuple[Any, ...]:
        # Start latency: the members travel pickled on their own, unpickled only where the token is unknown
        # (their plugins' rebuilding cost a fork of the fork server a fifth of a millisecond of faults).
        return (_child_plugins, (self.owner, pickle.dumps(self.members), self.token))

    def __bool__(self) -> bool:
        return bool(self.members)

    def prepare(self) -> Plugins:
        """The members, registered with a plugin manager of their own (once)."""
        if self._plugins is None:
            # Start latency: the child's hooks only, not all of spoc's (parsing every hookspec costs a
            # freshly forked child most of a millisecond).
            plugins = Plugins(self.owner, hooks=_CHILD_HOOKSPECS)
            for travelled in self.members:
                plugins._register(travelled.plugin, travelled.name, "explicit", None, None)
            plugins._loaded = True
            self._plugins = plugins
        return self._plugins

    def call(self, hook: str, **kwargs: Any) -> None:
        """Call `hook` of the members, as `Plugins.call` does."""
        if self.members:
            self.prepare().call(hook, **kwargs)


_made_here: weakref.WeakValueDictionary[tuple[int, int], ChildPlugins] = weakref.WeakValueDictionary()
"""Every live `ChildPlugins` by token: a fork of this process finds its parent's here (`_child_plugins`)."""


def _child_plugins(owner: str, members: bytes, token: tuple[int, int]) -> ChildPlugins:
    """A pickled `ChildPlugins`, rebuilt: the very object when this process is a fork of the one that made it."""
    known = _made_here.get(token)
    return known if known is not None else ChildPlugins(owner, pickle.loads(members), token)


_CHILD_HOOKSPECS = type("ChildHookspecs", (), {hook: staticmethod(getattr(hookspecs, hook)) for hook in CHILD_HOOKS})


@functools.cache
def _core_version() -> str | None:
    """spoc-core's version, read once: reading a distribution's metadata costs a good part of a millisecond."""
    try:
        return importlib.metadata.version("spoc-core")
    except importlib.metadata.PackageNotFoundError:
        return None
