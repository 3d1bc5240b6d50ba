"""Small synthetic split datasets for trainer and model-file tests (seeded, no files)."""
import numpy as np

from gnn.data import SplitDataset


def tiny_split(seed=0, n_users=30, n_items=40, valid=True, titles=False) -> SplitDataset:
    """Per user: 6-12 random items, the last two to test, one to validation (when asked)."""
    rng = np.random.default_rng(seed)
    parts = {"train": ([], []), "valid": ([], []), "test": ([], [])}
    for u in range(n_users):
        items = rng.choice(n_items - 1, size=int(rng.integers(6, 13)), replace=False)  # last item unseen
        cut = len(items) - 2 - int(valid)
        for name, chunk in (("train", items[:cut]), ("valid", items[cut:-2] if valid else []),
                            ("test", items[-2:])):
            parts[name][0].extend([u] * len(chunk))
            parts[name][1].extend(chunk)
    arrays = {k: (np.array(us, dtype=np.int64), np.array(its, dtype=np.int64))
              for k, (us, its) in parts.items()}
    return SplitDataset(name="tiny", n_users=n_users, n_items=n_items, train=arrays["train"],
                        valid=arrays["valid"] if valid else None, test=arrays["test"],
                        user_ids=np.arange(100, 100 + n_users), item_ids=np.arange(n_items) * 3,
                        item_titles=[f"title {i}" for i in range(n_items)] if titles else None,
                        protocol="random" if valid else "given")
