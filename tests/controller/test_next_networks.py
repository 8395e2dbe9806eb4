"""A new device's first measurements: the space's reference set, then the most informative next networks,
queued by ``latbench build`` and measured by a real agent on 127.0.0.1; then a predictor transferred to it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwnas.controller.cli.main import main
from hwnas.controller.learning.data import space_samples
from hwnas.controller.learning.device_tables import packaged_sources
from hwnas.controller.learning.jobs import load_for_device
from hwnas.controller.learning.next_networks import next_networks, reference_set
from hwnas.controller.spaces import get_space
from hwnas.controller.store import Store
from hwnas.device_agent.server import AgentServer
from hwnas.predictors.selection import next_to_measure


def test_the_first_choices_are_spread_over_the_sources_then_over_the_encoding() -> None:
    # one source: its log latency is the first encoding column; rows 0-9 differ only in the second column
    encoding = np.array([[k % 5, k // 5] for k in range(50)], dtype=float)
    logs = encoding[:, :1] * 2.0
    picked = next_to_measure(encoding, logs, 4)
    assert sorted(encoding[picked[:2], 0]) == [0.0, 4.0]  # s + 1 = 2 picks pin the one source's mix: its extremes
    assert len(set(picked)) == 4 and len({encoding[k, 1] for k in picked[2:]} - {encoding[k, 1] for k in picked[:2]})
    assert next_to_measure(encoding, logs, 4) == picked  # deterministic
    later = next_to_measure(encoding, logs, 2, measured=picked[:2])
    assert later == picked[2:4]  # measured rows count as chosen: a second call continues the first
    assert not set(next_to_measure(encoding, None, 10, measured=[1, 2])) & {1, 2}
    with pytest.raises(ValueError, match="cannot choose 49 of 48 unmeasured"):
        next_to_measure(encoding, logs, 49, measured=[0, 1])
    with pytest.raises(ValueError, match="must index the 50 candidates"):
        next_to_measure(encoding, logs, 1, measured=[50])


def test_the_reference_set_is_fixed_per_space_and_spreads_the_packaged_devices() -> None:
    space = get_space("nb201")
    ours = reference_set(space)
    assert ours == reference_set(space) and len({tuple(x) for x in ours}) == 10
    sources = packaged_sources(space)
    assert len(sources) == 8  # the measured NB-201 devices; the simulated accelerators are no source
    # the set spans the devices' latencies: its fastest and slowest networks are near the family's extremes
    predicted = np.exp(np.mean(np.log(np.column_stack([source.y for source in sources])), axis=1))
    order = {tuple(x): k for k, x in enumerate(_table_encodings())}
    mine = predicted[[order[tuple(x)] for x in ours]]
    assert mine.min() < np.quantile(predicted, 0.05) and mine.max() > np.quantile(predicted, 0.95)
    chosen_after = next_networks(space, 3, sources, measured=ours)
    assert not {tuple(x) for x in chosen_after} & {tuple(x) for x in ours}


def _table_encodings() -> list[list[int]]:
    from hwnas.controller.learning.device_tables import device_columns

    return device_columns("nb201").encodings


def test_a_new_device_measures_its_reference_set_then_its_next_networks_then_learns_by_transfer(
        tmp_path: Path, agent: AgentServer, capsys) -> None:
    db = tmp_path / "lab.db"
    base = ["latbench", "build", "--space", "nb201", "--devices", "new-cpu", "--protocol", "fixed", "--param",
            "count=5", "--db", str(db), "--agent", f"new-cpu={agent.address}", "--insecure", "--quiet", "--no-golden"]
    assert main([*base, "--reference-set"]) == 0
    space = get_space("nb201")
    with Store(db) as store:
        measured = [[int(v) for v in r["encoding"].split()] for r in store.measurements("new-cpu")]
    assert sorted(map(tuple, measured)) == sorted(map(tuple, reference_set(space)))
    assert main([*base, "--next", "4"]) == 0
    assert "the 4 most informative networks for new-cpu to measure next, by what the packaged nb201 devices (8) " \
           "measured" in capsys.readouterr().out
    with Store(db) as store:
        rows = list(store.measurements("new-cpu"))
    assert len(rows) == 14 and len({r["arch_id"] for r in rows}) == 14  # 4 more, none measured twice
    assert main(["predictor", "train", "--db", str(db), "--device", "new-cpu", "--kind", "sources", "--quiet"]) == 0
    predictor = load_for_device(db, "new-cpu", "sources")
    assert "transferred from the packaged nb201 devices (8)" in predictor.card.notes
    latency = predictor.predict(space_samples(space, [x for x in space.enumerate()][:50]))
    assert latency.shape == (50,) and np.all(latency > 0)


def test_next_and_the_reference_set_refuse_what_they_cannot_do(tmp_path: Path, capsys) -> None:
    base = ["latbench", "build", "--space", "nb201", "--db", str(tmp_path / "lab.db"), "--agent", "a=127.0.0.1:1",
            "--agent", "b=127.0.0.1:1",
            "--insecure", "--quiet"]
    assert main([*base, "--devices", "a,b", "--next", "3"]) == 2
    assert "--devices must be one device key with --next" in capsys.readouterr().err
    assert main([*base, "--devices", "a", "--sample", "3", "--sources", "b"]) == 2
    assert "--sources are for --next" in capsys.readouterr().err
    assert main([*base, "--devices", "a", "--next", "3", "--sources", "nobody"]) == 2
    assert "no measurements for device key 'nobody'" in capsys.readouterr().err
