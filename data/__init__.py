"""Datasets for graph collaborative filtering (installed as ``gnn.data``)."""
