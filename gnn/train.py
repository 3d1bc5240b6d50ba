"""``python -m gnn.train``: runs :mod:`gnn.cli.train` (the command-line programs live in gnn/cli/)."""
import sys

from gnn.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
