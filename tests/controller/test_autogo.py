"""AutoGO: the segment database, resolution propagation, mutation, the PSC predictor and `hwnas autogo`."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from hwnas.controller.autogo.bpe import segment_string
from hwnas.controller.autogo.database import SegmentDatabase, build_database, standard_corpus
from hwnas.controller.autogo.mutation import Mutator, op_classes
from hwnas.controller.autogo.psc_data import decompositions, partitioned, psc_samples
from hwnas.controller.autogo.resolution import resolve
from hwnas.controller.autogo.segment import MAP_OPS, Segment, TemplateNode
from hwnas.controller.cli.main import main
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.controller.graph import GraphBuilder
from hwnas.controller.graph.onnx_export import to_onnx_bytes
from hwnas.controller.graph.zoo import edsr, resnet50, vgg16
from hwnas.controller.spaces import get_space
from hwnas.controller.store import Store
from hwnas.predictors import get_predictor, load

LONG = os.environ.get("HWNAS_LONG") == "1"


@pytest.fixture(scope="module")
def database() -> SegmentDatabase:
    # the families these tests were written against; every registered space shares the vocabulary otherwise
    return build_database(standard_corpus(12, seed=1, spaces=("nb201", "ofa-mbv3", "ofa-resnet50")), vocab_size=500)


def nb201_graphs(n: int, seed: int = 0) -> list:
    space = get_space("nb201")
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        x = space.sample(rng)
        if space.has_network(x):
            out.append(space.to_graph(x).canonical())
    return out


def parents() -> dict:
    return {"nb201": nb201_graphs(1, seed=3)[0], "resnet50": resnet50(input_hw=64).canonical(),
            "vgg16": vgg16(input_hw=32).canonical(), "edsr": edsr(blocks=4, channels=32, input_hw=24).canonical()}


def test_segmentation_is_sentencepieces_own_bpe_and_covers_every_node(database: SegmentDatabase) -> None:
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_proto=database.bpe_model)
    symbols = set(database.alphabet.values())
    compared = 0
    for graph in [*nb201_graphs(12), resnet50().canonical()]:
        text = database.sequence(graph)
        if set(text) <= symbols:  # sentencepiece joins a run of unseen labels into one piece; we keep them apart
            spans = segment_string(text, database.scores)
            pieces = processor.encode(text, return_type="proto").pieces
            assert [text[a:b] for a, b in spans] == [p.piece for p in pieces]
            compared += 1
        regions = database.segment(graph)
        assert [k for r in regions for k in r.nodes] == list(range(1, len(graph.nodes)))
    assert compared >= 3
    sparse = database.sub_vocabulary(np.random.default_rng(0))
    assert {p for p in database.scores if len(p) == 1} <= sparse < set(database.scores)
    graph = resnet50().canonical()
    assert len(database.segment(graph, sparse)) >= len(database.segment(graph))
    b = GraphBuilder((1, 3, 16, 16))
    x = b.op("gelu", b.op("gelu", b.conv(b.input, 8, 3)))  # gelu: a label the corpus never saw
    unseen = database.segment(b.build(b.conv(x, 8, 3)))
    assert [r.nodes for r in unseen if 2 in r.nodes or 3 in r.nodes] == [(2,), (3,)]


def test_the_database_holds_no_isomorphic_pair_and_stores_plain_data(database: SegmentDatabase,
                                                                     tmp_path: Path) -> None:
    summary = database.summary()
    assert summary["segments"] > 100 and summary["largest"] <= 16 and set(summary["corpus"]) >= {"nb201", "resnet50"}
    buckets: dict[tuple, list[Segment]] = {}
    for segment in database.segments:
        buckets.setdefault((segment.n_inputs, segment.n_outputs, segment.invariant()), []).append(segment)
    for bucket in buckets.values():
        for i, a in enumerate(bucket):
            assert not any(a.isomorphic(b) for b in bucket[i + 1:])
    database.save(tmp_path / "db")
    assert sorted(p.name for p in (tmp_path / "db").iterdir()) == ["bpe.model", "segments.json"]
    again = SegmentDatabase.load(tmp_path / "db")
    assert [s.to_dict() for s in again.segments] == [s.to_dict() for s in database.segments]
    assert again.scores == database.scores and again.alphabet == database.alphabet
    (tmp_path / "db" / "segments.json").write_text(json.dumps({"format": "pickle"}))
    with pytest.raises(ValueError, match="format must be"):
        SegmentDatabase.load(tmp_path / "db")
    with pytest.raises(FileNotFoundError, match="hwnas autogo build-db"):
        SegmentDatabase.load(tmp_path / "nowhere")


def conv(inputs: tuple[int, ...], stride: int = 1, ratio: float = 1.0) -> TemplateNode:
    return TemplateNode("conv", inputs, {"kernel": (3, 3), "stride": (stride, stride), "padding": (1, 1, 1, 1),
                                         "dilation": (1, 1), "bias": False}, ratio)


def test_resolution_propagation_makes_the_fewest_changes_or_refuses() -> None:
    chain = Segment((conv((-1,)), TemplateNode("batchnorm", (0,)), TemplateNode("relu", (1,))), (2,), 1)
    same = resolve(chain, [(16, 32, 32)], [(16, 32, 32)])
    assert same.changes == 0 and same.channels == (16, 16, 16) and same.strides == (1, 1, 1)
    down = resolve(chain, [(16, 32, 32)], [(32, 16, 16)])
    assert down.changes == 2 and down.channels == (32, 32, 32) and down.strides[0] == 2
    assert resolve(chain, [(16, 32, 32)], [(24, 32, 32)]) is None  # 24 is not 8, 16 or 32
    assert resolve(chain, [(16, 16, 16)], [(16, 32, 32)]) is None  # a conv never upsamples
    residual = Segment((conv((-1,)), TemplateNode("add", (0, -1))), (1,), 1)
    assert resolve(residual, [(16, 32, 32)], [(16, 16, 16)]) is None  # add's skip input cannot halve
    assert resolve(residual, [(16, 32, 32)], [(16, 32, 32)]).changes == 0
    branches = Segment((conv((-1,)), conv((-2,), ratio=2.0), TemplateNode("concat", (0, 1))), (2,), 2)
    both = resolve(branches, [(8, 16, 16), (8, 16, 16)], [(32, 8, 8)])  # concat sums channels, both halve H
    assert both is not None and both.strides[:2] == (2, 2) and sum(both.channels[:2]) == 32
    with pytest.raises(ValueError, match="1 input"):
        resolve(chain, [(16, 32, 32)] * 2, [(16, 32, 32)])


@pytest.mark.slow
def test_every_accepted_child_runs_in_onnxruntime(database: SegmentDatabase) -> None:
    """Random mutations of several parents: each child is a valid CG whose ONNX runs with the parent's I/O."""
    # ResNet-50 and VGG-16 children export ~100-150 MB of random weights each: few in the short form
    per_parent = {"nb201": 250, "resnet50": 100, "vgg16": 60, "edsr": 200} if LONG else \
        {"nb201": 40, "resnet50": 8, "vgg16": 5, "edsr": 40}
    rng = np.random.default_rng(0)
    total = 0
    for name, parent in parents().items():
        mutator = Mutator(database, rng, op_classes(parent))
        children = mutator.mutate(parent, per_parent[name])
        assert len(children) >= per_parent[name] // 2, name
        for mutation in children:
            child = mutation.child
            start, stop = mutation.span
            assert child.arch_id != parent.arch_id and child.input_shape == parent.input_shape
            assert child.nodes[:start] == parent.nodes[:start]
            assert [n.op for n in child.nodes[stop:]] == [n.op for n in parent.nodes[mutation.source.nodes[-1] + 1:]]
            assert op_classes(child) <= op_classes(parent)  # the op whitelist (default: the parent's ops) holds
            session = ort.InferenceSession(to_onnx_bytes(child), providers=["CPUExecutionProvider"])
            feed = {session.get_inputs()[0].name: rng.standard_normal(child.input_shape).astype(np.float32)}
            (out,) = session.run(None, feed)
            assert out.shape == tuple(parent.nodes[parent.outputs[0]].out_shape) and np.all(np.isfinite(out))
            total += 1
    assert total >= sum(per_parent.values()) // 2


