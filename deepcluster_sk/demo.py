"""Demo: deep soft clustering of scikit-learn's digits beside KMeans and FCM.

Run with ``python -m deepcluster_sk.demo`` (or ``deepcluster-sk-demo``).
Fits :class:`DeepFuzzyCMeans` and :class:`DeepMEC` with their defaults on
the 1,797 8x8 digit images embedded in scikit-learn, and prints accuracy
(Hungarian-matched), NMI, ARI and fit time beside scikit-learn's ``KMeans``
and classic fuzzy c-means on the same data. No download is needed.
"""

import argparse
import time

from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from .baselines import fuzzy_cmeans
from .cluster import DeepFuzzyCMeans, DeepMEC
from .datasets import load_digits_images
from .metrics import cluster_accuracy


def _row(name, y, labels, seconds):
    return {
        "method": name,
        "acc": cluster_accuracy(y, labels),
        "nmi": normalized_mutual_info_score(y, labels),
        "ari": adjusted_rand_score(y, labels),
        "fit_s": seconds,
    }


def run(random_state=0, verbose=1):
    """Fit every method on digits; return (result rows, fitted deep estimators, X, y)."""
    X, y = load_digits_images(return_X_y=True)
    rows, fitted = [], []

    start = time.perf_counter()
    labels = KMeans(10, n_init=10, random_state=random_state).fit_predict(X)
    rows.append(_row("KMeans (raw pixels)", y, labels, time.perf_counter() - start))

    start = time.perf_counter()
    _, U, _ = fuzzy_cmeans(X, 10, m=2.0, random_state=random_state)
    rows.append(_row("fuzzy c-means (raw pixels)", y, U.argmax(1), time.perf_counter() - start))

    for estimator in (DeepFuzzyCMeans(10), DeepMEC(10)):
        estimator.set_params(random_state=random_state, verbose=verbose)
        name = type(estimator).__name__
        print(f"fitting {name} ...", flush=True)
        start = time.perf_counter()
        estimator.fit(X)
        seconds = time.perf_counter() - start
        rows.append(_row(name, y, estimator.labels_, seconds))
        fitted.append(estimator)
    return rows, fitted, X, y


def save_figure(estimator, X, y, path):
    """Embedding (PCA, alpha = max membership) and training curves, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import plot_embedding, plot_training_history

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    plot_embedding(estimator, X, y, ax=left)
    plot_training_history(estimator, ax=right)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def format_table(rows):
    """Markdown table of result rows."""
    lines = ["| method | ACC | NMI | ARI | fit s |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['acc']:.3f} | {r['nmi']:.3f} | {r['ari']:.3f} | {r['fit_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--figure", metavar="PNG", help="save DeepFuzzyCMeans' embedding and training curves")
    args = parser.parse_args(argv)
    rows, fitted, X, y = run(random_state=args.random_state, verbose=0 if args.quiet else 1)
    print("\nscikit-learn digits (1,797 images, 10 classes), default parameters:\n")
    print(format_table(rows))
    if args.figure:
        save_figure(fitted[0], X, y, args.figure)
        print(f"\nfigure saved to {args.figure}")


if __name__ == "__main__":
    main()
