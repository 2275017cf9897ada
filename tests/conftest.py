"""Shared test fixtures: small data sets so every fit stays tiny.

Helpers shared by the test modules live in ``_helpers.py`` beside this file;
this directory is put on ``sys.path`` so ``tests/losses/`` imports them too.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_blobs

# The test fits are tiny: one intra-op thread is much faster than several
# threads contending for shared cores (and gives the same results).
torch.set_num_threads(1)

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def blobs():
    """120 x 8 float32 Gaussian blobs, 3 clusters, with their labels."""
    X, y = make_blobs(n_samples=120, n_features=8, centers=3, cluster_std=1.0, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="session")
def digits200():
    """The first 200 rows of digits, scaled to [0, 1] (8 x 8 images as flat rows)."""
    X, y = load_digits(return_X_y=True)
    return (X[:200] / 16.0).astype(np.float32), y[:200]
