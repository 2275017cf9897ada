"""Classic (shallow) fuzzy c-means, the baseline the deep clusterers improve on.

The alternating optimisation of Bezdek (1981) in the input space, sharing
its membership rule with the deep estimators
(:func:`deepcluster_sk.memberships.fcm_memberships`).
"""

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from .memberships import fcm_memberships, squared_distances

__all__ = ["fuzzy_cmeans"]


def fuzzy_cmeans(X, n_clusters, *, m=2.0, max_iter=300, tol=1e-5, random_state=None):
    """Classic fuzzy c-means by alternating optimisation.

    Alternates ``U = fcm_memberships(D, m)`` and
    ``C_j = sum_i u_ij^m x_i / sum_i u_ij^m`` from centres drawn at random
    among the samples, until the objective changes by less than ``tol``
    (relative).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_clusters : int
    m : float, default=2.0
        Fuzzifier, ``m > 1``.
    max_iter : int, default=300
    tol : float, default=1e-5
    random_state : int, RandomState instance or None

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
    memberships : ndarray of shape (n_samples, n_clusters)
    n_iter : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0., 0.], [0., 1.], [10., 10.], [10., 11.]])
    >>> centers, U, _ = fuzzy_cmeans(X, 2, random_state=0)
    >>> bool(U.argmax(axis=1)[0] != U.argmax(axis=1)[2])
    True
    """
    X = check_array(X, dtype=np.float64)
    if not m > 1:
        raise ValueError(f"m must be > 1, got {m}.")
    if not 1 <= n_clusters <= len(X):
        raise ValueError(f"n_clusters={n_clusters} must be in [1, n_samples={len(X)}].")
    rng = check_random_state(random_state)
    X_t = torch.from_numpy(X)
    C = X_t[rng.choice(len(X), n_clusters, replace=False)].clone()
    previous = np.inf
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        D = squared_distances(X_t, C)
        U = fcm_memberships(D, m)
        objective = float((U**m * D).sum())
        W = U**m
        C = (W.T @ X_t) / W.sum(0).clamp_min(1e-300)[:, None]
        if abs(previous - objective) <= tol * max(abs(objective), 1e-300):
            break
        previous = objective
    U = fcm_memberships(squared_distances(X_t, C), m)
    return C.numpy(), U.numpy(), n_iter
