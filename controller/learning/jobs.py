"""The controller's use of the predictor library: benchmark tables, training from the store, artifacts by device.

Trained predictors live beside the dataset, ``<db>.predictors/<device key>/<kind>/`` (card.json +
weights.safetensors; for a PostgreSQL URL, ``<database>@<host>.predictors/`` in the working folder), so a
search started with ``--db lab.db --device KEY`` finds the predictor of that device without being told a
path.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from hwnas.controller.errors import SettingError
from hwnas.controller.learning.data import space_samples
from hwnas.controller.learning.layer_latency import LAYER_SPACE, layer_sums, measured_layers
from hwnas.controller.spaces import SPACES, get_space
from hwnas.predictors import Predictor, Samples, get_predictor, load, predictor_class
from hwnas.predictors.base import transfers
from hwnas.predictors.evaluate import Result, summarise
from hwnas.predictors.metrics import BOUNDS, MIN_HELD_OUT
from hwnas.protos import names

MIN_SAMPLES = 10  # measurements of one space a device key needs before a predictor is fitted to them

DEFAULT_KINDS = ("ridge", "svr", "stacked", "flops", "gcn")


def artifact_dir(db: str | Path, device_key: str, kind: str) -> Path:
    """Beside a SQLite dataset; for a server's (a URL), a local folder named after its database and host,
    never after its credentials."""
    names.device_key(device_key)  # the one place a key becomes a folder: it must not climb out of it
    text = str(db)
    if "://" not in text:
        return Path(f"{text}.predictors") / device_key / kind
    from sqlalchemy.engine import make_url

    url = make_url(text)
    return Path(f"{url.database or 'hwnas'}@{url.host or 'localhost'}.predictors") / device_key / kind


def load_for_device(db: str | Path, device_key: str, kind: str) -> Predictor:
    folder = artifact_dir(db, device_key, kind)
    if not (folder / "card.json").exists():
        raise FileNotFoundError(f"no {kind} predictor for {device_key} at {folder}; train one with "
                                f"`hwnas predictor train --db {db} --device {device_key} --kind {kind}`")
    return load(folder)


def store_samples(space_name: str, encodings: Sequence[Sequence[int]], y: np.ndarray, flops: np.ndarray) -> Samples:
    """A space's predictor views (``learning.data.space_samples``) with the stored FLOPs added."""
    return replace(space_samples(get_space(space_name), encodings, y), flops=np.asarray(flops, dtype=np.float64))


def pick_space(device_key: str, counts: Mapping[str, int], space: str | None = None) -> str:
    """The space a device key's predictor learns: ``space`` if given (and measured), else the only one it
    measured, else the only one a predictor can learn (a search space, with ``MIN_SAMPLES`` measurements);
    AutoGO's mutants and a few stray networks of another space do not make a key ambiguous."""
    if space is not None:
        if space not in counts:
            raise SettingError("space", f"{space!r} has no measurements on {device_key}; it measured "
                                        f"{_listing(counts)}")
        return space
    if len(counts) == 1:
        return next(iter(counts))
    usable = [name for name, n in counts.items() if name in SPACES and n >= MIN_SAMPLES]
    if len(usable) == 1:
        return usable[0]
    raise SettingError("space", f"is needed: {device_key} measured several spaces, {_listing(counts)}; a predictor "
                                "learns one")


def _listing(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} ({n})" for name, n in sorted(counts.items(), key=lambda item: -item[1]))


# Where the layer-wise predictor's per-layer latencies come from (``hwnas predictor train --layers-from``)
LAYER_SOURCES = {
    "isolated": "each layer timed as a model of its own (hwnas predictor layers)",
    "op-profiles": "each layer's median time inside the networks' per-op profiles (--op-profile)",
    "kernels": "nn-Meter's kernel view: kernel regressors fitted to the networks' per-op profiles",
}


def key_rows(store, device_key: str, space: str | None = None) -> tuple[str, list[dict]]:
    """One device key's measurements of one space (``pick_space``), wrong answers and layer graphs left out."""
    rows = [r for r in store.measurements(device_key)
            if r["space"] != LAYER_SPACE and r["output_check_status"] != "wrong_answer"]
    if not rows:
        raise ValueError(f"the store has no measurements for device key {device_key!r}")
    space = pick_space(device_key, Counter(r["space"] for r in rows), space)
    return space, [r for r in rows if r["space"] == space]


def rows_samples(space: str, rows: Sequence[Mapping]) -> Samples:
    """Measurement rows of one space as samples (latency_ms the target)."""
    return store_samples(space, _encodings(rows), np.array([r["latency_ms"] for r in rows]),
                         np.array([r["macs"] for r in rows], dtype=np.float64))