def test_psc_samples_split_each_network_and_the_predictor_round_trips(database: SegmentDatabase,
                                                                      tmp_path: Path) -> None:
    graphs = nb201_graphs(40)
    for part in decompositions(database, graphs[0]):
        x, edges, p = partitioned(graphs[0], part)
        assert set(np.unique(p)) == {0, 1, 2} or p[-1] == 1  # S last when the segment ends the network
        assert np.all(p[edges[0]] == p[edges[1]]) and len(x) == len(graphs[0].nodes)
    rng = np.random.default_rng(0)
    y = np.linspace(50, 90, 40)
    train = psc_samples(database, graphs[:30], y[:30], 4, rng)
    test = psc_samples(database, graphs[30:], y[30:], 2, rng)
    assert len(train) == 30 * 4 and len(test) == 10 * 2
    predictor = get_predictor("psc", hidden=16, layers=2, epochs=3).fit(train, test)
    before = predictor.predict(test)
    assert before.shape == (20,) and np.all(np.isfinite(before))
    again = load(predictor.save(tmp_path / "psc"))
    np.testing.assert_allclose(again.predict(test), before, rtol=1e-6)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_autogo_run_on_flops_writes_a_front_of_runnable_networks(trained: tuple[Path, Path], tmp_path: Path) -> None:
    segments, psc = trained
    out = tmp_path / "run"
    assert main(["autogo", "run", "--zoo", "resnet50", "--resolution", "64", "--metric", "flops", "--iterations", "2",
                 "--parents", "2", "--candidates", "12", "--segments", str(segments), "--predictor", str(psc),
                 "--db", str(tmp_path / "s.db"), "--out", str(out), "--quiet"]) == 0
    everything, front = rows(out / "all.csv"), rows(out / "pareto.csv")
    assert len(everything) > 5 and {r["iteration"] for r in everything} >= {"0", "1", "2"}
    assert all(-20 <= float(r["macs_change_pct"]) <= 10 for r in everything)
    for row in front:
        session = ort.InferenceSession(str(out / "front" / f"{row['arch_id']}.onnx"),
                                       providers=["CPUExecutionProvider"])
        session.run(None, {session.get_inputs()[0].name: np.zeros((1, 3, 64, 64), np.float32)})
    assert (out / "mutation.png").stat().st_size > 10_000
    pictured = {r["arch_id"] for r in front if r["segment"] != ""}  # every front network a mutation made
    assert pictured and {p.stem for p in (out / "front").glob("*.png")} == pictured
    summary = json.loads((out / "run.json").read_text())
    assert summary["evaluated"] == len(everything) and summary["front"] == len(front)
    assert (summary["kind"], summary["input_name"], summary["metric_column"]) == ("autogo", "resnet50", "macs")
    covered = summary["coverage"]  # everything but the classifier (pool, flatten, linear) can be mutated
    assert covered["frozen"] == {"global_avgpool (an op segments do not replace)": 1,
                                 "flatten (an op segments do not replace)": 1,
                                 "linear (not on a feature map or token sequence)": 1}
    assert covered["mutable_nodes"] == covered["nodes"] - 3 and covered["replaceable_segments"] > 0


