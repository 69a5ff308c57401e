"""Public names that a package imports from their modules only when first asked for.

A package's ``__init__`` that imports every module it re-exports makes each user pay
for all of them: resuming a session would build the event classes of agents and
environments, and load the agent runtime, for nothing. With :class:`LazyNames` the
package names where each public name lives; Python calls the package's module-level
``__getattr__`` for a name it does not hold yet (PEP 562), which imports that one
module and keeps the name, so the next use is an ordinary attribute.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from importlib import import_module
from typing import Any


class LazyNames:
    """The lazily imported names of ``package``: ``homes`` maps a module to the names it
    gives. Install with ``__getattr__ = names.attribute`` and ``__dir__ = names.listing``."""

    def __init__(self, package: str, homes: Mapping[str, Iterable[str]]) -> None:
        self.package = package
        self.module_of = {name: module for module, names in homes.items() for name in names}

    def attribute(self, name: str) -> Any:
        """The name, imported from its module and kept in the package from now on."""
        module = self.module_of.get(name)
        if module is None:
            raise AttributeError(f"module {self.package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        setattr(sys.modules[self.package], name, value)
        return value

    def listing(self) -> list[str]:
        """What ``dir(package)`` shows: what it holds and every public name."""
        package = sys.modules[self.package]
        return sorted(set(vars(package)) | set(getattr(package, "__all__", ())))
