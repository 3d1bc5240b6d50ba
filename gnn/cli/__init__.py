"""The command-line programs: ``python -m gnn.train``, ``gnn.recommend``, ``gnn.reproduce``."""