def test_autogo_mutates_a_vits_token_blocks_and_every_child_runs(database: SegmentDatabase) -> None:
    """#38: ViT-Ti imported from its ONNX. Its token MLPs, projections, LayerNorms and residual adds are
    (B, T, D) sequences that resolution propagation resizes on D; attention (matmul, softmax, the reshapes
    to heads) and the head stay as they are. Against a database holding token segments (the transformer
    space's networks), children resize the token blocks, and each one's ONNX runs in onnxruntime with the
    parent's input and output. From a database mined from CNNs, segments land on tokens only where they hold
    no map op: convs, norms over channels, pools and concat never do."""
    from hwnas.controller.autogo.mutation import Mutator, coverage
    from hwnas.controller.corpus import registry
    from hwnas.controller.graph.onnx_import import from_onnx

    vit = from_onnx(registry.export("vit_tiny", 17)).canonical()
    tokens = build_database(standard_corpus(8, seed=0, spaces=("transformer",)), vocab_size=300)
    covered = coverage(vit, tokens)
    assert covered["mutable_nodes"] == 110 and covered["replaceable_segments"] > 0, covered
    frozen = set(covered["frozen"])
    assert {"matmul (an op segments do not replace)", "softmax (an op segments do not replace)"} <= frozen
    assert not any(op.startswith(("layernorm", "add", "gelu")) for op in frozen)
    from_cnns = Mutator(database, np.random.default_rng(0)).mutate(vit, limit=5)
    assert from_cnns and not any({n.op for n in database.segments[m.segment].nodes} & MAP_OPS for m in from_cnns)
    children = Mutator(tokens, np.random.default_rng(0), op_classes(vit)).mutate(vit, limit=30)
    assert len(children) >= 4
    widths = {vit.nodes[k].out_shape[-1] for k in range(len(vit.nodes)) if vit.nodes[k].op == "linear"}
    resized = 0
    rng = np.random.default_rng(1)
    for mutation in children:
        child = mutation.child
        start, stop = mutation.span
        assert all(len(n.out_shape) == 3 for n in child.nodes[start:stop])  # placed on tokens only
        resized += any(n.op == "linear" and n.out_shape[-1] not in widths for n in child.nodes[start:stop])
        session = ort.InferenceSession(to_onnx_bytes(child), providers=["CPUExecutionProvider"])
        (out,) = session.run(None, {session.get_inputs()[0].name:
                                    rng.standard_normal(child.input_shape).astype(np.float32)})
        assert out.shape == (1, 1000) and np.all(np.isfinite(out))
    assert resized >= 1  # a token MLP of a width the parent does not have


