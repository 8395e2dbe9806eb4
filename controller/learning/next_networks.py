"""The networks a new device measures first: its space's reference set, then the most informative next ones.

``hwnas.predictors.selection`` chooses among candidates by what the source devices predict for them. Here the
candidates and the sources come from the lab: the space's packaged device tables (``device_tables``) and
other device keys of the dataset. The reference set uses the packaged tables only, so it is the same fixed
set for every lab and every new device of a space; a space without such a table spreads its reference set
over the encoding alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwnas.controller.learning.data import space_samples
from hwnas.controller.learning.device_tables import device_columns, packaged_sources, tables_of
from hwnas.controller.learning.jobs import transfer_sources
from hwnas.controller.spaces.base import SearchSpace
from hwnas.controller.spaces.catalog import sample
from hwnas.predictors.base import get_predictor
from hwnas.predictors.samples import Samples
from hwnas.predictors.selection import REFERENCE, next_to_measure

POOL = 2000  # candidates the choice is made among: enough to spread over, quick to score


def reference_set(space: SearchSpace, count: int = REFERENCE, seed: int = 0) -> list[list[int]]:
    """The space's fixed reference networks, in the order to measure them."""
    return next_networks(space, count, packaged_sources(space), measured=(), seed=seed)


def next_networks(space: SearchSpace, count: int, sources: Sequence[Samples],
                  measured: Sequence[Sequence[int]] = (), seed: int = 0) -> list[list[int]]:
    """``count`` networks for a device that has ``measured`` these, chosen among ``POOL`` candidates (the
    packaged tables' architectures where the space has them, else a seeded sample of the space)."""
    if count < 1:
        raise ValueError(f"the number of networks to choose must be >= 1, got {count}")
    known = [list(map(int, x)) for x in measured]
    done = {space.network_key(x) for x in known}  # the network, not its encoding: NB-201 cells have twins
    pool = [x for x in _candidates(space, seed) if space.network_key(x) not in done]
    if count > len(pool):
        raise ValueError(f"{space.name} has {len(pool)} candidate networks not yet measured, fewer than {count}")
    candidates = known + pool
    encoding = space_samples(space, candidates, views=("encoding",)).encoding
    logs = get_predictor("sources").use_sources(sources).log_predictions(encoding) if sources else None
    picked = next_to_measure(encoding, logs, count, measured=range(len(known)))
    return [candidates[k] for k in picked]


def _candidates(space: SearchSpace, seed: int) -> list[list[int]]:
    tabled = [x for name in tables_of(space.name) for x in device_columns(name).encodings]
    if tabled:
        unique = list({space.network_key(x): list(x) for x in tabled}.values())
        order = np.random.default_rng(seed).permutation(len(unique))[:POOL]
        return [unique[k] for k in order]
    return sample(space, POOL, seed)


def next_for_device(store, space: SearchSpace, device_key: str, count: int, sources: Sequence[str] | None = None,
                    seed: int = 0) -> tuple[list[list[int]], str]:
    """``count`` networks for ``device_key`` to measure next, and a phrase naming what chose them (the
    sources of ``jobs.transfer_sources``). Its own measurements of the space count as chosen, so a second
    call continues where the first one's measurements left off."""
    measured = [[int(v) for v in r["encoding"].split()] for r in store.measurements(device_key)
                if r["space"] == space.name]
    learned, learned_from = transfer_sources(store, space.name, device_key, sources)
    return next_networks(space, count, learned, measured, seed), learned_from
