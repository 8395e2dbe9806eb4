"""Search objectives, looked up by name, and where each one's value comes from.

Three sources, one interface:

- ``measured``: latency, energy and power come from an agent's measurement record (through the fleet);
- ``graph``: FLOPs (multiply-accumulates, the NAS papers' convention) and parameters come from the CG;
- ``evaluator``: accuracy comes from a pluggable evaluator — the packaged NB-201 table, a user callable
  ``module:function`` (where a lab plugs in its supernet validation) or a saved predictor.

Every value is kept in its natural unit and direction (``column`` names the unit); searches turn them into
minimisation form with ``Objective.sign``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.controller.errors import SettingError
from hwnas.controller.graph import ComputationGraph
from hwnas.controller.spaces import Candidate, SearchSpace


@dataclass(frozen=True)
class Objective:
    name: str
    column: str  # the output column, unit in its name
    minimise: bool
    source: str  # "measured" | "graph" | "evaluator"
    description: str
    record_field: str = ""  # for measured objectives: the measurement record's field

    @property
    def sign(self) -> float:
        """Multiplier that turns the value into a quantity to minimise."""
        return 1.0 if self.minimise else -1.0


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("latency", "latency_ms", True, "measured", "end-to-end latency measured by the device's agent",
              "latency_ms"),
    Objective("energy", "energy_mj", True, "measured", "energy per inference measured over the timed window",
              "energy_per_inference_mj"),
    Objective("power", "power_w", True, "measured", "mean power over the timed window", "mean_power_w"),
    Objective("flops", "macs", True, "graph", "multiply-accumulates of the computation graph"),
    Objective("params", "params", True, "graph", "parameters of the computation graph"),
    Objective("accuracy", "accuracy_pct", False, "evaluator", "top-1 accuracy from the --accuracy evaluator"),
)}


def get_objectives(names: str | Sequence[str]) -> list[Objective]:
    """Objectives from a comma-separated list; unknown or repeated names are a ValueError naming the field."""
    wanted = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    unknown = [n for n in wanted if n not in OBJECTIVES]
    if unknown:
        raise SettingError("objectives", f": unknown {', '.join(map(repr, unknown))}; known: {', '.join(OBJECTIVES)}")
    if len(set(wanted)) != len(wanted) or len(wanted) < 2:
        raise SettingError("objectives", f"needs two or more distinct names, got {','.join(wanted)}")
    return [OBJECTIVES[n] for n in wanted]


AccuracyFn = Callable[[Sequence[Candidate]], list[float]]


def graph_value(objective: Objective, graph: ComputationGraph) -> float:
    return float(graph.macs() if objective.name == "flops" else graph.params())


# -- accuracy evaluators ------------------------------------------------------------------------------
def table_accuracy(name: str, space: SearchSpace, column: str = "") -> AccuracyFn:
    """Lookup in a packaged table (``hwnas.controller.data.TABLES``): accuracy in %, the table's default column
    unless another is named. Rows and candidates meet by canonical encoding (``space.canonical``: masked
    variables do not matter), or by network where the table copies networks under several keys (the first
    row of a network answers for it); only the table's space, at the table's input size, can be looked up."""
    from hwnas.controller.data import get_table, table_rows

    try:
        table = get_table(name)
    except ValueError as exc:
        raise SettingError("accuracy", f"{name}: {exc}") from None
    if table.space != space.name:
        raise SettingError("accuracy", f"{name} looks up architectures of {table.space!r}, not of {space.name!r}")
    column = column or table.accuracy
    if not column:
        raise SettingError("accuracy", f"{name} holds no accuracy (latency only); name a column: {name}:COLUMN")
    rows = table_rows(name)
    if column not in rows[0]:
        raise SettingError("accuracy", f"{name}:{column}: no such column; columns: {', '.join(rows[0])}")
    def key(x: Sequence[int]) -> tuple[int, ...]:
        return space.network_key(x) if table.copies else tuple(space.canonical(x))

    values: dict[tuple[int, ...], float] = {}
    for row in rows:
        if row[column] not in ("", "nan"):
            values.setdefault(key(space.from_string(table.key_of(row))), float(row[column]))

    def evaluate(candidates: Sequence[Candidate]) -> list[float]:
        out = []
        for c in candidates:
            if c.space != table.space:
                raise SettingError("accuracy", f"{name} looks up architectures of {table.space!r}, not of {c.space!r}")
            if table.input_size and c.graph.input_shape[-1] != table.input_size:
                raise ValueError(f"the {name} table holds accuracies at {table.input_size} px, not at "
                                 f"{c.graph.input_shape[-1]} px")
            found = values.get(key(c.encoding))
            if found is None:
                raise ValueError(f"the {name} table has no {column} for {c.arch}")
            out.append(found)
        return out

    return evaluate


PROXIES = {"params": lambda graph: graph.params(), "macs": lambda graph: graph.macs()}


def proxy_accuracy(measure: str) -> AccuracyFn:
    """A size proxy standing in for accuracy where a space has no accuracy figures (the elastic transformer):
    log10 of the network's parameters or MACs, so that bigger ranks better. It is not an accuracy; records
    and reports name it by its spec."""
    if measure not in PROXIES:
        raise SettingError("accuracy", f"proxy:{measure}: the proxies are {', '.join(f'proxy:{k}' for k in PROXIES)}")
    size = PROXIES[measure]
    return lambda candidates: [float(np.log10(1 + size(c.graph))) for c in candidates]


def callable_accuracy(target: str) -> AccuracyFn:
    """``module:function``; the function takes one ``Candidate`` and returns accuracy in %."""
    module_name, _, function_name = target.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise SettingError("accuracy", f"{target}: cannot import it ({exc})") from None
    if not callable(function):
        raise SettingError("accuracy", f"{target} is not callable")
    return lambda candidates: [float(function(c)) for c in candidates]


class PredictorAccuracy:
    """A saved accuracy predictor over a space's architectures: the search's accuracy evaluator (called with
    candidates) and, through ``predict_encodings``, LINAS's accuracy predictor for its inner search, so LINAS
    ranks by the lab's predictor instead of a ridge fitted to that predictor's outputs. A predictor that reads
    whole computation graphs (GENNAPE, the GNNs) gets each network's graph, one that reads encodings the
    space's encoding. Predictions are cached per network (``space.network_key``): an inner search asks for
    thousands of architectures per iteration, most of them again, and building a graph costs milliseconds.
    """

    def __init__(self, predictor: Any, space: SearchSpace) -> None:
        self.predictor, self.space = predictor, space
        self.reads_graphs = "graphs" in predictor.needs
        self.cache: dict[tuple[int, ...], float] = {}

    def __call__(self, candidates: Sequence[Candidate]) -> list[float]:
        return self._values([c.encoding for c in candidates], {self.space.network_key(c.encoding): c.graph
                                                                for c in candidates}).tolist()

    def predict_encodings(self, encodings: Sequence[Sequence[int]]) -> np.ndarray:
        return self._values(encodings, {})

    def _values(self, encodings: Sequence[Sequence[int]], graphs: dict) -> np.ndarray:
        from hwnas.controller.learning.data import space_samples
        from hwnas.controller.learning.families import graph_samples

        keys = [self.space.network_key(x) for x in encodings]
        missing = {k: x for k, x in zip(keys, encodings, strict=True) if k not in self.cache}
        if missing:
            new = list(missing)
            if self.reads_graphs:
                built = [graphs.get(k) or self.space.to_graph(missing[k]) for k in new]
                samples = graph_samples(built, self.space.name)
            else:
                samples = space_samples(self.space, [missing[k] for k in new])
            # an accuracy in %: never outside 0-100, whatever the predictor extrapolates to
            values = np.clip(self.predictor.predict(samples), 0.0, 100.0)
            self.cache.update(zip(new, values.tolist(), strict=True))
        return np.array([self.cache[k] for k in keys])


def predictor_accuracy(path: str, space: SearchSpace, kind: str = "") -> PredictorAccuracy:
    """A saved predictor (``hwnas predictor train`` or ``hwnas predictor gennape`` folder) as the accuracy
    evaluator; ``kind``: the predictor must be of this kind."""
    from hwnas.predictors import load as load_predictor

    flag = f"{kind or 'predictor'}:{path}"
    try:
        predictor = load_predictor(Path(path))
    except (OSError, ValueError, KeyError) as exc:
        raise SettingError("accuracy", f"{flag}: {exc}") from None
    if kind and predictor.kind != kind:
        raise SettingError("accuracy", f"{flag} holds a {predictor.kind!r} predictor, not {kind!r}")
    return PredictorAccuracy(predictor, space)


def accuracy_evaluator(spec: str, space: SearchSpace) -> AccuracyFn:
    """``table[:COLUMN]`` (the space's packaged table), ``NAME[:COLUMN]`` (a packaged table by name, e.g.
    ``nb201:acc_cifar100_test``), ``predictor:PATH``, ``gennape:PATH`` (a GENNAPE folder: it reads each
    candidate's computation graph), ``proxy:params|macs`` (a size proxy, not an accuracy) or
    ``module:function``."""
    from hwnas.controller.data import TABLES

    kind, _, rest = spec.partition(":")
    if kind == "table":
        if not space.accuracy_table:
            raise SettingError("accuracy", f"table: {space.name} has no packaged accuracy table")
        return table_accuracy(space.accuracy_table, space, rest)
    if kind in TABLES:
        return table_accuracy(kind, space, rest)
    if kind == "predictor":
        return predictor_accuracy(rest, space)
    if kind == "gennape":
        return predictor_accuracy(rest, space, kind="gennape")
    if kind == "proxy":
        return proxy_accuracy(rest)
    if rest:
        return callable_accuracy(spec)
    raise SettingError("accuracy", f"{spec!r}: give table[:COLUMN], a packaged table NAME[:COLUMN], "
                                   "predictor:PATH, gennape:PATH, proxy:params|macs or module:function")


def evaluate_static(objectives: Sequence[Objective], candidates: Sequence[Candidate],
                    accuracy: AccuracyFn | None) -> dict[str, list[Any]]:
    """Values of the objectives that need no device: graph objectives and accuracy."""
    out: dict[str, list[Any]] = {}
    for objective in objectives:
        if objective.source == "graph":
            out[objective.name] = [graph_value(objective, c.graph) for c in candidates]
        elif objective.source == "evaluator":
            if accuracy is None:
                raise SettingError("accuracy", "is needed: the accuracy objective has no evaluator")
            out[objective.name] = accuracy(candidates)
    return out
