"""Human-readable tables of profile results."""

from __future__ import annotations

from collections.abc import Sequence

from controller.fleet.client import ProfileRecord


def text_table(rows: Sequence[Sequence[str]], numbers_right: bool = True) -> str:
    """Rows (the first is the header) in aligned columns, a rule under the header.

    ``numbers_right`` right-aligns every column but the first, as for tables of figures.
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.rjust(w) if j and numbers_right else cell.ljust(w)
                  for j, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def profile_table(records: Sequence[tuple[str, ProfileRecord]]) -> str:
    """One row per (label, record): headline latency, spread, power, queue and round trip."""
    header = ["model", "protocol", "latency_ms", "n", "min_ms", "median_ms", "p90_ms", "p99_ms", "max_ms",
              "std_ms", "power", "queue_ms", "round_trip_ms"]
    rows = [header]
    for label, rec in records:
        s, p = rec.stats, rec.power
        power = f"{p['mean_power_w']:.2f} W, {p['energy_per_inference_mj']:.3f} mJ/inf" if p["available"] else "n/a"
        rows.append([
            label, rec.result["protocol"], f"{rec.latency_ms:.4f}", str(s["count"]), f"{s['min_ms']:.4f}",
            f"{s['median_ms']:.4f}", f"{s['p90_ms']:.4f}", f"{s['p99_ms']:.4f}", f"{s['max_ms']:.4f}",
            f"{s['std_ms']:.4f}", power, f"{rec.result['queue_wait_ms']:.1f}", f"{rec.round_trip_ms:.1f}",
        ])
    no_power: dict[str, list[str]] = {}  # one line per reason: on one host every model has the same one
    for label, rec in records:
        if not rec.power["available"]:
            no_power.setdefault(rec.power["unavailable_reason"], []).append(label)
    notes = [f"power for {', '.join(labels)}: unavailable: {reason}" for reason, labels in no_power.items()]
    notes += [f"warning for {label}: {w}" for label, rec in records for w in rec.result.get("warnings", [])]
    for label, rec in records:
        env, r = rec.result.get("environment", {}), rec.result
        if env.get("tool"):
            notes.append(f"{label}: measured by {env['tool']} {env['tool_version']} on {env['transport']}: "
                         f"{env['tool_command']}")
        if r.get("load_ms") or r.get("first_inference_ms"):
            notes.append(f"{label}: cold start: load {r.get('load_ms', 0):.2f} ms, first inference "
                         f"{r.get('first_inference_ms', 0):.2f} ms")
        if r.get("peak_memory_bytes"):
            notes.append(f"{label}: peak memory {r['peak_memory_bytes'] / 2**20:.1f} MiB ({r['memory_source']})")
    return "\n".join([text_table(rows), *notes])


def failure_summary(causes: Sequence[tuple[str, int]], limit: int = 5) -> str:
    """'N failed:' and the ``limit`` most frequent causes, one per line, each cut to one screen line."""
    total = sum(n for _, n in causes)
    lines = [f"{total} failed; causes, most frequent first:"]
    for cause, n in causes[:limit]:
        first = cause.strip().splitlines()[0] if cause.strip() else "no error recorded"
        lines.append(f"  {n:>6} x {first[:200]}")
    if len(causes) > limit:
        lines.append(f"  ... and {len(causes) - limit} other cause(s)")
    return "\n".join(lines)
