"""Architecture families. Each module registers one family; import them all here."""

from suite.families import (  # noqa: F401  (registration side effects)
    autoencoder,
    cnn,
    gan,
    mlp,
    rnn,
    transfer,
    transformer,
)
from suite.families.base import ACTIVATIONS, FAMILIES, Family, register_family

__all__ = ["ACTIVATIONS", "FAMILIES", "Family", "register_family"]
