"""The GENNAPE benchmark in a short form (full form: python -m benchmarks.gennape)."""

import sys

from benchmarks import gennape


def test_gennape_benchmark_short_form(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", [
        "gennape", "--max-networks", "60", "--families", "naslib-nb101", "--seeds", "1", "--finetune", "10",
        "--config", "cl_epochs=1,width=16,hidden=32,head_layers=2,epochs=5,kgnn_hidden=16,kgnn_layers=2,"
                    "kgnn_epochs=5,finetune_epochs=10,pairs_per_epoch=512,min_accuracy=0"])
    gennape.main()
    out = capsys.readouterr().out
    assert "naslib-nb101: 292 networks" in out
    for row in ("| GENNAPE |", "| k-GNN |", "| FLOPs |", "| synflow |"):
        assert row in out
    assert "targets: FT SRCC" in out
