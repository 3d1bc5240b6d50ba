"""Install the `gnn` package (graph collaborative filtering with Triton kernels).

The import names are `gnn`, `gnn.kernels` and `gnn.data`; their sources live in the
top-level folders gnn/, kernels/ and data/ (docs/ARCHITECTURE.md): `kernels` and `data` are
other PyPI packages' import names, so they are installed under `gnn`.
"""
from setuptools import setup

setup(
    name="graphcf-triton",
    version="0.1.0",
    description="Graph collaborative filtering (NGCF, LightGCN, MF-BPR) on CSR graphs with Triton kernels",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=["gnn", "gnn.cli", "gnn.distributed", "gnn.evaluation", "gnn.models",
              "gnn.reproduction", "gnn.training",
              "gnn.kernels", "gnn.data"],
    package_dir={"gnn": "gnn", "gnn.kernels": "kernels", "gnn.data": "data"},
    install_requires=["torch>=2.4", "numpy>=1.23", "scipy>=1.9", "triton>=3.0", "tqdm>=4.60"],
    extras_require={
        "test": ["pytest>=7", "pytest-benchmark>=4"],
        "plot": ["matplotlib>=3.5"],
    },
    entry_points={
        "console_scripts": [
            "gnn-train=gnn.cli.train:main",
            "gnn-recommend=gnn.cli.recommend:main",
        ]
    },
)
