"""`python -m core ...`: the command line (core.cli), and a quick exit once it is done."""

from core.cli.console import exit_now
from core.cli.main import main

if __name__ == "__main__":
    exit_now(main())
