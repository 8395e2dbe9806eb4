"""Slow a process down as a throttled device would be: stop it (SIGSTOP) for most of every millisecond.

Run as ``python -m tests.throttle PID [STOPPED_US RUNNING_US]``; it prints ``throttling`` once it runs and
stops (letting the process run again) on SIGTERM. It asks for real-time scheduling (SCHED_FIFO), so that its
own timing holds on a loaded machine: at normal priority a loaded machine delays its wake-ups, the process
runs for whole time slices, and an inference shorter than a slice runs untouched. The window is far shorter
than one inference of the golden network (about 0.6 ms on this machine), so every inference is stretched.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def main(argv: list[str]) -> int:
    pid = int(argv[0])
    stopped_s, running_s = (int(argv[1]) * 1e-6, int(argv[2]) * 1e-6) if len(argv) == 3 else (900e-6, 100e-6)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        priority = "real-time"
    except PermissionError:
        priority = "normal (no real-time scheduling allowed: the slowdown may not hold under load)"
    done = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal done
        done = True

    signal.signal(signal.SIGTERM, stop)
    print(f"throttling {pid} at {priority} priority", flush=True)
    try:
        while not done:
            os.kill(pid, signal.SIGSTOP)
            time.sleep(stopped_s)
            os.kill(pid, signal.SIGCONT)
            time.sleep(running_s)
    except ProcessLookupError:
        return 0
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
