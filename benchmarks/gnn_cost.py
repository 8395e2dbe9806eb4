"""What one training epoch of a whole-CG GNN costs here, and the floor its dense layers set (issue #19).

The issue asks for a fit of 900 NB-201 networks in <= 60 s on this 2-core machine, "or the measured cost per
step and why it cannot go lower". This measures, for one predictor kind and its settings:

- the cost of one epoch of the predictor's own ``fit`` (900 networks' whole CGs, batches as configured,
  validation included): a fit of ``--epochs`` epochs minus a fit of one, per epoch, so the fixed costs
  (featurisation, the net's construction) drop out;
- the dense work in it: every node of every graph passes each message-passing layer's weight matrices,
  forward, then twice again backward (the gradients of the input and of the weights);
- what those multiply-adds alone take in torch's own matrix product, at the same shape (one batch's nodes x
  the layer's width), on this machine: a floor no message-passing kernel can beat, since the scatter of
  messages, the normalisation and the optimiser come on top.

    python -m benchmarks.gnn_cost [--kind gcn-cg] [--networks 900] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.common import machine_line

TARGET = "lat_ms_latbench_desktop_cpu_i7_7820x"


def matmul_gflops(rows: int, width: int, repeats: int = 20) -> float:
    """torch's float32 matrix product (rows, width) x (width, width), in GFLOP/s."""
    import torch

    a, b = torch.randn(rows, width), torch.randn(width, width)
    for _ in range(3):
        a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * rows * width * width * repeats / (time.perf_counter() - started) / 1e9


def timed_fit(kind: str, config: dict, train, valid):
    """(seconds, the fitted predictor)."""
    from hwnas.predictors import get_predictor

    started = time.perf_counter()
    predictor = get_predictor(kind, **config).fit(train, valid)
    return time.perf_counter() - started, predictor


def op_shares(kind: str, config: dict, train, valid, top: int = 8) -> tuple[list[tuple[str, float]], float]:
    """One epoch's fit under torch's profiler: the ``top`` operators by their own CPU time, each as a share of
    the fit's wall time, and the share no operator accounts for (Python: batching, the training loop)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        wall, _ = timed_fit(kind, {**config, "epochs": 1, "patience": 1, "lr_patience": 1}, train, valid)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    return [(e.key, e.self_cpu_time_total / 1e6 / wall) for e in events[:top]], max(0.0, 1 - total / wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", default="gcn-cg", help="a whole-CG GNN predictor (kgnn, gcn-cg, gin, gatv2)")
    parser.add_argument("--networks", type=int, default=900, help="training networks (default 900)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of the timed fit (default 4)")
    parser.add_argument("--repeats", type=int, default=2, help="timed pairs of fits; the median is kept")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                        help="a predictor setting, as hwnas predictor bench --set (e.g. hidden=64)")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (one epoch is the fixed-cost baseline)")
    import numpy as np
    import torch

    from hwnas.controller.cli.predictor import predictor_settings
    from hwnas.controller.data import nb201_table_path
    from hwnas.controller.learning.data import nb201_samples, read_nb201_table
    from hwnas.predictors import predictor_class
    from hwnas.predictors.gnn import GnnPredictor

    if not issubclass(predictor_class(args.kind), GnnPredictor):
        parser.error(f"--kind {args.kind} is not a whole-CG GNN (kgnn, gcn-cg, gin, gatv2)")
    settings = predictor_settings(args.settings, [args.kind]).get(args.kind, {})
    config = {**predictor_class(args.kind).defaults(), **settings}
    table = read_nb201_table(nb201_table_path(), TARGET)
    picked = np.random.default_rng(0).permutation(len(table.encodings))[:args.networks + 100]
    samples = nb201_samples([table.encodings[k] for k in picked], table.y[picked], flops=False, graphs=True)
    train, valid = samples.take(np.arange(args.networks)), samples.take(np.arange(args.networks, len(picked)))

    timed = {k: v for k, v in config.items() if k not in ("epochs", "patience", "lr_patience")}
    per_epoch = []
    for _ in range(args.repeats):
        short, _ = timed_fit(args.kind, {**timed, "epochs": 1, "patience": 1, "lr_patience": 1}, train, valid)
        full, fitted = timed_fit(args.kind, {**timed, "epochs": args.epochs, "patience": args.epochs,
                                       "lr_patience": args.epochs}, train, valid)
        per_epoch.append((full - short) / (args.epochs - 1))
    epoch = statistics.median(per_epoch)

    nodes = int(sum(len(g[0]) for g in train.graphs))
    layer_macs = sum(p.numel() for p in fitted.net.convs.parameters() if p.dim() == 2)  # per node, forward
    train_flops = 2 * 3 * nodes * layer_macs  # forward + two backward products, 2 FLOPs per multiply-add
    batch_nodes = nodes * int(config["batch_size"]) // args.networks
    rate = matmul_gflops(batch_nodes, int(config["hidden"]))
    floor = train_flops / (rate * 1e9)
    steps = -(-args.networks // int(config["batch_size"]))

    print(f"machine: {machine_line()}, torch {torch.__version__} with {torch.get_num_threads()} threads")
    print(f"{args.kind}, {args.networks} NB-201 networks (whole CGs, {nodes / args.networks:.0f} nodes each on "
          f"average), settings: hidden {config['hidden']}, layers {config['layers']}, batch {config['batch_size']}, "
          f"epochs {config['epochs']}")
    print(f"one epoch: {epoch:.2f} s ({', '.join(f'{s:.2f}' for s in per_epoch)}), {steps} steps of "
          f"{epoch / steps * 1e3:.1f} ms")
    print(f"dense layers: {nodes * layer_macs / 1e9:.2f} G multiply-adds forward per epoch, x3 with the backward "
          f"pass; torch's matrix product at ({batch_nodes} x {config['hidden']}) x ({config['hidden']} x "
          f"{config['hidden']}) runs at {rate:.1f} GFLOP/s here, so those alone take {floor:.2f} s "
          f"({floor / epoch:.0%} of the epoch)")
    shares, python = op_shares(args.kind, timed, train, valid)
    print("where one epoch's time goes (torch profiler, own CPU time of each operator): "
          + ", ".join(f"{name} {share:.0%}" for name, share in shares) + f"; outside any operator {python:.0%}")
    print(f"at its {config['epochs']} epochs: fit about {epoch * config['epochs']:.0f} s; "
          f"the dense layers' floor {floor * config['epochs']:.0f} s")


if __name__ == "__main__":
    main()
