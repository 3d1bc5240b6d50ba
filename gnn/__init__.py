"""Graph collaborative filtering on CSR graphs: NGCF, LightGCN and MF-BPR.

    >>> from gnn import NGCF, LightGCN, MF
"""
__version__ = "0.1.0"
