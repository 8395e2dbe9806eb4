"""The predictor library on real NB-201 latencies (the packaged table): interface, safety, metrics, protocol."""

import json
from pathlib import Path

import numpy as np
import pytest

from hwnas.controller.learning.data import nb201_samples, read_nb201_table
from hwnas.predictors import FEATURE_VERSION, KINDS, Samples, get_predictor, load
from hwnas.predictors.evaluate import bench, split, summarise
from hwnas.predictors.metrics import evaluate, within_brpnas, within_nnmeter
from tests.conftest import SMALL_GENNAPE, modules_loaded_by

TARGET = "lat_ms_latbench_desktop_cpu_i7_7820x"
TINY = {"gcn": {"hidden": 32, "epochs": 3, "patience": 3},
        **{kind: {"hidden": 16, "epochs": 2} for kind in ("kgnn", "gcn-cg", "gin", "gatv2")},
        "brp": {"hidden": 16, "epochs": 2, "references": 8}, "gennape": SMALL_GENNAPE}


@pytest.fixture(scope="module")
def samples() -> Samples:
    from hwnas.controller import data as packaged_tables

    table = read_nb201_table(Path(packaged_tables.__file__).parent / "nb201" / "nb201_latency_accuracy.csv.gz",
                             TARGET)
    assert len(table.encodings) == 15284 and table.dropped_unconnected == 341
    rng = np.random.default_rng(0)
    keep = rng.choice(len(table.encodings), 400, replace=False)
    return nb201_samples([table.encodings[k] for k in keep], table.y[keep], graphs=True)


# psc reads AutoGO's {P, S, C} decompositions: tests/controller/test_autogo.py fits and round-trips it;
# layerwise reads a device's measured layer latencies: tests/controller/test_layerwise.py does; sources needs
# other devices' samples: tested below; autobuild reads layer sequences, which NB-201 cells are not:
# tests/predictors/test_autobuild.py fits and round-trips it.
@pytest.mark.parametrize("kind", sorted(set(KINDS) - {"psc", "layerwise", "sources", "autobuild"}))
def test_every_kind_fits_predicts_and_round_trips_through_safe_files(kind: str, samples: Samples,
                                                                     tmp_path: Path) -> None:
    train, test = samples.take(np.arange(300)), samples.take(np.arange(300, 400))
    predictor = get_predictor(kind, **TINY.get(kind, {})).fit(train, test)
    before = predictor.predict(test)
    assert before.shape == (100,) and np.all(np.isfinite(before))
    predictor.card.device_key = "i7-7820x"
    folder = predictor.save(tmp_path / kind)
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", "weights.safetensors"]
    again = load(folder)
    np.testing.assert_allclose(again.predict(test), before, rtol=1e-6)
    card = json.loads((folder / "card.json").read_text())
    assert card["kind"] == kind and card["device_key"] == "i7-7820x" and card["n_train"] == 300
    assert card["data_sha256"] == train.fingerprint() and card["feature_version"] == FEATURE_VERSION
    # better than predicting the mean: the model learned something (the GNNs train 2 epochs here)
    if kind not in ("flops", "kgnn", "gcn-cg", "gin", "gatv2", "brp", "gennape"):
        assert evaluate(before, test.y)["spearman"] > 0.5


def test_loading_refuses_pickles_and_other_feature_versions(samples: Samples, tmp_path: Path) -> None:
    import pickle

    folder = get_predictor("ridge").fit(samples).save(tmp_path / "r")
    (folder / "weights.safetensors").write_bytes(pickle.dumps({"coef": np.zeros(30)}))
    with pytest.raises(Exception, match="(?i)header|safetensor|deserializ"):
        load(folder)
    folder = get_predictor("ridge").fit(samples).save(tmp_path / "v")
    card = json.loads((folder / "card.json").read_text())
    (folder / "card.json").write_text(json.dumps({**card, "feature_version": 99}))
    with pytest.raises(ValueError, match="feature version 99"):
        load(folder)
    with pytest.raises(ValueError, match="not a saved hwnas predictor"):
        load(tmp_path / "missing")


