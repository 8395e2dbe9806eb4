"""The GNN fit-cost benchmark in a short form (full form: python -m benchmarks.gnn_cost)."""

import re
import sys

import pytest

from benchmarks import gnn_cost


def test_gnn_cost_short_form_reports_the_epoch_its_floor_and_where_the_time_goes(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["gnn_cost", "--kind", "kgnn", "--networks", "40", "--epochs", "2",
                                      "--repeats", "1", "--set", "hidden=16", "--set", "layers=2"])
    gnn_cost.main()
    out = capsys.readouterr().out
    assert "kgnn, 40 NB-201 networks" in out and "hidden 16, layers 2" in out
    nodes = int(re.search(r"whole CGs, (\d+) nodes each", out).group(1))
    assert 100 < nodes < 300  # NB-201 networks: stem, three stages of cells, two reductions, head
    assert re.search(r"one epoch: -?\d+\.\d+ s", out) and "aten::" in out
    assert "at its 150 epochs: fit about" in out


@pytest.mark.parametrize(("args", "message"), [(["--epochs", "1"], "--epochs must be >= 2"),
                                               (["--kind", "ridge"], "--kind ridge is not a whole-CG GNN")])
def test_gnn_cost_refuses_what_it_cannot_time(monkeypatch, capsys, args: list[str], message: str) -> None:
    monkeypatch.setattr(sys, "argv", ["gnn_cost", *args])
    with pytest.raises(SystemExit) as stop:
        gnn_cost.main()
    assert stop.value.code == 2 and message in capsys.readouterr().err
