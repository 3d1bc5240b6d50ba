"""``python -m gnn.export``: runs :mod:`gnn.cli.export` (the command-line programs live in gnn/cli/)."""
import sys

from gnn.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