def test_clear_errors_for_unknown_kinds_options_and_missing_views(samples: Samples) -> None:
    with pytest.raises(ValueError, match="unknown predictor 'xgb'; known: .*gcn"):
        get_predictor("xgb")
    with pytest.raises(ValueError, match="unknown option.*'alpah'"):
        get_predictor("ridge", alpah=1)
    with pytest.raises(ValueError, match="needs the adjacency, node_features view"):
        get_predictor("gcn").fit(Samples(encoding=samples.encoding, y=samples.y))
    with pytest.raises(ValueError, match="NaN"):
        get_predictor("ridge").fit(samples.with_y(np.full(len(samples), np.nan)))
    with pytest.raises(ValueError, match="disagree"):
        Samples(encoding=np.zeros((3, 2)), y=np.zeros(4))


def test_the_gcn_loss_is_huber_with_its_threshold_set_as_a_relative_error() -> None:
    import torch

    from hwnas.predictors.gcn import LogScale, log_target_loss

    log = LogScale(np.array([0.0, 0.5]))  # log-latency std 0.5: a 1.5 % error is 0.03 standardised units
    huber = log_target_loss("huber", 0.015, log)
    small, large = torch.tensor([0.02]), torch.tensor([0.5])
    assert float(huber(small, torch.zeros(1))) == pytest.approx(0.5 * 0.02**2)  # squared inside the threshold
    assert float(huber(large, torch.zeros(1))) == pytest.approx(0.03 * (0.5 - 0.015))  # linear beyond it
    assert log_target_loss("mse", 0.015, log) is torch.nn.functional.mse_loss
    with pytest.raises(ValueError, match="loss must be 'mse' or 'huber', got 'l2'"):
        log_target_loss("l2", 0.015, log)


def test_the_gcn_predicts_each_distinct_cell_graph_once_and_maps_it_back(samples: Samples) -> None:
    from hwnas.predictors.gcn import distinct_graphs

    doubled = samples.take(np.r_[np.arange(50), np.arange(50)[::-1]])
    graphs, inverse = distinct_graphs(doubled)
    assert len(graphs) <= 50 and np.array_equal(graphs.adjacency[inverse], doubled.adjacency)
    predictor = get_predictor("gcn", **TINY["gcn"]).fit(samples.take(np.arange(100)))
    predicted = predictor.predict(doubled)
    np.testing.assert_allclose(predicted[:50], predicted[50:][::-1])
    np.testing.assert_allclose(predicted[:50], predictor.predict(samples.take(np.arange(50))))


def test_the_sources_predictor_recombines_other_devices_from_few_samples(tmp_path: Path) -> None:
    from hwnas.controller import data as packaged_tables

    path = Path(packaged_tables.__file__).parent / "nb201" / "nb201_latency_accuracy.csv.gz"
    target_table, source_table = read_nb201_table(path, "lat_ms_gold_6226"), read_nb201_table(path, "lat_ms_1080ti_1")
    assert target_table.encodings == source_table.encodings
    keep = np.random.default_rng(1).choice(len(target_table.encodings), 400, replace=False)
    target = nb201_samples([target_table.encodings[k] for k in keep], target_table.y[keep], flops=False)
    source, test = target.with_y(source_table.y[keep]).take(np.arange(100, 400)), target.take(np.arange(100))
    with pytest.raises(ValueError, match="call use_sources"):
        get_predictor("sources").fit(target)
    few = target.take(np.arange(100, 120))  # 20 target measurements; the test set is seen by neither model
    transferred = get_predictor("sources").use_sources([source]).fit(few)
    from_scratch = get_predictor("ridge").fit(few)
    ranked = evaluate(transferred.predict(test), test.y)["spearman"]
    assert ranked > 0.9 > evaluate(from_scratch.predict(test), test.y)["spearman"]
    np.testing.assert_allclose(load(transferred.save(tmp_path / "s")).predict(test), transferred.predict(test))


