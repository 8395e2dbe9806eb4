"""The install extras keep their promises: the agent extra is light, console scripts exist."""

from pathlib import Path

import tomllib

PYPROJECT = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
HEAVY = ("torch", "torch-geometric", "torch_geometric", "pymoo", "ortools", "onnx", "fvcore")


def _names(requirements: list[str]) -> set[str]:
    names = set()
    for req in requirements:
        name = req.split(";")[0]
        for sep in "<>=![ ":
            name = name.split(sep)[0]
        names.add(name.strip().lower())
    return names


def test_the_agent_extra_pulls_nothing_heavy() -> None:
    project = PYPROJECT["project"]
    agent = _names(project["dependencies"]) | _names(project["optional-dependencies"]["agent"])
    assert not agent & set(HEAVY), agent & set(HEAVY)
    assert {"grpcio", "onnxruntime", "numpy", "protobuf"} <= agent


def test_pins_from_the_known_good_list() -> None:
    everything = " ".join(PYPROJECT["project"]["dependencies"]
                          + sum(PYPROJECT["project"]["optional-dependencies"].values(), []))
    assert "protobuf>=6.33.1,<6.34" in everything and "numpy>=1.24,<2.4" in everything
    assert "grpcio-tools>=1.81.1,<1.82" in everything


def test_console_scripts() -> None:
    assert PYPROJECT["project"]["scripts"] == {"hwnas": "hwnas.controller.cli.main:main",
                                               "hwnas-agent": "hwnas.device_agent.cli:main"}
