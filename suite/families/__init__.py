"""Architecture families. Each module registers one family; import them all here."""

from suite.families import mlp  # noqa: F401  (registration side effects)
from suite.families.base import ACTIVATIONS, FAMILIES, Family, register_family

__all__ = ["ACTIVATIONS", "FAMILIES", "Family", "register_family"]
