"""``python -m suite.cli``: the same as the ``suite`` command."""

from suite.cli import main

main()