def test_the_sources_predictor_mixes_latencies_where_the_target_adds_them_up(tmp_path: Path) -> None:
    """A device whose latency is the sum of two others' (as a layer-additive mobile CPU's is a sum of op
    costs) is a linear mix of latencies, not of log-latencies: the predictor picks that design by the rank
    correlation of its cross-validated predictions, and ranks the new device better than the log design
    alone. A card saved before the linear designs (log design only) still loads and predicts as it did."""
    from hwnas.predictors.samples import Samples
    from hwnas.predictors.source_transfer import LINEAR, LOG

    rng = np.random.default_rng(0)
    encoding = (rng.random((600, 12)) < 0.5).astype(np.float64)
    heavy_first = np.where(np.arange(12) < 6, 5.0, 0.1)  # two additive devices, each slow at other ops
    costs = np.stack([heavy_first, heavy_first[::-1]]) * rng.uniform(0.5, 1.5, (2, 12))
    first, second = (0.2 + encoding @ c for c in costs)
    target = Samples(encoding=encoding, y=first + second)
    sources = [Samples(encoding=encoding[300:], y=y[300:]) for y in (first, second)]
    few, test = target.take(np.arange(300, 310)), target.take(np.arange(300))
    mixed = get_predictor("sources").use_sources(sources).fit(few)
    assert int(mixed.design[0]) == LINEAR
    logs_only = get_predictor("sources").use_sources(sources)
    logs_only.sources = (logs_only.sources[LOG], logs_only.sources[LOG])  # both designs mix log-latencies
    logs_only.fit(few)
    assert evaluate(mixed.predict(test), test.y)["spearman"] > evaluate(logs_only.predict(test), test.y)["spearman"]
    old = {k: v for k, v in logs_only.state().items() if k.startswith("source_") or k in ("coef", "intercept")}
    old.update(scaling=logs_only.scaling[LOG], with_encoding=np.array([int(logs_only.design[1])]))
    if int(logs_only.design[0]) == LOG:
        loaded = get_predictor("sources")
        loaded.set_state(old)
        np.testing.assert_allclose(loaded._predict(test), logs_only._predict(test))
    np.testing.assert_allclose(load(mixed.save(tmp_path / "m")).predict(test), mixed.predict(test))


def test_both_accuracy_definitions_and_the_rank_metrics() -> None:
    true = np.array([10.0, 10.0, 10.0, 10.0])
    pred = np.array([10.0, 10.9, 9.2, 12.0])
    # BRP-NAS: |t - p| <= k p: 0.9 <= 1.09 yes, 0.8 <= 0.92 yes; nn-Meter: |p - t| <= k t: 0.9 yes, 0.8 yes
    assert within_brpnas(pred, true, 0.10) == 0.75 and within_nnmeter(pred, true, 0.10) == 0.75
    # the definitions differ at the edge: p = 9.05 is within 10% of t = 10 (nn-Meter) but t is not within 10% of p
    assert within_nnmeter(np.array([9.05]), np.array([10.0]), 0.095) == 1.0
    assert within_brpnas(np.array([9.05]), np.array([10.0]), 0.095) == 0.0
    m = evaluate(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert m["spearman"] == pytest.approx(1.0) and m["kendall_tau"] == pytest.approx(1.0)
    assert m["mape"] == pytest.approx(0.25 / 3) and m["rmse"] == pytest.approx(np.sqrt(1 / 3))


def test_the_brpnas_protocol_splits_disjointly_and_reports_every_seed(samples: Samples) -> None:
    parts = split(400, 200, 50, seed=3)
    assert len(set(parts.train) | set(parts.valid) | set(parts.test)) == 400 and len(parts.test) == 150
    assert np.array_equal(split(400, 200, 50, seed=3).train, parts.train)
    with pytest.raises(ValueError, match="cannot give"):
        split(100, 90, 10, seed=0)
    results = bench(samples, ["ridge", "svr"], [0, 1], n_train=200, n_valid=50)
    assert [(r.kind, r.seed) for r in results] == [("ridge", 0), ("svr", 0), ("ridge", 1), ("svr", 1)]
    table = summarise(results)
    assert set(table) == {"ridge", "svr"} and table["svr"]["spearman"][0] > table["ridge"]["spearman"][0]


def test_the_binary_relation_predictor_ranks_accuracy_from_few_models() -> None:
    """BRP-NAS §4.2 on CIFAR-10 accuracy: 300 trained models rank 1,000 others."""
    from hwnas.controller import data as packaged_tables

    table = read_nb201_table(Path(packaged_tables.__file__).parent / "nb201" / "nb201_latency_accuracy.csv.gz",
                             "acc_cifar10_test")
    keep = np.random.default_rng(0).choice(len(table.encodings), 1300, replace=False)
    data = nb201_samples([table.encodings[k] for k in keep], table.y[keep], flops=False)
    train, test = data.take(np.arange(300)), data.take(np.arange(300, 1300))
    predictor = get_predictor("brp", hidden=64, epochs=5).fit(train)
    scores = predictor.predict(test)
    assert np.all((scores >= 0) & (scores <= 1)) and predictor.ranks_only
    assert evaluate(scores, test.y)["spearman"] > 0.6


def test_the_kgnn_learns_on_whole_graphs_of_different_families() -> None:
    """OFA-MobileNetV3 subnets (other sizes, depthwise convs) go through the same k-GNN as NB-201 networks."""
    from hwnas.controller.learning.data import cg_graph
    from hwnas.controller.spaces import get_space
    from hwnas.predictors.samples import graph_array

    space = get_space("ofa-mbv3", resolution=64)
    rng = np.random.default_rng(1)
    graphs = [space.to_graph(space.sample(rng)) for _ in range(150)]
    y = np.array([g.macs() / 1e6 for g in graphs])  # a target the graph determines: MACs in millions
    samples = Samples(graphs=graph_array([cg_graph(g) for g in graphs]), y=y)
    assert len({len(g.nodes) for g in graphs}) > 5  # graphs of many sizes in one batch
    train, test = samples.take(np.arange(120)), samples.take(np.arange(120, 150))
    predictor = get_predictor("kgnn", hidden=32, lr=3e-3, epochs=40, patience=40).fit(train, test)
    assert evaluate(predictor.predict(test), y[120:])["spearman"] > 0.6


def test_the_library_never_imports_the_controller() -> None:
    code = ("import numpy as np\n"
            "import hwnas.predictors, hwnas.predictors.linear, hwnas.predictors.gcn, hwnas.predictors.gnn\n"
            "import hwnas.predictors.evaluate\n"
            "from hwnas.predictors import Samples, get_predictor\n"
            "s = Samples(encoding=np.eye(12), y=np.arange(1.0, 13.0))\nget_predictor('ridge').fit(s).predict(s)")
    assert modules_loaded_by(code, ("hwnas.controller", "hwnas.device_agent")) == []


@pytest.mark.parametrize("shape", [(200, 30), (12, 30)])  # the primal and the dual system
def test_the_numpy_ridge_matches_scikit_learns(shape: tuple[int, int]) -> None:
    from sklearn.linear_model import Ridge

    from hwnas.predictors.linear import RidgeModel

    rng = np.random.default_rng(1)
    x = rng.normal(size=shape) + 3.0
    y = x @ rng.normal(size=shape[1]) + 5.0 + rng.normal(size=shape[0])
    ours, theirs = RidgeModel(0.7).fit(x, y), Ridge(alpha=0.7).fit(x, y)
    np.testing.assert_allclose(ours.coef, theirs.coef_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours.intercept[0], theirs.intercept_, rtol=1e-9)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x), rtol=1e-9)


