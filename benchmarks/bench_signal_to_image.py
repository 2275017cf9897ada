"""Benchmark: SignalToImage against classical reconstruction on BloodMNIST cells.

Ground truth for evaluation only: BloodMNIST cells (``../shared/data/bloodmnist.npz``,
grey = mean of the RGB channels, 28 x 28, in [0, 1]), split into train
(signals only) / validation / test. Signals are simulated with
:class:`~deepcluster_sk.operators.FlowModulation` (fill 0.3) at compression
ratios 0.25 and 0.5, with white Gaussian noise at 40 and 20 dB SNR
(``sigma = rms(clean training signals) * 10^(-SNR/20)``).

Methods, on the same test cells: the mean training cell (a floor),
scaled back-projection ``c A^T s``, pseudo-inverse, Tikhonov and FISTA-TV
(box [0, 1]) with their weights tuned on the validation cells (an oracle
the self-supervised model does not get), SignalToImage with measurement
consistency only (negative control), SignalToImage with consistency +
equivariance, and the same network trained supervised on (signal, image)
pairs (upper bound). SignalToImage runs with its defaults unless
``--epochs``, ``--channels``, ``--batch-size``, ``--lr`` or ``--set`` say
otherwise; the supervised network copies its network and training settings.
Both networks get the noise level: SignalToImage
``noise_std=sigma`` (recorrupted-to-recorrupted, regularised pseudo-inverse
input), the supervised one the same regularised pseudo-inverse as input.
Each (ratio, noise) runs with 3 seeds (mask, noise,
weights); PSNR / SSIM are mean +- std over the test cells and seeds.

``--device cuda`` runs the operator, the iterative solvers (back-projection
and FISTA-TV) and both networks on the GPU (the pseudo-inverse and Tikhonov
rows stay NumPy / CPU); rows record the device.

Writes one JSON line per (method, ratio, SNR, seed) to
``benchmarks/results/signal_to_image.jsonl`` and prints a markdown table::

    OMP_NUM_THREADS=1 python benchmarks/bench_signal_to_image.py
    python benchmarks/bench_signal_to_image.py --table-from benchmarks/results/signal_to_image.jsonl

One thread: on a shared, loaded 2-core machine two intra-op threads made
training about 5x slower (threads spin-waiting on each other).
"""

import argparse
import ast
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import structural_similarity

from deepcluster_sk import SignalToImage
from deepcluster_sk.imaging import ResidualUNet
from deepcluster_sk.operators import FlowModulation
from deepcluster_sk.reconstruction import (
    back_projection, fista_tv, operator_norm, pinv_matrix, tikhonov, tikhonov_matrix,
)

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data" / "bloodmnist.npz"
SHAPE = (28, 28)
#: The --set values the supervised network takes from SignalToImage's
SUPERVISED_SET = ("n_stages", "depth", "downscale")


def load_cells(path):
    d = np.load(path)
    X = d["X"].reshape(-1, 3, *SHAPE).astype(np.float32) / 255.0
    return X.mean(1).reshape(len(X), -1)


def psnr(X_hat, X):
    return 10 * np.log10(1.0 / ((np.clip(X_hat, 0, 1) - X) ** 2).mean(1))


def ssim(X_hat, X):
    return np.array([structural_similarity(np.clip(a, 0, 1).reshape(SHAPE), b.reshape(SHAPE), data_range=1.0)
                     for a, b in zip(X_hat, X)])


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def timed_network(fn, S, repeats=5):
    """A trained network's output on ``S`` and its median time over ``repeats`` calls, after one
    warm-up call on a few rows (oneDNN builds its kernels on a model's first call; a deployed
    model is warm). Each call takes a fraction of a second, which one timing would leave to the
    machine's jitter; the solvers' single calls run for seconds."""
    fn(S[:32])
    times = []
    for _ in range(repeats):
        out, t = timed(fn, S)
        times.append(t)
    return out, float(np.median(times))


