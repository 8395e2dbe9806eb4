"""#38 item 3: the elastic transformer space end to end on a real onnxruntime agent: a LatBench build, the
light and whole-CG latency predictors trained from the store, and a LINAS search whose accuracy is a size
proxy (the space has no accuracy figures)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from controller.cli.main import main
from controller.errors import SettingError
from controller.search.objectives import accuracy_evaluator
from controller.spaces import get_space
from controller.store import Store

from ..conftest import start_agent

FAST = ["--protocol", "fixed", "--param", "count=3", "--quiet", "--no-golden", "--insecure"]


def test_build_train_and_search_the_transformer_space_on_a_real_agent(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "tf.db")
    agent = start_agent(tmp_path / "cache")
    try:
        assert main(["latbench", "build", "--space", "transformer", "--sequence", "8", "--devices", "k",
                     "--agent", f"k={agent.address}", "--sample", "12", "--seed", "1", "--db", db, *FAST]) == 0
        for kind in ("ridge", "kgnn"):  # the one-hot view; the whole-CG view
            assert main(["predictor", "train", "--db", db, "--device", "k", "--kind", kind]) == 0
            assert f"saved {kind} predictor for k (transformer networks)" in capsys.readouterr().out
        assert main(["search", "--space", "transformer", "--sequence", "8", "--objectives", "latency,accuracy",
                     "--accuracy", "proxy:params", "--device", "k", "--agent", agent.address, "--algo", "linas",
                     "--evals", "6", "--population", "3", "--inner-evals", "60", "--db", db,
                     "--out", str(tmp_path / "run"), *FAST]) == 0
    finally:
        agent.stop()
    space = get_space("transformer", sequence=8)
    with Store(db) as store:
        records = list(store.measurements("k"))
    assert len(records) >= 12 and all(r["latency_ms"] > 0 for r in records)
    measured = list(csv.DictReader((tmp_path / "run" / "measured.csv").open()))
    assert len(measured) == 6
    for row in measured:  # the proxy is log10 of the CG's parameters, and the run says it is a proxy
        graph = space.to_graph([int(v) for v in row["encoding"].split()])
        assert float(row["accuracy_pct"]) == pytest.approx(math.log10(1 + graph.params()))
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["accuracy"] == "proxy:params"


def test_an_unknown_proxy_names_the_known_ones() -> None:
    with pytest.raises(SettingError, match="the proxies are proxy:params, proxy:macs"):
        accuracy_evaluator("proxy:depth", get_space("transformer"))
