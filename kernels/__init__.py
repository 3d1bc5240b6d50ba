"""Sparse kernels for graph collaborative filtering (installed as ``gnn.kernels``)."""
