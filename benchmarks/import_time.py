"""How long ``import hwnas`` takes beside importing the CLI (``hwnas.controller.cli.main``) and the API's
``hwnas.Lab``: each in a fresh interpreter, interleaved (A, B, C, A, B, C, ...) so drift hits all alike.

    python -m benchmarks.import_time [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from benchmarks.common import machine_line

STATEMENTS = {
    "python (nothing imported)": "pass",
    "import hwnas": "import hwnas",
    "import hwnas.controller.cli.main": "import hwnas.controller.cli.main",
    "hwnas.Lab (first use)": "import hwnas; hwnas.Lab",
}


def timed(statement: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    for statement in STATEMENTS.values():  # warm the file cache
        timed(statement)
    seconds: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    for _ in range(args.rounds):
        for name, statement in STATEMENTS.items():
            seconds[name].append(timed(statement))
    base = statistics.median(seconds["python (nothing imported)"])
    cli = statistics.median(seconds["import hwnas.controller.cli.main"]) - base
    print(machine_line())
    print(f"{'statement':36} {'median s':>9} {'import s':>9} {'vs CLI':>7}   ({args.rounds} interleaved rounds)")
    for name, values in seconds.items():
        own = statistics.median(values) - base
        print(f"{name:36} {statistics.median(values):9.3f} {own:9.3f} {own / cli:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