def test_a_ridge_fit_does_not_import_scikit_learn() -> None:
    """LINAS's default predictor: scikit-learn takes over a second to import, paid by every search."""
    code = ("import numpy as np\nfrom hwnas.predictors import Samples, get_predictor\n"
            "s = Samples(encoding=np.eye(12), y=np.arange(1.0, 13.0))\nget_predictor('ridge').fit(s).predict(s)")
    assert modules_loaded_by(code, ("sklearn", "pandas")) == []


def test_a_predictor_flags_architectures_outside_what_it_was_trained_on() -> None:
    """Trained on NB-201 networks, a k-GNN flags OFA-MobileNetV3 subnets (other family, ops never seen) and
    warns; an accuracy predictor's card bounds keep predictions within 0-100 %."""
    import warnings

    from hwnas.controller.learning.data import cg_graph
    from hwnas.controller.spaces import get_space
    from hwnas.predictors import OutsideDomainWarning
    from hwnas.predictors.samples import graph_array

    def samples(space_name: str, n: int, seed: int, **options) -> Samples:
        space = get_space(space_name, **options)
        rng = np.random.default_rng(seed)
        xs = [x for x in (space.sample(rng) for _ in range(3 * n)) if space.has_network(x)][:n]
        return Samples(graphs=graph_array([cg_graph(space.to_graph(x)) for x in xs]), y=np.linspace(10, 90, n),
                       family=np.full(n, space_name, dtype=object))

    train, same, other = samples("nb201", 40, 0), samples("nb201", 10, 1), samples("ofa-mbv3", 3, 2, resolution=64)
    predictor = get_predictor("kgnn", hidden=8, epochs=2).fit(train)
    assert predictor.card.domain["families"] == ["nb201"] and predictor.card.domain["y"] == [10.0, 90.0]
    _, inside = predictor.predict_flagged(same)
    assert inside == [""] * 10
    with pytest.warns(OutsideDomainWarning, match="3 of 3 architecture"):
        predictor.predict(other)
    _, reasons = predictor.predict_flagged(other)
    assert all("family 'ofa-mbv3' (trained on nb201)" in r for r in reasons)
    unlabelled = Samples(graphs=other.graphs)  # no family given: the features alone still tell
    assert all(predictor.predict_flagged(unlabelled)[1])
    predictor.card.bounds = [0.0, 100.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutsideDomainWarning)
        predictor.net.head[-1].bias.data += 1e3  # a net that extrapolates wildly
        assert predictor.predict(other).max() <= 100.0


