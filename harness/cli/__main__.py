"""``python -m harness.cli``: the ``bench`` command, for a checkout without the entry point installed."""

from harness.cli import main

main()
