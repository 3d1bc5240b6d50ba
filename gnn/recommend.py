"""``python -m gnn.recommend``: runs :mod:`gnn.cli.recommend` (the command-line programs live in gnn/cli/)."""
import sys

from gnn.cli.recommend import main

if __name__ == "__main__":
    sys.exit(main())
