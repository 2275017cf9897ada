"""Benchmark: inference speed of SignalToImage's U-Net by configuration and chunk size.

Times :class:`~deepcluster_sk.imaging.ResidualUNet` alone (untrained weights
drawn at random; speed does not depend on them) on 512 grey 28 x 28 images,
fed in chunks of 32 to 512 rows, in inference mode. Every (network, chunk)
pair is timed ``--repeats`` times, the pairs interleaved so that a slow
moment of a shared machine hits all of them alike; the table reports the
median milliseconds per image and the arithmetic per image
(``torch.utils.flop_counter``). Behind two choices of
:class:`~deepcluster_sk.SignalToImage`: the default network
(``channels=16, depth=1, downscale=2``) and CPU inference in chunks of
about 2**17 pixels (167 rows of 28 x 28)::

    OMP_NUM_THREADS=1 python benchmarks/bench_network_speed.py --out benchmarks/results/network_speed.jsonl
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from deepcluster_sk.imaging import ResidualUNet

ROOT = Path(__file__).resolve().parent
#: (channels, depth, downscale): SignalToImage's default, the benchmark's
#: earlier U-Net, and the earlier default
NETWORKS = [(16, 1, 2), (8, 2, 1), (32, 2, 1)]


def mflop(net, shape):
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, 1, *shape))
    return counter.get_total_flops() / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-images", type=int, default=512)
    ap.add_argument("--chunks", type=int, nargs="+", default=[32, 64, 167, 512])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--out", default=str(ROOT / "results" / "network_speed.jsonl"))
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(0)
    shape = (28, 28)
    x = torch.rand(args.n_images, 1, *shape)
    nets = {}
    for spec in NETWORKS:
        net = ResidualUNet(*spec).eval()
        torch.nn.init.normal_(net.out.weight, std=0.1)  # a trained network's output layer is not zero
        nets[spec] = net
    times = {}
    with torch.inference_mode():
        for net in nets.values():
            net(x[:32])  # oneDNN builds its kernels on the first call
        for _ in range(args.repeats):
            for spec, net in nets.items():
                for rows in args.chunks:
                    t = time.perf_counter()
                    for chunk in torch.split(x, rows):
                        net(chunk)
                    times.setdefault((spec, rows), []).append(1000 * (time.perf_counter() - t) / len(x))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"ms per image, median of {args.repeats}, {torch.get_num_threads()} thread(s), {len(x)} images of 28 x 28")
    print("| channels, depth, downscale | MFLOP / image | " + " | ".join(f"chunks of {r}" for r in args.chunks) + " |")
    print("|---|---|" + "---|" * len(args.chunks))
    with out.open("w") as fh:
        for spec, net in nets.items():
            flops = mflop(net, shape)
            cells = []
            for rows in args.chunks:
                ms = float(np.median(times[(spec, rows)]))
                cells.append(f"{ms:.3f}")
                fh.write(json.dumps(dict(channels=spec[0], depth=spec[1], downscale=spec[2], chunk_rows=rows,
                                         ms_per_image=round(ms, 4), mflop=round(flops, 2),
                                         threads=torch.get_num_threads(), repeats=args.repeats)) + "\n")
            print(f"| {spec[0]}, {spec[1]}, {spec[2]} | {flops:.1f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
