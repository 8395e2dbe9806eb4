"""What each dashboard page shows, read from the store: plain dicts and lists, no HTML (tested without a server).

Everything here only reads. The store is opened read-only by the app, so a bug here cannot write either.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np
from scipy import stats

from controller.store import Store

RATE_WINDOW_S = 600.0  # completions over the last ten minutes give a campaign's rate
SCATTER_POINTS = 5000  # per device: enough to see the cloud, few enough to render fast


def fleet(store: Store, now: float | None = None) -> list[dict[str, Any]]:
    """Every agent the store knows: those that dialled in (registered, with heartbeats) and the configured ones
    a controller's workers are leasing for (known only by their leases)."""
    now = time.time() if now is None else now
    counts = store.counts()
    leases = defaultdict(list)
    for job in store.leased():
        leases[job.lease_owner].append(job)
    rows, registered = [], set()
    for agent in store.registered_agents():
        registered.add(agent.agent_id)
        jobs = leases.get(agent.agent_id, [])
        rows.append({"name": agent.name, "device_key": agent.device_key, "backends": agent.backends,
                     "host": agent.peer, "version": agent.version, "kind": "dialled in",
                     "health": "healthy" if agent.healthy(now) else "stale",
                     "last_heartbeat_s_ago": round(now - agent.last_seen_at_unix_s, 1),
                     "current_job": jobs[0].job_key if jobs else "",
                     "queued_for_key": counts.get(agent.device_key, {}).get("queued", 0)})
    for owner, jobs in sorted(leases.items()):
        if owner in registered:
            continue
        key = jobs[0].device_key
        rows.append({"name": owner, "device_key": key, "backends": jobs[0].backend, "host": owner,
                     "version": "", "kind": "configured", "health": "leasing", "last_heartbeat_s_ago": None,
                     "current_job": jobs[0].job_key, "queued_for_key": counts.get(key, {}).get("queued", 0)})
    return rows


def campaigns(store: Store, now: float | None = None) -> list[dict[str, Any]]:
    """Per campaign and device key: job counts by state, the completion rate over the last ten minutes, the
    time left at that rate, and the failed jobs with their errors."""
    now = time.time() if now is None else now
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for row in store.campaign_progress(now - RATE_WINDOW_S):
        cell = cells.setdefault((row["campaign"], row["device_key"]), {
            "campaign": row["campaign"], "device_key": row["device_key"], "queued": 0, "leased": 0, "done": 0,
            "failed": 0, "done_recently": 0, "first_queued": row["first_queued"]})
        cell[row["state"]] = row["n"]
        cell["first_queued"] = min(cell["first_queued"], row["first_queued"])
        if row["state"] == "done":
            cell["done_recently"] = int(row["recent"] or 0)
    out = []
    for cell in cells.values():
        window = min(RATE_WINDOW_S, max(now - cell.pop("first_queued"), 1.0))  # a young campaign: its age
        rate = cell["done_recently"] / window * 60.0  # jobs per minute
        left = cell["queued"] + cell["leased"]
        cell["total"] = left + cell["done"] + cell["failed"]
        cell["rate_per_min"] = round(rate, 2)
        cell["eta_min"] = round(left / rate, 1) if rate > 0 and left else (0.0 if not left else None)
        out.append(cell)
    for cell in out:
        cell["failures"] = [{"arch": arch, "error": error} for key, arch, error in store.failures(cell["campaign"])
                            if key == cell["device_key"]] if cell["failed"] else []
    return out


def dataset(store: Store, space: str = "", protocol: str = "", backend: str = "") -> dict[str, Any]:
    """Per device: latency distribution and latency vs MACs; the device x device Spearman correlation over the
    architectures both measured (median latency per architecture); the filter values there are."""
    rows = store.latency_rows()
    choices = {"space": sorted({r[2] for r in rows}), "protocol": sorted({r[3] for r in rows}),
               "backend": sorted({r[4] for r in rows})}
    rows = [r for r in rows if (not space or r[2] == space) and (not protocol or r[3] == protocol)
            and (not backend or r[4] == backend)]
    by_device: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    macs: dict[str, int] = {}
    for device, arch_id, _, _, _, latency, m in rows:
        by_device[device][arch_id].append(latency)
        macs[arch_id] = m
    devices = sorted(by_device)
    medians = {d: {a: float(np.median(v)) for a, v in archs.items()} for d, archs in by_device.items()}
    per_device = []
    rng = np.random.default_rng(0)
    for d in devices:
        latencies = np.array([r[5] for r in rows if r[0] == d])
        archs = list(medians[d])
        shown = archs if len(archs) <= SCATTER_POINTS else [archs[i] for i in rng.choice(len(archs), SCATTER_POINTS,
                                                                                         replace=False)]
        per_device.append({"device_key": d, "measurements": len(latencies), "architectures": len(archs),
                           "median_ms": float(np.median(latencies)), "p90_ms": float(np.percentile(latencies, 90)),
                           "latency_ms": latencies.tolist() if len(latencies) <= 20_000 else
                           rng.choice(latencies, 20_000, replace=False).tolist(),
                           "scatter": {"macs": [macs[a] for a in shown], "latency_ms": [medians[d][a] for a in shown],
                                       "arch_id": shown}})
    correlation = np.full((len(devices), len(devices)), np.nan)
    common = np.zeros((len(devices), len(devices)), dtype=int)
    for i, a in enumerate(devices):
        for j, b in enumerate(devices):
            shared = sorted(set(medians[a]) & set(medians[b]))
            common[i, j] = len(shared)
            if len(shared) >= 3:
                rho = stats.spearmanr([medians[a][k] for k in shared], [medians[b][k] for k in shared]).statistic
                correlation[i, j] = float(rho)
    return {"devices": per_device, "device_keys": devices, "choices": choices, "rows": len(rows),
            "spearman": [[None if np.isnan(v) else round(float(v), 4) for v in line] for line in correlation],
            "common": common.tolist()}


def architecture(store: Store, arch_id: str) -> dict[str, Any]:
    """One architecture and every record of it; KeyError when the store has no such architecture."""
    arch = store.architecture(arch_id)
    records = list(store.measurements(arch_id=arch_id))
    return {"arch_id": arch.arch_id, "space": arch.space, "arch": arch.arch, "encoding": arch.encoding,
            "macs": arch.macs, "params": arch.params, "records": records}