def _encodings(rows: Sequence[Mapping]) -> list[list[int]]:
    return [[int(v) for v in r["encoding"].split()] for r in rows]


def with_layer_sums(samples: Samples, store, device_key: str, space: str, rows: Sequence[Mapping], layers_from: str,
                    learn_from: Sequence[int] | None = None) -> Samples:
    """``samples`` (of ``rows``) with each architecture's layer sum, the layer-wise predictor's input, taken
    ``layers_from`` one of ``LAYER_SOURCES``. ``learn_from``: the rows whose op profiles teach the layer times
    (every profiled row by default), so that a held-out network's own profile never predicts it."""
    from hwnas.controller.learning import op_profile_layers

    if layers_from not in LAYER_SOURCES:
        raise SettingError("layers_from", f"must be one of {', '.join(LAYER_SOURCES)}, got {layers_from!r}")
    graphs = [get_space(space).to_graph(x) for x in _encodings(rows)]
    if layers_from == "isolated":
        return replace(samples, layer_sum=layer_sums(graphs, measured_layers(store, device_key)))
    teach = range(len(rows)) if learn_from is None else learn_from
    profiled = [(graphs[k], json.loads(rows[k]["op_profile_json"])) for k in teach
                if rows[k]["op_profile_json"] not in ("", "[]")]
    if not profiled:
        raise ValueError(f"no measurement of {space} on {device_key} has a per-op profile: measure them with "
                         "op profiles (`hwnas latbench build ... --op-profile`), or learn from isolated layers")
    if layers_from == "op-profiles":
        sums = op_profile_layers.profiled_layer_sums(graphs, op_profile_layers.profiled_layer_times(profiled))
    else:
        sums = op_profile_layers.KernelView.learn(profiled).sums(graphs)
    return replace(samples, layer_sum=sums)


def samples_from_store(store, device_key: str, layers_from: str | None = None,
                       space: str | None = None) -> tuple[str, Samples]:
    """What the agents measured on one device key (latency_ms), as samples of one space (``pick_space``).

    ``layers_from``: add each architecture's layer sum (``with_layer_sums``), the layer-wise predictor's input.
    The layer graphs themselves are not samples.
    """
    space, rows = key_rows(store, device_key, space)
    samples = rows_samples(space, rows)
    if layers_from:
        samples = with_layer_sums(samples, store, device_key, space, rows, layers_from)
    return space, samples


def train_from_store(store, db: str | Path, device_key: str, kind: str, valid_share: float = 0.1, seed: int = 0,
                     config: dict | None = None, sources: Sequence[str] = (), space: str | None = None,
                     layers_from: str = "isolated") -> tuple[Path, dict[str, float], str]:
    """Fit on (1 - valid_share) of the device's measurements of one space (``pick_space``), report metrics on
    the rest, save by device key; returns the folder, the metrics and the space learnt.

    ``sources``: other device keys of the store a transferring predictor (kind ``sources``) learns from;
    they must have measured the same space. ``layers_from``: where a layer-wise predictor's per-layer times
    come from (``LAYER_SOURCES``); from op profiles, only the training networks' profiles teach them.
    """
    from hwnas.predictors.metrics import evaluate

    needs_layers = "layer_sum" in predictor_class(kind).needs
    if layers_from not in LAYER_SOURCES:
        raise SettingError("layers_from", f"must be one of {', '.join(LAYER_SOURCES)}, got {layers_from!r}")
    if layers_from != "isolated" and not needs_layers:
        raise SettingError("layers_from", f"is for the layer-wise predictor (kind layerwise), not {kind}")
    space, rows = key_rows(store, device_key, space)
    samples = rows_samples(space, rows)
    if len(samples) < MIN_SAMPLES:
        raise ValueError(f"{device_key} has {len(samples)} measurements of {space}; a predictor needs at least "
                         f"{MIN_SAMPLES}")
    order = np.random.default_rng(seed).permutation(len(samples))
    n_valid = max(2, int(round(valid_share * len(samples))))
    if needs_layers:
        samples = with_layer_sums(samples, store, device_key, space, rows, layers_from, learn_from=order[n_valid:])
    valid, train = samples.take(order[:n_valid]), samples.take(order[n_valid:])
    predictor = get_predictor(kind, **(config or {}))
    if sources and not transfers(kind):
        raise SettingError("sources", f"are for a predictor that learns from other devices (kind sources), not {kind}")
    learned_from = ""
    if transfers(kind):
        learned, learned_from = transfer_sources(store, space, device_key, sources or None)
        predictor.use_sources(learned)
    predictor.fit(train, valid)
    metrics: dict[str, float] = {"held_out": len(valid)}
    if len(valid) >= MIN_HELD_OUT:
        metrics.update(evaluate(predictor.predict(valid), valid.y))
    predictor.card.device_key = device_key
    predictor.card.target = "latency_ms"
    predictor.card.space = space
    predictor.card.metrics = metrics
    predictor.card.notes = (f"space {space}; {len(train)} train, {held_out_summary(metrics)}"
                            + (f"; transferred from {learned_from}" if learned_from else "")
                            + (f"; layer times: {LAYER_SOURCES[layers_from]}" if needs_layers else ""))
    return predictor.save(artifact_dir(db, device_key, kind)), metrics, space


