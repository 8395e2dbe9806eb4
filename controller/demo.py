"""``make demo``: a real agent on 127.0.0.1 profiles small CNNs built from the CG IR."""

from __future__ import annotations

import tempfile
from pathlib import Path

from controller.client import AgentClient
from controller.graph import ComputationGraph, GraphBuilder
from controller.graph.onnx_export import to_onnx_bytes
from controller.local_agent import LocalAgent
from controller.report import profile_table


def small_cnn(width: int, blocks: int = 2, resolution: int = 32, classes: int = 10) -> ComputationGraph:
    """A ResNet-style CNN: conv stem, ``blocks`` residual blocks, pool, classifier."""
    b = GraphBuilder((1, 3, resolution, resolution))
    x = b.conv_bn_act(b.input, width, 3)
    for _ in range(blocks):
        y = b.conv_bn_act(x, width, 3)
        y = b.conv_bn_act(y, width, 3, act=None)
        x = b.op("relu", b.op("add", x, y))
    x = b.op("flatten", b.op("global_avgpool", x))
    b.linear(x, classes)
    return b.build()


def run_demo(out: Path, protocol: str = "fixed", sample: int = 80, evals: int = 100) -> dict[str, Path]:
    """The main job end to end on this machine, in a few minutes; returns the files it wrote.

    1. Two local agents: ONNX Runtime on this CPU (``local-cpu-ort``), and a replay of a public device
       (``pixel3-replay``: the packaged NB-201 table's Pixel 3 column, every record marked replayed).
    2. Small CNNs profiled through the ORT agent.
    3. A small LatBench campaign: ``sample`` NB-201 cells on both device keys, into ``out/demo.db``.
    4. A per-device latency predictor (SVR) trained from what the agents measured.
    5. A short LINAS search on the replayed device (latency vs CIFAR-10 accuracy), with its plots.
    """
    from controller import campaign
    from controller.cli import main as hwnas
    from controller.data import nb201_table_path
    from controller.predictor_jobs import held_out_summary, train_from_store
    from controller.spaces import get_space
    from controller.spaces.catalog import sample as sample_space
    from controller.store import Store

    out.mkdir(parents=True, exist_ok=True)
    db = out / "demo.db"
    replay = ["--backend", "replay", "--table", str(nb201_table_path()), "--column", "lat_ms_pixel3"]
    with tempfile.TemporaryDirectory(prefix="hwnas-demo-") as tmp, \
            LocalAgent(Path(tmp) / "ort") as ort, LocalAgent(Path(tmp) / "replay", replay) as replayed:
        print(f"1. agents: ONNX Runtime on {ort.address} (local-cpu-ort), "
              f"a replayed Pixel 3 on {replayed.address} (pixel3-replay)")
        rows = []
        with AgentClient(ort.address) as client:
            client.wait_ready()
            for width in (16, 32, 64):
                graph = small_cnn(width)
                sha, _ = client.ensure_model(to_onnx_bytes(graph))
                rows.append((f"cnn-w{width} ({graph.macs() / 1e6:.1f} MMACs)", client.profile(sha, protocol=protocol)))
        print("2. small CNNs on the ORT agent:\n" + profile_table(rows))

        space = get_space("nb201")
        endpoints = [campaign.AgentEndpoint("local-cpu-ort", ort.address),
                     campaign.AgentEndpoint("pixel3-replay", replayed.address)]
        with Store(db) as store:
            for key, backend in (("local-cpu-ort", "onnxruntime"), ("pixel3-replay", "replay")):
                plan = campaign.CampaignPlan("demo", [key], backend=backend, protocol=protocol,
                                             protocol_params={"count": 100} if protocol == "fixed" else {})
                campaign.enqueue(store, space, sample_space(space, sample, 0), plan)
            counts = campaign.run_campaign(store, endpoints)
            print(f"3. LatBench campaign of {sample} NB-201 cells into {db}: {campaign.summary_line(counts)}")
            for key in ("local-cpu-ort", "pixel3-replay"):
                # A quarter held out: with a demo-sized campaign a tenth is a handful of points, too few to rank.
                folder, metrics = train_from_store(store, db, key, "svr", valid_share=0.25)
                print(f"4. {key} latency predictor (svr) -> {folder}: {held_out_summary(metrics)}")
        print(f"5. LINAS on pixel3-replay, {evals} evaluations:")
        search_out = out / "search"
        code = hwnas(["search", "--device", "pixel3-replay", "--agent", replayed.address, "--backend", "replay",
                      "--algo", "linas", "--evals", str(evals), "--population", "25", "--inner-evals", "5000",
                      "--db", str(db), "--out", str(search_out), "--insecure"])
        if code != 0:
            raise RuntimeError("the demo's search failed")
    files = {name: search_out / name for name in ("pareto.png", "hypervolume.png", "pareto.csv", "measured.csv")}
    print("wrote " + ", ".join(str(p) for p in files.values()))
    return files
