"""Per-layer latencies measured by a real agent, and the layer-wise predictor trained on them (issue #5)."""

from pathlib import Path

import numpy as np
import pytest

from hwnas.controller.cli.main import main
from hwnas.controller.graph.zoo import zoo_graph
from hwnas.controller.learning.jobs import load_for_device, samples_from_store
from hwnas.controller.learning.layer_latency import (
    LAYER_SPACE,
    Layer,
    distinct_layers,
    layer_sums,
    layers_of,
    measured_layers,
)
from hwnas.controller.spaces import get_space
from hwnas.controller.store import Store
from hwnas.predictors import Samples, get_predictor


def test_each_node_is_a_layer_and_its_graph_runs_it_alone() -> None:
    graph = get_space("nb201").to_graph(get_space("nb201").sample(np.random.default_rng(0)))
    layers = layers_of(graph)
    assert len(layers) == len(graph.nodes) - 1  # every node but the input
    conv = next(layer for layer in layers if layer.op == "conv")
    alone, helpers = conv.graph()
    assert [n.op for n in alone.nodes] == ["input", "conv"] and helpers == []
    assert alone.nodes[1].attrs == graph.nodes[next(i for i, n in enumerate(graph.nodes) if n.op == "conv")].attrs
    distinct = distinct_layers([graph, graph])
    assert len({layer.key for layer in distinct}) == len(distinct) < len(layers)


def test_extra_inputs_of_another_shape_are_made_by_helpers_that_are_measured_and_subtracted() -> None:
    se_mul = Layer("mul", "{}", ((1, 8, 4, 4), (1, 8, 1, 1)))
    concat = Layer("concat", "{}", ((1, 8, 4, 4), (1, 16, 4, 4)))
    assert [n.op for n in se_mul.graph()[0].nodes] == ["input", "global_avgpool", "mul"]
    assert [n.op for n in concat.graph()[0].nodes] == ["input", "conv", "concat"]
    helper = concat.graph()[1][0]
    sums = layer_sums([concat.graph()[0]], {concat.key: 3.0, helper.key: 1.0})  # the graph: conv + concat
    assert sums.tolist() == [1.0 + (3.0 - 1.0)]
    with pytest.raises(ValueError, match="no measured latency for layer conv.*hwnas predictor layers"):
        layer_sums([concat.graph()[0]], {concat.key: 3.0})
    with pytest.raises(ValueError, match="cannot pool"):
        Layer("add", "{}", ((1, 8, 5, 5), (1, 8, 2, 2))).graph()


def test_the_zoo_networks_split_into_layers_that_all_build() -> None:
    for name in ("resnet50", "vgg16", "edsr"):
        layers = distinct_layers([zoo_graph(name)])
        assert all(layer.graph()[0].nodes[-1].op == layer.op for layer in layers)


def test_the_layerwise_predictor_fits_one_scale_on_the_relative_error() -> None:
    rng = np.random.default_rng(0)
    layer_sum = rng.uniform(1, 10, 50)
    train = Samples(layer_sum=layer_sum, y=0.5 * layer_sum)
    predictor = get_predictor("layerwise").fit(train)
    assert predictor.predict(Samples(layer_sum=np.array([4.0]))) == pytest.approx([2.0])
    with pytest.raises(ValueError, match="layer_sum view"):
        predictor.predict(Samples(encoding=np.zeros((1, 3))))
    with pytest.raises(ValueError, match="positive layer sum"):
        get_predictor("layerwise").fit(Samples(layer_sum=np.array([1.0, 0.0]), y=np.array([1.0, 1.0])))


def test_layers_measured_by_a_real_agent_train_the_layerwise_predictor(tmp_path: Path, agent, capsys) -> None:
    db, key = tmp_path / "lab.db", "vm-ort"
    fast = ["--protocol", "fixed", "--param", "count=5", "--insecure", "--agent", f"{key}={agent.address}"]
    assert main(["latbench", "build", "--space", "nb201", "--devices", key, "--sample", "12", "--seed", "1",
                 "--db", str(db), "--quiet", "--no-golden", *fast]) == 0
    assert main(["predictor", "train", "--db", str(db), "--device", key, "--kind", "layerwise"]) == 2
    assert "measure the device's layers with `hwnas predictor layers`" in capsys.readouterr().err
    assert main(["predictor", "layers", "--db", str(db), "--device", key, "--quiet", "--no-golden", *fast]) == 0
    out = capsys.readouterr().out
    with Store(db) as store:
        graph_ms = measured_layers(store, key)
        space, samples = samples_from_store(store, key, layers_from="isolated")  # the layer graphs are not samples
        assert space == "nb201" and len(samples) == 12
        assert {r["space"] for r in store.measurements(key)} == {"nb201", LAYER_SPACE}
    assert f"{len(graph_ms)} of {len(graph_ms)} distinct layers of 12 networks measured" in out
    assert np.all(samples.layer_sum > 0)
    assert main(["predictor", "layers", "--db", str(db), "--device", key, "--quiet",
                 "--no-golden", *fast]) == 0  # all reused
    with Store(db) as store:
        assert measured_layers(store, key) == graph_ms
    assert main(["predictor", "train", "--db", str(db), "--device", key, "--kind", "layerwise"]) == 0
    assert "saved layerwise predictor for vm-ort" in capsys.readouterr().out
    assert load_for_device(db, key, "layerwise").state()["scale"][0] > 0
    assert main(["predictor", "layers", "--db", str(db), "--device", "nobody", "--quiet", "--no-golden", "--agent",
                 f"nobody={agent.address}", "--insecure"]) == 2
    assert "no measurements for device key 'nobody'" in capsys.readouterr().err
