"""The architecture rules of pyproject.toml's [tool.importlinter]: layers, forbidden imports, no cycles."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


FOLDERS = ("controller", "device_agent", "predictors", "protos")  # each installs as hwnas.<folder> (setup.py)


def installed_layout(into: Path) -> Path:
    """The sources' modules laid out as a wheel installs them (``hwnas/controller/...``).

    import-linter reads a package from the one folder its ``__init__`` is in; in a checkout, ``hwnas.controller``
    lives beside ``hwnas/``, not in it.
    """
    for source in (ROOT / "hwnas").glob("*.py"):
        (into / "hwnas").mkdir(parents=True, exist_ok=True)
        shutil.copy(source, into / "hwnas" / source.name)
    for folder in FOLDERS:
        for source in (ROOT / folder).rglob("*.py"):
            target = into / "hwnas" / folder / source.relative_to(ROOT / folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    return into


def test_import_contracts_hold(tmp_path: Path) -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "import-linter is a dev dependency: pip install -e '.[dev]'"
    tree = installed_layout(tmp_path)
    done = subprocess.run([lint, "--no-cache", "--config", str(ROOT / "pyproject.toml")], cwd=tree,
                          env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout and "No matches for ignored import" not in done.stdout, done.stdout[-3000:]


def test_sources_import_the_installed_names_only() -> None:
    """``from controller...`` works in a checkout (its root is on sys.path) but not from a wheel: only ``hwnas.``."""
    import ast

    bare = []
    for path in [*(ROOT / "hwnas").rglob("*.py"), *(p for f in (*FOLDERS, "tests", "benchmarks")
                                                  for p in (ROOT / f).rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            bare += [f"{path.relative_to(ROOT)}:{node.lineno}" for name in names if name.split(".")[0] in FOLDERS]
    assert bare == [], bare


def test_no_code_outside_the_spaces_checks_a_space_by_name() -> None:
    """Spaces declare what they offer (predictor_features, accuracy_table, network_key); callers ask them."""
    import re

    pattern = re.compile(r"space\.name\s*[!=]=")
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in (ROOT / "controller").rglob("*.py")
                 if "spaces" not in path.parts
                 for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == [], offenders


def test_spaces_declare_their_predictor_features() -> None:
    import numpy as np
    import pytest

    from hwnas.controller.learning.data import space_samples
    from hwnas.controller.spaces import get_space
    from hwnas.controller.spaces.catalog import sample

    nb201, mbv3, resnet = get_space("nb201"), get_space("ofa-mbv3"), get_space("ofa-resnet50")
    cells = space_samples(nb201, sample(nb201, 3, 0), [1.0, 2.0, 3.0])
    assert cells.adjacency is not None and nb201.accuracy_table == "nb201"  # the cell graph, for the GCN
    ridge_only = space_samples(nb201, sample(nb201, 3, 0), views={"encoding"})  # built only where read
    assert ridge_only.adjacency is None and np.array_equal(ridge_only.encoding, cells.encoding)
    onehot = space_samples(mbv3, sample(mbv3, 3, 0))
    assert onehot.encoding.shape[0] == 3 and set(np.unique(onehot.encoding)) <= {0.0, 1.0}
    assert onehot.adjacency is None and mbv3.accuracy_table == "ofa-mbv3-accuracy" and resnet.accuracy_table == ""

    class Odd(type(mbv3)):
        predictor_features = "no-such-view"

    with pytest.raises(ValueError, match="declares predictor features 'no-such-view'"):
        space_samples(Odd(), sample(mbv3, 1, 0))


def test_controller_top_level_holds_only_rooms() -> None:
    """Every controller module lives in a room (package) named for what it does."""
    loose = sorted(p.name for p in (ROOT / "controller").glob("*.py"))
    assert loose == ["__init__.py", "errors.py"]  # errors.py: the SettingError every room raises


def test_no_controller_module_outgrows_450_lines() -> None:
    """A module past 450 lines holds more than one thing (#35): split it by what each part does."""
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "controller").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 450}
    assert long == {}, long


def test_library_errors_name_settings_not_flags() -> None:
    """Only the CLI knows its flags: an error raised below it names the setting (``SettingError``), and
    ``cli.common.fail`` shows the flag. A whole command quoted as the fix (`hwnas ... --db X`) may name its flags."""
    import ast
    import re

    flag = re.compile(r"(^|[\s(])--[a-z]")
    offenders = []
    for path in (ROOT / "controller").rglob("*.py"):
        if "cli" in path.relative_to(ROOT / "controller").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                texts = [c.value for c in ast.walk(node.exc)
                         if isinstance(c, ast.Constant) and isinstance(c.value, str)]
                text = re.sub(r"`hwnas[^`]*`?", "", "".join(texts))  # a command to run, quoted, is a hint
                if flag.search(text):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], offenders


def test_every_command_group_has_help(capsys) -> None:
    from hwnas.controller.cli.main import main

    done = subprocess.run([sys.executable, "-m", "hwnas.controller.cli", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # the entry point as a process; the groups in this one
    assert done.returncode == 0 and "usage: hwnas" in done.stdout, done.stderr[-2000:]
    for group in ("profile", "space", "graph", "latbench", "fleet", "predictor", "search", "autogo", "autobuild",
                  "certs", "demo", "dashboard"):
        with pytest.raises(SystemExit) as exited:
            main([group, "--help"])
        out = capsys.readouterr().out
        assert exited.value.code == 0 and f"usage: hwnas {group}" in out, (group, out[-2000:])
