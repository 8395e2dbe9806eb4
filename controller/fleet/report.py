"""Human-readable tables of profile results."""

from __future__ import annotations

from collections.abc import Sequence

from hwnas.controller.fleet.client import ProfileRecord
from hwnas.controller.reporting.tables import text_table


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
