"""Stash: typed storage that plugins keep on a server or a worker, as pytest's ``Stash``."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast

__all__ = ["Stash", "StashKey"]

T = TypeVar("T")
D = TypeVar("D")


class StashKey(Generic[T]):
    """A key of a `Stash`: make one per thing a plugin keeps, at module level (``KEY = StashKey[int]()``).

    Keys compare by identity, so two plugins' keys never clash, and the type
    of the value is the key's: ``stash[KEY]`` is typed for mypy.
    """

    __slots__ = ()


class Stash:
    """Where plugins keep their state for one server (`Server.stash`) or one worker (`AbstractWorker.stash`).

    A mapping from `StashKey` to value: ``stash[KEY] = value``,
    ``stash[KEY]``, ``stash.get(KEY, default)``, ``stash.setdefault(KEY,
    value)``, ``del stash[KEY]``, ``KEY in stash``. It lives and dies with what
    holds it, so a plugin needs no map of its own from servers or workers to
    its state, nor cleaning up after them. Not locked: a server's hooks are
    serialised (docs/hooks.md), which is enough for what hooks keep.
    """

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[StashKey[Any], Any] = {}

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._values[key] = value

    def __getitem__(self, key: StashKey[T]) -> T:
        return cast(T, self._values[key])

    def get(self, key: StashKey[T], default: D) -> T | D:
        """The value under `key`, or `default` when there is none."""
        return cast(T | D, self._values.get(key, default))

    def setdefault(self, key: StashKey[T], default: T) -> T:
        """The value under `key`; when there is none, `default`, stored under it first."""
        return cast(T, self._values.setdefault(key, default))

    def __delitem__(self, key: StashKey[T]) -> None:
        del self._values[key]

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<Stash of {len(self._values)} value{'s' if len(self._values) != 1 else ''}>"
