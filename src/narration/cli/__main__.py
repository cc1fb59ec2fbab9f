"""`python -m narration.cli ...`: the `narration` command."""

from . import main

main()
