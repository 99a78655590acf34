"""`python -m crmsync.cli`: the same as the `crmsync` command."""

from crmsync.cli import main

main()
