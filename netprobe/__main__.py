"""``python -m netprobe``: the same command line as the ``netprobe`` script."""

from .cli import main

main()
