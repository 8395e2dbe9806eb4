"""A model's own memory footprint: the peak RSS a fresh process adds loading it and running it.

The peak RSS of a long-lived agent says nothing about one model: it holds the runtimes, the cache and every
model it ran before, and its allocator reuses what they freed. So the agent starts a fresh process of its
own code that imports the runtime, notes its resident set, then loads the model, binds it (inputs and the
first inference) and runs it a few times, and reports how far its peak resident set rose above that
baseline (Linux: the address space's ``VmHWM``; macOS ``ru_maxrss``; elsewhere psutil's peak working set). That is the
model's footprint over load and inference, weights, arenas and activations included, as the record's
``memory_source`` says.

    python -m hwnas.device_agent.memory_probe  (reads one JSON request on stdin, writes one JSON answer)
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

RUNS = 5  # inferences after binding, so lazily allocated buffers are counted
SOURCE = f"RSS a fresh process added loading the model, its first inference and {RUNS} more (at its peak)"
TIMEOUT_S = 600.0


def peak_rss_bytes() -> int:
    """This process's peak resident set so far.

    On Linux the address space's own high-water mark (``VmHWM``): ``ru_maxrss`` also carries the peak of the
    parent this process was forked from, so a probe started by an agent holding 600 MiB read 600 MiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux
    except ImportError:  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return int(getattr(info, "peak_wset", info.rss))


def footprint(backend: str, options: Mapping[str, str], path: Path, threads: int,
              shapes: Mapping[str, tuple[int, ...]], timeout_s: float = TIMEOUT_S) -> int:
    """Bytes the model adds to a fresh process's peak resident set; RuntimeError saying why when it fails
    (subprocess.TimeoutExpired past ``timeout_s``: the process is killed)."""
    request = {"backend": backend, "options": dict(options), "path": str(path), "threads": threads,
               "shapes": {name: list(dims) for name, dims in shapes.items()}}
    done = subprocess.run([sys.executable, "-m", "hwnas.device_agent.memory_probe"], input=json.dumps(request),
                          capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"the memory probe failed (exit {done.returncode}): {last}")
    return int(json.loads(done.stdout)["footprint_bytes"])


def _probe(request: Mapping) -> int:
    import importlib

    from hwnas.device_agent.backends import backend_class

    backend = backend_class(request["backend"])(**request["options"])
    for module in backend.runtime_modules:
        try:
            importlib.import_module(module)
        except ImportError:  # e.g. tflite_runtime in place of ai_edge_litert on an older board
            pass
    import gc

    import psutil

    process = psutil.Process()
    gc.collect()
    baseline, peak_before = process.memory_info().rss, peak_rss_bytes()  # the runtime imported, no model yet
    loaded = backend.load(Path(request["path"]), request["threads"])
    seen = [process.memory_info().rss]
    run_once = loaded.bind({name: tuple(dims) for name, dims in request["shapes"].items()})
    seen.append(process.memory_info().rss)
    for _ in range(RUNS):
        run_once()
    seen.append(process.memory_info().rss)
    # the kernel's peak catches what a run held only briefly, but it counts the imports' own passing peak
    # too: it says something only once the model took the process past that
    peak = peak_rss_bytes()
    return max(0, max(seen + ([peak] if peak > peak_before else [])) - baseline)


if __name__ == "__main__":
    print(json.dumps({"footprint_bytes": _probe(json.loads(sys.stdin.read()))}))
