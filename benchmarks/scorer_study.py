"""Which label-free scorer picks good deep soft clusterings?

Fits a small grid of :class:`~deepcluster_sk.DeepFuzzyCMeans` (or
:class:`~deepcluster_sk.DeepMEC`) models (softness ``m`` / ``gamma`` x
``latent_dim`` x ``n_clusters``) on digits (and USPS with ``--usps``), scores
every fitted model with each label-free scorer of
:data:`deepcluster_sk.metrics.LABEL_FREE_SCORERS` and with the estimator's own
``score`` (its negative objective), and measures the agreement of each
label-free score with the labelled ACC (Hungarian-matched accuracy) and NMI:

* Spearman's rank correlation over the grid (``scipy.stats.spearmanr``),
  higher is better; a scorer that ranks models like ACC does has rho near 1;
* the ACC of the model each scorer would select (its argmax), next to the
  best and the median ACC of the grid;
* which ``n_clusters`` each scorer prefers when everything else is fixed
  (one vote per group of models that differ only in ``n_clusters``), next to
  what ACC itself prefers (the ``acc (labels)`` reference row).

All scores are computed on the training rows (clustering is transductive);
labels are used only for ACC / NMI. Output: one JSON object per line (``fit``
rows, then ``correlation`` rows), then a markdown table.

Run (the figures in the user guide)::

    python benchmarks/scorer_study.py                       # digits, 12 fits
    python benchmarks/scorer_study.py --usps --usps-rows 3000
"""

import argparse
import itertools
import json
import sys
import time

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import normalized_mutual_info_score

from _workspace import data_dir

from deepcluster_sk import DeepFuzzyCMeans, DeepMEC
from deepcluster_sk.datasets import load_digits_images, load_usps
from deepcluster_sk.metrics import LABEL_FREE_SCORERS, cluster_accuracy, make_xie_beni_scorer

OWN_SCORE = "estimator.score"
REFERENCE = "acc (labels)"


def load(name, usps_rows, seed):
    if name == "digits":
        return load_digits_images(return_X_y=True)
    X, y = load_usps(data_dir(), return_X_y=True)
    if usps_rows and usps_rows < len(X):
        idx = np.random.RandomState(seed).choice(len(X), usps_rows, replace=False)
        X, y = X[idx], y[idx]
    return X, y


def score_all(estimator, X):
    scorers = dict(LABEL_FREE_SCORERS)
    if not hasattr(estimator, "m"):
        # DeepMEC has no fuzzifier: its memberships enter its objective linearly (m=1)
        scorers["xie_beni"] = make_xie_beni_scorer(m=1.0)
    scores = {}
    for name, scorer in scorers.items():
        try:
            scores[name] = scorer(estimator, X)
        except ValueError:  # e.g. a silhouette with one cluster left
            scores[name] = float("nan")
    scores[OWN_SCORE] = float(estimator.score(X))
    return scores