@pytest.mark.parametrize("aggregate", ["mean", "sum"])
def test_the_brpnas_gcn_on_torch_geometric_computes_the_papers_dense_graph_convolution(samples: Samples,
                                                                                      aggregate: str) -> None:
    """BRP-NAS writes each layer as ReLU(LN(Â H W)) on a dense adjacency; the torch-geometric net must give the
    same global-node outputs, batch by batch, with the same weights."""
    import torch

    from hwnas.predictors.gcn import GcnNet

    torch.manual_seed(0)
    x = torch.as_tensor(samples.node_features[:37], dtype=torch.float32)
    a = torch.as_tensor(samples.adjacency[:37], dtype=torch.float32)
    net = GcnNet(x.shape[-1], 24, 4, 0.0, -1, aggregate).eval()
    norm = a / a.sum(-1, keepdim=True).clamp(min=1.0) if aggregate == "mean" else a
    h = x
    for conv, layer_norm in zip(net.convs, net.norms, strict=True):
        h = torch.relu(layer_norm(norm @ conv.linear(h)))
    with torch.no_grad():
        torch.testing.assert_close(net(x, a), net.head(h[:, -1]).squeeze(-1), rtol=1e-5, atol=1e-5)


def test_a_gnn_with_the_additive_readout_predicts_sums_of_node_costs_and_round_trips(samples: Samples,
                                                                                     tmp_path: Path) -> None:
    """The additive readout's scale lives in the net but is not saved twice: a loaded model must restore it."""
    import torch

    train, test = samples.take(np.arange(300)), samples.take(np.arange(300, 400))
    predictor = get_predictor("kgnn", hidden=16, epochs=3, readout="additive").fit(train, test)
    before = predictor.predict(test)
    assert np.all(np.isfinite(before)) and np.all(before > 0)
    again = load(predictor.save(tmp_path / "additive"))
    np.testing.assert_allclose(again.predict(test), before, rtol=1e-6)
    # the graph's log value is the log-sum-exp of its nodes' log costs: a graph's value grows with its nodes
    from torch_geometric.data import Batch

    from hwnas.predictors.gnn import to_data

    net = again.net
    one = to_data(test.graphs[0])
    with torch.no_grad():
        log_costs = net.head(torch.cat([net.embed_nodes(Batch.from_data_list([one])), one.x], dim=1)).squeeze(-1)
        expected = (torch.logsumexp(log_costs, 0) - net.scale[0]) / net.scale[1]
        torch.testing.assert_close(net(Batch.from_data_list([one])), expected.reshape(1), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="readout must be one of pool, additive"):
        get_predictor("kgnn", readout="mean").fit(train, test)


def test_a_fit_reports_each_epoch_to_the_listener_of_its_block_only(samples: Samples) -> None:
    """What lets a CLI's bar move during a minutes-long GNN fit; a fit outside the block reports to nobody."""
    import threading

    from hwnas.predictors.progress import epochs_reported_to

    train, valid = samples.take(np.arange(100)), samples.take(np.arange(100, 130))
    seen: list[tuple[int, int, float]] = []
    with epochs_reported_to(lambda done, epochs, loss: seen.append((done, epochs, loss))):
        get_predictor("kgnn", hidden=16, layers=2, epochs=3, patience=3).fit(train, valid)
        other = threading.Thread(target=lambda: get_predictor("kgnn", hidden=16, epochs=2).fit(train, valid))
        other.start()
        other.join()
    get_predictor("gcn", hidden=16, epochs=2).fit(train, valid)
    assert [(done, epochs) for done, epochs, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    assert all(np.isfinite(loss) and loss > 0 for *_, loss in seen)
