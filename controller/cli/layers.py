"""``hwnas predictor layers``: measure each distinct layer of a device's networks on that device.

The layer-wise predictor (BRP-NAS's baseline) sums these per-layer latencies; ``hwnas predictor train
--kind layerwise`` then fits its one scale factor on the device's end-to-end measurements.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from hwnas.controller.cli import common
from hwnas.controller.cli.measure import add_measurement_options


def add_layers_parser(predictor: argparse._SubParsersAction) -> None:
    p = predictor.add_parser(
        "layers", help="measure every distinct layer of a device's networks (for the layer-wise predictor)",
        description="Each distinct layer (op, attributes, input shapes) of the architectures measured on --device "
                    "(or of every architecture of --space) becomes a one-layer model measured by the device's "
                    "agents; the results go to the store, space 'layers'. Layers measured before are not measured "
                    "again.")
    p.add_argument("--db", type=common.db_target, required=True)
    p.add_argument("--device", required=True, metavar="KEY", type=common.DEVICE_KEY)
    p.add_argument("--space", default=None,
                   help="take the layers of every architecture of this space instead of the device's measured ones")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_measurement_options(p)
    p.set_defaults(func=cmd_layers)


def cmd_layers(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hwnas.controller.learning.layer_latency import distinct_layers, layer_jobs
    from hwnas.controller.search.evaluator import Evaluator
    from hwnas.controller.search.objectives import OBJECTIVES
    from hwnas.controller.store import Store

    if not common.dataset_exists(args.db) and not args.space:
        return common.fail("predictor layers", FileNotFoundError(f"no dataset at {args.db}"))
    try:
        from hwnas.controller.cli.measure import Measurement

        measurement = Measurement.from_args(args, args.device, f"layers:{args.device}")
    except (ValueError, OSError) as exc:
        return common.fail("predictor layers", exc)
    with Store(args.db) as store, contextlib.ExitStack() as stack:
        try:
            graphs = _graphs(store, args.device, args.space)
            layers = distinct_layers(graphs)
            bar = stack.enter_context(tqdm(total=len(layers), desc=f"layers on {args.device}", unit="layer",
                                           disable=args.quiet))
            evaluator = Evaluator(None, [OBJECTIVES["latency"]], None,
                                  stack.enter_context(measurement.measurer(store, bar.write)), None)
            for start in range(0, len(layers), 32):  # batches, so the bar moves and a kill loses little
                chunk = layers[start:start + 32]
                evaluator.evaluate_candidates(layer_jobs(chunk))
                bar.update(len(chunk))
        except KeyboardInterrupt:
            print("\nstopped; the layers measured so far are in the store", file=sys.stderr)
            return 130
        except (ValueError, ConnectionError, RuntimeError, OSError) as exc:
            return common.fail("predictor layers", exc)
    print(f"{len(evaluator.successful())} of {len(layers)} distinct layers of {len(graphs)} networks measured on "
          f"{args.device}")
    if common.report_failures("predictor layers", evaluator):
        return 1
    print(f"next: hwnas predictor train --db {args.db} --device {args.device} --kind layerwise")
    return 0


def _graphs(store, device_key: str, space_name: str | None) -> list:
    """The networks whose layers to measure: a whole space, or what the device measured end to end."""
    from hwnas.controller.learning.layer_latency import LAYER_SPACE
    from hwnas.controller.spaces import get_space

    if space_name:
        space = get_space(space_name)
        try:
            encodings = [x for x in space.enumerate() if space.has_network(x)]
        except NotImplementedError as exc:
            raise ValueError(f"--space {space_name}: {exc}; measure networks on {device_key} and leave out "
                             "--space") from None
        return [space.to_graph(x) for x in encodings]
    from hwnas.controller.graph import ComputationGraph

    arch_ids = dict.fromkeys(r["arch_id"] for r in store.measurements(device_key) if r["space"] != LAYER_SPACE)
    if not arch_ids:
        raise ValueError(f"the store has no measurements for device key {device_key!r}: run a campaign on it "
                         "first, or give --space")
    return [ComputationGraph.from_json(store.architecture(a).cg_json) for a in arch_ids]
