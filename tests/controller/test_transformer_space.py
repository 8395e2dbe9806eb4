"""#38 item 3: the elastic transformer space end to end on a real onnxruntime agent: a LatBench build, the
light and whole-CG latency predictors trained from the store, and a LINAS search whose accuracy is a size
proxy (the space has no accuracy figures)."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from hwnas.controller.cli.main import main
from hwnas.controller.errors import SettingError
from hwnas.controller.search.objectives import accuracy_evaluator
from hwnas.controller.spaces import get_space
from hwnas.controller.store import Store

from ..conftest import start_agent

LONG = os.environ.get("HWNAS_LONG") == "1"
FAST = ["--protocol", "fixed", "--param", "count=3", "--quiet", "--no-golden", "--insecure"]


@pytest.mark.parametrize(("name", "sample", "kinds"), [("transformer", 12, ("ridge", "kgnn")),
                                                       ("hat", 10, ("ridge", "kgnn") if LONG else ("ridge",))])
def test_build_train_and_search_the_transformer_space_on_a_real_agent(tmp_path: Path, capsys, name: str,
                                                                      sample: int, kinds: tuple[str, ...]) -> None:
    """The encoder space and HAT's encoder-decoder space (two inputs: source and target tokens) alike. HAT's
    networks hold 20-45 M parameters (a 170 MB export each): the default suite builds and trains the light
    predictor on 10 of them and leaves the search, whose code is the encoder space's, to HWNAS_LONG=1."""
    db = str(tmp_path / "tf.db")
    agent = start_agent(tmp_path / "cache")
    try:
        assert main(["latbench", "build", "--space", name, "--sequence", "8", "--devices", "k",
                     "--agent", f"k={agent.address}", "--sample", str(sample), "--seed", "1", "--db", db, *FAST]) == 0
        for kind in kinds:  # the one-hot view; the whole-CG view
            assert main(["predictor", "train", "--db", db, "--device", "k", "--kind", kind]) == 0
            assert f"saved {kind} predictor for k ({name} networks)" in capsys.readouterr().out
        searched = name == "transformer" or LONG
        assert not searched or main(["search", "--space", name, "--sequence", "8", "--objectives", "latency,accuracy",
                     "--accuracy", "proxy:params", "--device", "k", "--agent", agent.address, "--algo", "linas",
                     "--evals", "6", "--population", "3", "--inner-evals", "60", "--db", db,
                     "--out", str(tmp_path / "run"), *FAST]) == 0
    finally:
        agent.stop()
    space = get_space(name, sequence=8)
    with Store(db) as store:
        records = list(store.measurements("k"))
    assert len(records) >= sample and all(r["latency_ms"] > 0 for r in records)
    assert {r["space"] for r in records} == {name}
    if not searched:
        return
    measured = list(csv.DictReader((tmp_path / "run" / "measured.csv").open()))
    assert len(measured) == 6
    for row in measured:  # the proxy is log10 of the CG's parameters, and the run says it is a proxy
        graph = space.to_graph([int(v) for v in row["encoding"].split()])
        assert float(row["accuracy_pct"]) == pytest.approx(math.log10(1 + graph.params()))
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["accuracy"] == "proxy:params"


def test_an_unknown_proxy_names_the_known_ones() -> None:
    with pytest.raises(SettingError, match="the proxies are proxy:params, proxy:macs"):
        accuracy_evaluator("proxy:depth", get_space("transformer"))


def test_hats_space_encodes_40_variables_and_builds_two_input_encoder_decoders() -> None:
    """LINAS's WMT'14 space (HAT): 40 design variables; string and dict forms round-trip; decoder layers past
    the depth are masked; the CG takes source and target tokens and each decoder layer attends to the
    concatenated outputs of the last 1-3 encoder layers (HAT's arbitrary encoder-decoder attention)."""
    space = get_space("hat", sequence=12, target=10)
    assert space.n_var == 40 and space.size() == 4 * 6 ** 6 * sum(36 ** n for n in range(1, 7))
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = space.sample(rng)
        assert space.from_string(space.to_string(x)) == x == space.encode(space.decode(x))
    arch = {"encoder_embedding": 512, "decoder_embedding": 640, "decoder_layers": 2, "encoder_heads": [4] * 6,
            "encoder_ffn": [1024] * 6, "decoder_heads": [8, 4], "cross_heads": [4, 8], "decoder_ffn": [3072, 2048],
            "arbitrary": [3, 1]}
    x = space.encode(arch)
    assert space.to_string(x) == "enc512:h4,4,4,4,4,4:f1024,1024,1024,1024,1024,1024|dec640:h8,4:x4,8:f3072,2048:a3,1"
    assert x[4 + 12 + 2:4 + 12 + 6] == [0, 0, 0, 0]  # the masked decoder layers' feed-forward widths
    graph = space.to_graph(x)
    assert graph.input_shapes == ((1, 12, 640), (1, 10, 640))
    assert graph.op_counts()["concat"] == 1  # the first decoder layer reads the last 3 encoder outputs
    assert graph.nodes[graph.outputs[0]].out_shape == (1, 10, 640)
    assert graph.op_counts()["softmax"] == 6 + 2 * 2  # encoder self-attention; decoder self and cross
    with pytest.raises(ValueError, match="arbitrary in \\(1, 2, 3\\)"):
        space.encode({**arch, "arbitrary": [4, 1]})
    with pytest.raises(ValueError, match="a hat string is"):
        space.from_string("e640:h4:f1024")
