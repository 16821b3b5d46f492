"""Runs the task contract, generated for every registered task.

The tests live in the package (``suite/checks/test_task_contract.py``), so that
``suite.check.check_plugin`` runs them on a plug-in from an installed copy too; this module puts
them in ``make test``, on the built-in entries."""

from suite.checks.test_task_contract import *  # noqa: F403