def train_supervised(op, S, X, *, channels, depth, downscale, epochs, batch_size, lr, seed, reg, n_stages=1,
                     device="cpu"):
    """The same network on the same first image as SignalToImage, trained on (signal, image) pairs (MSE).

    With ``n_stages``, as SignalToImage's: one U-Net per stage and a
    consistency step ``x <- x + P (s - A x)`` between stages.
    """
    torch.manual_seed(seed)
    nets = torch.nn.ModuleList(ResidualUNet(channels, depth, downscale) for _ in range(n_stages)).to(device)
    P = tikhonov_matrix(op, alpha=reg).to(device)  # SignalToImage's first image for noisy signals
    S_t, X_t = torch.from_numpy(S).to(device), torch.from_numpy(X).to(device)
    x0 = S_t @ P.T
    mu, sd = float(x0.mean()), float(x0.std())
    opt = torch.optim.Adam(nets.parameters(), lr=lr)
    n_batches = max(1, len(S) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * n_batches)
    g = torch.Generator().manual_seed(seed)

    def predict(s):
        x = s @ P.T
        for k, net in enumerate(nets):
            if k > 0:
                x = x + (s - op(x)) @ P.T
            x = mu + sd * net(((x - mu) / sd).reshape(-1, 1, *SHAPE)).reshape(len(s), -1)
        return x

    for _ in range(epochs):
        for idx in torch.tensor_split(torch.randperm(len(S), generator=g).to(device), n_batches):
            loss = ((predict(S_t[idx]) - X_t[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    nets.eval()

    def infer(s):
        # in SignalToImage's CPU chunks (about _cpu_chunk_pixels pixels), as its transform
        rows = max(16, SignalToImage._cpu_chunk_pixels // X.shape[1]) if torch.device(device).type == "cpu" else len(s)
        with torch.inference_mode():
            return torch.cat([predict(c) for c in torch.split(torch.from_numpy(s).to(device), rows)]).cpu().numpy()

    return infer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-val", type=int, default=100)
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.25, 0.5])
    ap.add_argument("--snrs", type=float, nargs="+", default=[40.0, 20.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    # None: SignalToImage's default (and the supervised network's, which copies SignalToImage's)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--channels", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--fista-iter", type=int, default=150)
    ap.add_argument("--out", default=str(ROOT / "results" / "signal_to_image.jsonl"))
    ap.add_argument("--methods", nargs="+", default=None)
    ap.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE",
                    help="SignalToImage parameters, as Python literals (e.g. n_stages=2 or "
                         "transforms=\"('rot90','flip','rotate')\"), for both s2i rows (the consistency-only "
                         "row keeps equivariance_weight=0); n_stages, depth and downscale also for the supervised row; "
                         "recorded in the rows")
    ap.add_argument("--device", default="cpu",
                    help="where the operator, the iterative solvers and the networks run (e.g. cuda)")
    args = ap.parse_args()
    overrides = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        try:
            overrides[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            sep = ""
        if not sep or not name:
            ap.error(f"--set takes NAME=VALUE with VALUE a Python literal, got {item!r}")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    X = load_cells(args.data)
    order = np.random.RandomState(0).permutation(len(X))
    X_tr = X[order[: args.n_train]]
    X_va = X[order[args.n_train : args.n_train + args.n_val]]
    X_te = X[order[-args.n_test :]]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    tuned = {}
    with out.open("w") as fh:
        for seed in args.seeds:  # seeds outermost: an interrupted run still covers every setting
            for ratio in args.ratios:
                for snr in args.snrs:
                    op = FlowModulation(image_shape=SHAPE, compression_ratio=ratio, fill=0.3,
                                        random_state=seed).to(args.device)
                    rng = np.random.RandomState(1000 + seed)
                    sigma = float(np.sqrt((op.forward(X_tr) ** 2).mean())) * 10 ** (-snr / 20)

                    def measure(Xs):
                        S = op.forward(Xs)
                        return (S + rng.normal(0, sigma, S.shape)).astype(np.float32)

                    S_tr, S_va, S_te = measure(X_tr), measure(X_va), measure(X_te)
                    lip = operator_norm(op) ** 2

                    def record(method, X_hat, train_s=0.0, infer_s=0.0, **extra):
                        p, q = psnr(X_hat, X_te), ssim(X_hat, X_te)
                        row = dict(method=method, ratio=ratio, snr_db=snr, seed=seed, n_train=args.n_train,
                                   n_test=len(X_te), psnr=float(p.mean()), psnr_std=float(p.std()),
                                   ssim=float(q.mean()), ssim_std=float(q.std()), train_s=round(train_s, 2),
                                   infer_ms=round(1000 * infer_s / len(X_te), 4), device=str(args.device),
                                   **extra)
                        fh.write(json.dumps(row) + "\n")
                        fh.flush()
                        rows.append(row)
                        print(f"ratio {ratio} snr {snr:g} seed {seed} {method:>22}: PSNR {p.mean():6.2f} "
                              f"SSIM {q.mean():.3f} train {train_s:7.1f}s infer {1000 * infer_s / len(X_te):8.3f} ms",
                              flush=True)

                    want = (lambda m: args.methods is None or m in args.methods)
                    if want("mean_cell"):
                        record("mean_cell", np.broadcast_to(X_tr.mean(0), X_te.shape))
                    if want("back_projection"):
                        def bp(S):
                            B = back_projection(op, S)
                            AB = op.forward(B)
                            c = (AB * S).sum(1, keepdims=True) / (AB * AB).sum(1, keepdims=True)
                            return c * B
                        Xh, t = timed(bp, S_te)
                        record("back_projection", Xh, infer_s=t)
                    if want("pseudo_inverse"):
                        P = pinv_matrix(op, rcond=1e-3).cpu().numpy()
                        Xh, t = timed(lambda S: S @ P.T, S_te)
                        record("pseudo_inverse", Xh, infer_s=t)
                    if want("tikhonov"):
                        key = ("tikhonov", ratio, snr)
                        if key not in tuned:
                            grid = [1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0]
                            tuned[key] = max(grid, key=lambda a: psnr(tikhonov(op, S_va, alpha=a), X_va).mean())
                        Xh, t = timed(tikhonov, op, S_te, alpha=tuned[key])
                        record("tikhonov", Xh, infer_s=t, alpha=tuned[key])
                    if want("fista_tv"):
                        key = ("fista_tv", ratio, snr)
                        if key not in tuned:  # oracle: tuned on validation images, first seed
                            grid = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]
                            scores = {w: psnr(fista_tv(op, S_va, SHAPE, weight=w, n_iter=args.fista_iter,
                                                       bounds=(0, 1), lipschitz=lip), X_va).mean() for w in grid}
                            tuned[key] = max(scores, key=scores.get)
                            print("  fista_tv validation PSNR by weight:",
                                  {w: round(float(v), 2) for w, v in scores.items()}, flush=True)
                        Xh, t = timed(fista_tv, op, S_te, SHAPE, weight=tuned[key], n_iter=args.fista_iter,
                                      bounds=(0, 1), lipschitz=lip)
                        record("fista_tv", Xh, infer_s=t, weight=tuned[key], n_iter=args.fista_iter)
                    common = dict(device=args.device, random_state=seed, rcond=1e-3,
                                  noise_std=sigma)  # the detector's noise level is known
                    common.update({k: v for k, v in (("channels", args.channels), ("max_epochs", args.epochs),
                                                     ("batch_size", args.batch_size), ("lr", args.lr))
                                   if v is not None})
                    for method, kw in (("s2i_consistency_only", dict(equivariance_weight=0.0)),
                                       ("s2i_equivariant", {})):  # its default weight
                        if not want(method):
                            continue
                        # --set wins over the row's own setting (the control keeps its weight 0)
                        params = {**common, **overrides, **kw}
                        model, t_fit = timed(SignalToImage(op, SHAPE, **params).fit, S_tr)
                        Xh, t = timed_network(model.transform, S_te)
                        record(method, Xh, train_s=t_fit, infer_s=t, epochs=model.max_epochs,
                               channels=model.channels, depth=model.depth, downscale=model.downscale,
                               **({"overrides": {k: repr(v) for k, v in overrides.items()}} if overrides else {}))
                    if want("supervised"):
                        # SignalToImage's network and training settings, as the equivariant row resolves them
                        # (the --set values it takes: n_stages, depth, downscale)
                        net = SignalToImage(op, SHAPE, **{**common, **{k: v for k, v in overrides.items()
                                                                      if k in SUPERVISED_SET}}).get_params()
                        infer, t_fit = timed(train_supervised, op, S_tr, X_tr, channels=net["channels"],
                                             depth=net["depth"], downscale=net["downscale"],
                                             epochs=net["max_epochs"], batch_size=net["batch_size"], lr=net["lr"],
                                             seed=seed, reg=sigma**2 / float(S_tr.var(0).mean()),
                                             n_stages=net["n_stages"], device=args.device)
                        Xh, t = timed_network(infer, S_te)
                        taken = {k: repr(v) for k, v in overrides.items() if k in SUPERVISED_SET}
                        record("supervised", Xh, train_s=t_fit, infer_s=t, epochs=net["max_epochs"],
                               channels=net["channels"], depth=net["depth"], downscale=net["downscale"],
                               **({"overrides": taken} if taken else {}))
    print_table(rows)


def label(row):
    """A row's name in the table: its method, and its ``--set`` values and epochs when it has any
    (or the ``probe`` a study file names it by)."""
    if row.get("probe"):
        return f"{row['method']} ({row['probe']})"
    if not row.get("overrides"):
        return row["method"]
    values = ", ".join(f"{k}={v}" for k, v in row["overrides"].items())
    return f"{row['method']} ({values}, {row['epochs']} epochs)"


def table_cells(rows):
    """(header, body rows) of the results table: PSNR / SSIM pooled over test cells and seeds."""
    rows = [dict(r, method=label(r)) for r in rows]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    configs = sorted(dict.fromkeys((r["ratio"], r["snr_db"]) for r in rows), key=lambda c: (c[0], -c[1]))
    head = ["method", *(f"ratio {r:g}, {s:g} dB" for r, s in configs), "train s", "ms / image"]
    body = []
    for m in methods:
        cells, train, infer = [], [], []
        for c in configs:
            sel = [r for r in rows if r["method"] == m and (r["ratio"], r["snr_db"]) == c]
            if not sel:
                cells.append("")
                continue
            pm, ps = _pooled([r["psnr"] for r in sel], [r["psnr_std"] for r in sel])
            qm, _ = _pooled([r["ssim"] for r in sel], [r["ssim_std"] for r in sel])
            cells.append(f"{pm:.1f} ± {ps:.1f} / {qm:.2f}")
            train += [r["train_s"] for r in sel]
            infer += [r["infer_ms"] for r in sel]
        body.append([m, *cells, f"{np.mean(train):.0f}", f"{np.mean(infer):.3g}"])
    return head, body


def write_rst(rows, path):
    """The table as an RST list-table (included by the user guide)."""
    head, body = table_cells(rows)
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [head, *body]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {c}" for c in row[1:]]
    Path(path).write_text("\n".join(lines) + "\n")


def print_table(rows):
    """Markdown table; PSNR / SSIM pooled over test cells and seeds (from per-seed mean and std)."""
    head, body = table_cells(rows)
    print(f"\nPSNR dB / SSIM, mean ± std over test cells and {len({r['seed'] for r in rows})} seed(s)\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in body:
        print("| " + " | ".join(row) + " |")


def _pooled(means, stds):
    """Mean and std of the union of equal-sized groups with these means and stds."""
    means, stds = np.asarray(means), np.asarray(stds)
    mean = means.mean()
    return mean, float(np.sqrt(np.mean(stds**2 + means**2) - mean**2))


if __name__ == "__main__":
    import sys

    if len(sys.argv) >= 3 and sys.argv[1] == "--table-from":  # re-print the table of a results file
        from _workspace import read_rows

        saved = read_rows([sys.argv[2]])
        print_table(saved)
        if len(sys.argv) == 4:
            write_rst(saved, sys.argv[3])
    else:
        main()