def run_grid(dataset, X, y, args):
    cls, soft_name = (DeepFuzzyCMeans, "m") if args.estimator == "fcm" else (DeepMEC, "gamma")
    rows = []
    grid = itertools.product(args.softness, args.latent_dims, args.n_clusters, args.seeds)
    for softness, latent_dim, n_clusters, seed in grid:
        estimator = cls(
            n_clusters, hidden_layer_sizes=tuple(args.hidden), latent_dim=latent_dim,
            pretrain_epochs=args.pretrain_epochs, max_epochs=args.max_epochs,
            batch_size=args.batch_size, device=args.device, random_state=seed,
            **{soft_name: softness},
        )
        start = time.perf_counter()
        estimator.fit(X)
        fit_s = time.perf_counter() - start
        labels = estimator.labels_
        row = {
            "type": "fit", "dataset": dataset, "estimator": cls.__name__, soft_name: softness,
            "latent_dim": latent_dim, "n_clusters": n_clusters, "seed": seed,
            "acc": cluster_accuracy(y, labels), "nmi": normalized_mutual_info_score(y, labels),
            "n_iter": int(estimator.n_iter_), "fit_s": round(fit_s, 2),
            **{k: float(v) for k, v in score_all(estimator, X).items()},
        }
        row[REFERENCE] = row["acc"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def n_clusters_votes(rows, name):
    """``{n_clusters: votes}``: the scorer's argmax within each group of models
    that differ only in ``n_clusters``."""
    groups = {}
    for r in rows:
        key = tuple((k, r[k]) for k in ("m", "gamma", "latent_dim", "seed") if k in r)
        groups.setdefault(key, []).append(r)
    votes = {}
    for members in groups.values():
        values = [r[name] if np.isfinite(r[name]) else -np.inf for r in members]
        k = int(members[int(np.argmax(values))]["n_clusters"])
        votes[k] = votes.get(k, 0) + 1
    return dict(sorted(votes.items()))


def correlations(dataset, rows):
    acc = np.array([r["acc"] for r in rows])
    nmi = np.array([r["nmi"] for r in rows])
    out = []
    for name in [*LABEL_FREE_SCORERS, OWN_SCORE, REFERENCE]:
        s = np.array([r[name] for r in rows])
        ok = np.isfinite(s)
        rho_acc = spearmanr(s[ok], acc[ok]).statistic if ok.sum() > 2 else float("nan")
        rho_nmi = spearmanr(s[ok], nmi[ok]).statistic if ok.sum() > 2 else float("nan")
        pick = int(np.nanargmax(np.where(ok, s, -np.inf)))
        chosen = {k: rows[pick][k] for k in ("m", "gamma", "latent_dim", "n_clusters") if k in rows[pick]}
        out.append({
            "type": "correlation", "dataset": dataset, "scorer": name, "n_models": int(ok.sum()),
            "spearman_acc": float(rho_acc), "spearman_nmi": float(rho_nmi),
            "selected_acc": float(acc[pick]), "selected_nmi": float(nmi[pick]),
            "selected": chosen, "n_clusters_votes": n_clusters_votes(rows, name),
            "best_acc": float(acc.max()), "median_acc": float(np.median(acc)),
        })
    return out


def markdown(corr_rows):
    lines = [
        "| dataset | scorer | Spearman vs ACC | Spearman vs NMI | ACC of its pick | its pick "
        "| n_clusters it prefers (votes) | best / median ACC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in corr_rows:
        pick = ", ".join(f"{k}={v}" for k, v in r["selected"].items())
        votes = ", ".join(f"{k}: {v}" for k, v in r["n_clusters_votes"].items())
        lines.append(
            f"| {r['dataset']} | {r['scorer']} | {r['spearman_acc']:+.2f} | {r['spearman_nmi']:+.2f} | "
            f"{r['selected_acc']:.3f} | {pick} | {votes} | {r['best_acc']:.3f} / {r['median_acc']:.3f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--usps", action="store_true", help="also run on USPS (needs usps.npz)")
    parser.add_argument("--usps-rows", type=int, default=3000, help="USPS subsample size (0: all)")
    parser.add_argument("--estimator", choices=("fcm", "mec"), default="fcm")
    parser.add_argument("--softness", type=float, nargs="+", default=None,
                        help="m values (fcm, default 1.5 2.0) or gamma values (mec, default 0.05 0.2)")
    parser.add_argument("--latent-dims", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--n-clusters", type=int, nargs="+", default=[8, 10, 12])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[256])
    parser.add_argument("--pretrain-epochs", type=int, default=30)
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: leave)")
    args = parser.parse_args(argv)
    if args.softness is None:
        args.softness = [1.5, 2.0] if args.estimator == "fcm" else [0.05, 0.2]
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    datasets = ["digits"] + (["usps"] if args.usps else [])
    all_corr = []
    for dataset in datasets:
        try:
            X, y = load(dataset, args.usps_rows, args.seeds[0])
        except FileNotFoundError as exc:
            print(f"skipping {dataset}: {exc}", file=sys.stderr)
            continue
        rows = run_grid(dataset, X, y, args)
        corr = correlations(dataset, rows)
        for r in corr:
            print(json.dumps(r), flush=True)
        all_corr += corr
    print()
    print(markdown(all_corr))


if __name__ == "__main__":
    main()
