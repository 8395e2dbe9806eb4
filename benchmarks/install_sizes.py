"""Installed size of each agent extra on another machine's platform, without that machine.

pip resolves and unpacks the real wheels PyPI serves for the target (``--platform``, ``--python-version``,
binary wheels only) into an empty folder; the folder's size is what ``pip install '.[EXTRA]'`` adds to
a virtual environment there, less pip's own bytecode caches. This is how the aarch64 sizes in
``docs/devices.md`` were taken: no Raspberry Pi or Jetson was at hand. An extra that needs a package
published only as source (zigzag-dse's ``multiprocessing_on_dill``) cannot be sized this way and says so.

    python -m benchmarks.install_sizes [--arch aarch64] [--python 3.11] [--extras agent,agent-litert]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

MANYLINUX = ("manylinux2014", "manylinux_2_17", "manylinux_2_27", "manylinux_2_28", "manylinux_2_34",
             "manylinux_2_35", "linux")
EXTRAS = ("agent", "agent-litert", "agent-zeus", "agent-sim", "agent-torch")


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def build_wheel(out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", ".", "-w", str(out)],
                   check=True)
    return next(out.glob("hwnas-*.whl"))


def installed_mb(wheel: Path, extra: str, arch: str, python: str, work: Path) -> float | str:
    """Megabytes the extra unpacks to on ``arch`` / CPython ``python``, or pip's reason it cannot."""
    target = work / f"{arch}-{python}-{extra}"
    platforms = [arg for tag in MANYLINUX for arg in ("--platform", f"{tag}_{arch}")]
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target), *platforms,
         "--python-version", python, "--implementation", "cp", "--only-binary=:all:", f"{wheel}[{extra}]"],
        capture_output=True, text=True)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        return errors[0] if errors else f"pip exited {done.returncode}"
    return folder_mb(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="aarch64", help="x86_64 or aarch64 (default aarch64)")
    parser.add_argument("--python", default="3.11", help="target CPython version (default 3.11)")
    parser.add_argument("--extras", default=",".join(EXTRAS), help="comma-separated extras")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wheel = build_wheel(work / "wheel")
        print(f"| extra | {args.arch}, CPython {args.python} |\n|---|---|")
        for extra in args.extras.split(","):
            size = installed_mb(wheel, extra, args.arch, args.python, work)
            print(f"| `{extra}` | {size:.0f} MB |" if isinstance(size, float) else f"| `{extra}` | {size} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