def test_autogo_run_measures_children_on_a_real_onnxruntime_agent(trained: tuple[Path, Path], tmp_path: Path) -> None:
    segments, psc = trained
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    with LocalAgent(tmp_path / "cache") as agent:
        assert main(["autogo", "run", "--space", "nb201", "--arch", arch, "--device", "cpu-ort", "--agent",
                     agent.address, "--insecure", "--protocol", "fixed", "--param", "count=5", "--iterations", "1",
                     "--parents", "1", "--candidates", "20", "--measure-per-parent", "3", "--segments", str(segments),
                     "--predictor", str(psc), "--db", str(tmp_path / "s.db"), "--out", str(tmp_path / "o"),
                     "--quiet", "--no-golden"]) == 0
    everything = rows(tmp_path / "o" / "all.csv")
    assert len(everything) == 4 and all(float(r["latency_ms"]) > 0 for r in everything)
    with Store(tmp_path / "s.db") as store:
        records = list(store.measurements("cpu-ort"))
    assert {r["arch_id"] for r in records} == {r["arch_id"] for r in everything}
    assert all(r["backend"] == "onnxruntime" and r["count"] == 5 for r in records)


@pytest.mark.parametrize(("args", "message"), [
    (["--metric", "flops"], "give exactly one network"),
    (["--zoo", "resnet50", "--input", "x.onnx", "--metric", "flops"], "give exactly one network"),
    (["--zoo", "resnet50", "--metric", "accuracy"], "--metric must be one of"),
    (["--zoo", "resnet50", "--metric", "latency"], "give --device KEY"),
    (["--zoo", "resnet50", "--metric", "latency", "--device", "d"], "no agent given for device key(s) ['d']"),
    (["--zoo", "resnet50", "--metric", "flops", "--parents", "0"], "--parents must be >= 1"),
    (["--zoo", "resnet50", "--metric", "flops", "--segments", "nowhere"], "hwnas autogo build-db"),
    (["--space", "nb201", "--arch", "nonsense", "--metric", "flops"], "cannot read 'nonsense'"),
])
def test_autogo_cli_names_the_bad_field(tmp_path: Path, capsys: pytest.CaptureFixture, trained: tuple[Path, Path],
                                        args: list[str], message: str) -> None:
    segments, psc = trained
    base = ["--segments", str(segments), "--predictor", str(psc), "--db", str(tmp_path / "s.db"), "--quiet"]
    assert main(["autogo", "run", *base, *args]) == 2
    assert message in capsys.readouterr().err


def test_autogo_cli_refuses_a_predictor_of_another_kind(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                        trained: tuple[Path, Path]) -> None:
    segments, _ = trained
    from hwnas.controller.learning.data import nb201_samples

    ridge = get_predictor("ridge").fit(nb201_samples([[0, 1, 2, 3, 1, 2]] * 4, [1.0, 2.0, 3.0, 4.0], flops=False))
    ridge.save(tmp_path / "ridge")
    assert main(["autogo", "run", "--zoo", "resnet50", "--metric", "flops", "--segments", str(segments),
                 "--predictor", str(tmp_path / "ridge"), "--quiet"]) == 2
    assert "a 'ridge' predictor reads encoding, not computation graphs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["autogo", "run", "--zoo", "resnet50", "--flops-bounds", "5:10"])
    assert "must include 0" in capsys.readouterr().err


def test_the_zoo_matches_the_onnx_import_of_the_same_networks_in_torch() -> None:
    from hwnas.controller.graph.onnx_import import from_onnx

    from .reference_models import EDSR, export_onnx
    from .reference_models import resnet50 as torch_resnet50

    assert from_onnx(export_onnx(torch_resnet50(), (1, 3, 224, 224))).arch_id == resnet50().arch_id
    assert from_onnx(export_onnx(EDSR(blocks=4, channels=32), (1, 3, 48, 48))).arch_id == \
        edsr(blocks=4, channels=32).arch_id


def test_build_db_names_an_unknown_space(tmp_path, capsys) -> None:
    assert main(["autogo", "build-db", "--spaces", "nb201,nope", "--out", str(tmp_path / "db"), "--quiet"]) == 2
    assert "--spaces ['nope'] are not registered spaces" in capsys.readouterr().err
