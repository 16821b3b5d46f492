"""Runs the family contract, generated for every registered family: every parameter gets a
gradient, one epoch trains, every fitting (task, family) pair builds.

The tests live in the package (``suite/checks/test_family_contract.py``), so that
``suite.check.check_plugin`` runs them on a plug-in from an installed copy too; this module puts
them in ``make test``, on the built-in entries."""

from suite.checks.test_family_contract import *  # noqa: F403
