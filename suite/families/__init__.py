"""Architecture families. Every module of this package is found and imported here (``pkgutil``),
so adding a family is adding one module that calls :func:`register_family`; the tasks it can run on
follow from the kinds and input ranks it declares."""

import importlib
import pkgutil

from suite.families.base import ACTIVATIONS, FAMILIES, Family, families_for, not_offered, register_family

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_info.name}")  # registration side effects

__all__ = ["ACTIVATIONS", "FAMILIES", "Family", "families_for", "not_offered", "register_family"]
