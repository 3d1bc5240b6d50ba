"""``python -m gnn.reproduce``: runs :mod:`gnn.cli.reproduce` (the command-line programs live in gnn/cli/)."""
import sys

from gnn.cli.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
