"""``python -m emlab`` is the ``emlab`` command."""

from emlab.cli import main

main()
