"""One small registry type for every extension point (tasks, families, optimizers, regularizers).

Modelled on timm's ``register_model`` / ``create_model`` / ``list_models``: entries are added with a
decorator, a duplicate name is an error (a silent overwrite would corrupt results), and an unknown
name raises an error that lists the known ones.
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from suite.errors import SuiteError

T = TypeVar("T")


class UnknownNameError(SuiteError, KeyError):
    """A name that is not in a registry. The message lists what is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """A named collection of entries of one kind.

    Args:
        kind: what the entries are, used in error messages (``"task"``, ``"family"``, ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name``; a name registered twice raises ``ValueError``."""
        if not name or name != name.strip():
            raise ValueError(f"{self.kind} name must be a non-empty trimmed string, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    @contextlib.contextmanager
    def scoped(self, name: str, entry: T) -> Iterator[T]:
        """``entry`` registered under ``name`` for the ``with`` block only (tests, ``suite check``)."""
        self.add(name, entry)
        try:
            yield entry
        finally:
            del self._entries[name]

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@REGISTRY.register("name")``."""

        def decorator(entry: T) -> T:
            return self.add(name, entry)

        return decorator

    def get(self, name: str) -> T:
        """Return the entry called ``name``, or raise :class:`UnknownNameError` listing the known names."""
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted registered names, optionally filtered by a shell-style ``pattern`` (``"digits*"``)."""
        names = sorted(self._entries)
        return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]

    def items(self) -> list[tuple[str, T]]:
        return [(n, self._entries[n]) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