def held_out_summary(metrics: dict[str, float]) -> str:
    """The held-out scores in one phrase, or why there are none (Spearman over 2 points is 1.000 by chance)."""
    n = int(metrics["held_out"])
    if "spearman" not in metrics:
        return (f"{n} held-out measurements: too few to score the predictor (at least {MIN_HELD_OUT}; measure "
                f"more architectures)")
    return (f"on {n} held-out measurements: within ±10% (BRP-NAS) {metrics['brpnas_within_10pct'] * 100:.1f}%, "
            f"MAPE {metrics['mape'] * 100:.1f}%, Spearman {metrics['spearman']:.3f}")


def _source_samples(store, device_key: str, space: str) -> Samples:
    rows = Counter(r["space"] for r in store.measurements(device_key))
    if rows and space not in rows:
        raise ValueError(f"source device {device_key} measured {_listing(rows)}, not {space}")
    return samples_from_store(store, device_key, space=space)[1]


def transfer_sources(store, space: str, device_key: str,
                     named: Sequence[str] | None = None) -> tuple[list[Samples], str]:
    """What a new device's transfer learns from, and a phrase naming it: the ``named`` device keys of the
    store, or by default the space's packaged device tables and every other key of the store with at least
    ``MIN_SAMPLES`` measurements of the space."""
    from hwnas.controller.learning.device_tables import packaged_sources, tables_of

    if named is not None:
        if device_key in named:
            raise SettingError("sources", f"cannot include {device_key} itself; name other device keys")
        return [_source_samples(store, key, space) for key in named], ", ".join(named)
    counts = Counter(r["device_key"] for r in store.measurements() if r["space"] == space)
    keys = sorted(k for k, n in counts.items() if k != device_key and n >= MIN_SAMPLES)
    packaged = packaged_sources(get_space(space))
    if not packaged and not keys:
        raise SettingError("sources", f"are needed: no other device key measured {MIN_SAMPLES}+ {space} networks "
                                      f"and {space} has no packaged device tables to transfer from")
    tables = f"the packaged {'/'.join(tables_of(space))} devices ({len(packaged)})" if packaged else ""
    return packaged + [_source_samples(store, key, space) for key in keys], \
        " and ".join(part for part in (tables, ", ".join(keys)) if part)


def bench_table(results: Sequence[Result]) -> list[tuple[str, ...]]:
    """Rows for report.text_table: accuracy within +-1/5/10 % in both definitions, MAPE, RMSE, rank correlations."""
    header = ("predictor", *(f"BRP ±{round(k * 100)}%" for k in BOUNDS), *(f"nnM ±{round(k * 100)}%" for k in BOUNDS),
              "MAPE %", "MAE", "RMSE", "Spearman", "Kendall τ", "NDCG@10")
    rows = [header]
    for kind, metrics in summarise(results).items():
        # scores, not latencies: only the rank correlations mean anything ("layerwise[kernels]": a kind's variant)
        if predictor_class(kind.split("[")[0]).ranks_only:
            rows.append((kind, *["n/a"] * 9, *(_cell(metrics[m], 1, 3) for m in ("spearman", "kendall_tau",
                                                                                   "ndcg_at_10"))))
            continue
        rows.append((kind,
                     *(_cell(metrics[f"brpnas_within_{round(k * 100)}pct"]) for k in BOUNDS),
                     *(_cell(metrics[f"nnmeter_within_{round(k * 100)}pct"]) for k in BOUNDS),
                     _cell(metrics["mape"]),
                     *(_cell(metrics[m], 1, 3) for m in ("mae", "rmse", "spearman", "kendall_tau", "ndcg_at_10"))))
    return rows


def _cell(mean_std: tuple[float, float], scale: float = 100, digits: int = 1) -> str:
    return f"{mean_std[0] * scale:.{digits}f}±{mean_std[1] * scale:.{digits}f}"


def results_json(results: Sequence[Result]) -> str:
    return json.dumps([{"kind": r.kind, "seed": r.seed, **r.metrics} for r in results], indent=2)

