"""What each dashboard page shows, read from the store: plain dicts and lists, no HTML (tested without a server).

Everything here only reads. The store is opened read-only by the app, so a bug here cannot write either.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

import numpy as np
from scipy import stats

from hwnas.controller.store import Store

RATE_WINDOW_S = 600.0  # completions over the last ten minutes give a campaign's rate
OUTLIER_POINTS = 300  # per device: the box's outliers drawn as points; the most extreme kept beyond this
SCATTER_POINTS = 1500  # per device: enough to see the cloud, few enough to send and draw fast


def fleet(store: Store, now: float | None = None) -> dict[str, list[dict[str, Any]]]:
    """``agents``: every agent the store knows, those that dialled in (registered, with heartbeats) and the
    configured ones a controller's workers are leasing for (known only by their leases), each marked when its
    device key is quarantined; ``keys``: each device key's golden-model health."""
    from hwnas.controller.fleet.golden import key_health

    keys = key_health(store)
    quarantined = {k["device_key"] for k in keys if k["state"] == "quarantined"}
    return {"agents": [{**row, "quarantined": row["device_key"] in quarantined} for row in _agents(store, now)],
            "keys": keys}


def _agents(store: Store, now: float | None) -> list[dict[str, Any]]:
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
                     "current_job": _job_text(jobs[0]) if jobs else "",
                     "queued_for_key": counts.get(agent.device_key, {}).get("queued", 0)})
    for owner, jobs in sorted(leases.items()):
        if owner in registered:
            continue
        key = jobs[0].device_key
        rows.append({"name": owner, "device_key": key, "backends": jobs[0].backend, "host": owner,
                     "version": "", "kind": "configured", "health": "leasing", "last_heartbeat_s_ago": None,
                     "current_job": _job_text(jobs[0]), "queued_for_key": counts.get(key, {}).get("queued", 0)})
    return rows


def _job_text(job) -> str:
    """A leased job as a person reads it: campaign, architecture (short id), backend and protocol."""
    return f"{job.campaign}: {job.arch_id[:12]} on {job.backend} ({job.protocol})"


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


def _extremes(ascending: np.ndarray, most: int) -> list[float]:
    """Up to ``most`` of the sorted values, the most extreme at both ends first (a box's outliers to draw)."""
    if len(ascending) <= most:
        return np.round(ascending, 6).tolist()
    low, high = most // 2, most - most // 2
    return np.round(np.concatenate([ascending[:low], ascending[-high:]]), 6).tolist()


def dataset(store: Store, space: str = "", protocol: str = "", backend: str = "") -> dict[str, Any]:
    """Per device: latency distribution (box statistics) and latency vs MACs; the device x device Spearman
    correlation over the architectures both measured (median latency per architecture); the filter values.

    Vectorised: a page over 100,000 measurements must answer in well under 2 s (``benchmarks/dashboard.py``).
    """
    columns, archs = store.latency_columns()  # every measurement's architecture is in ``archs`` (a foreign key)
    device_col, arch_col, protocol_col, backend_col = (np.array(columns[c], dtype=object).astype(str)
                                                       for c in ("device_key", "arch_id", "protocol", "backend"))
    arch_ids, arch_of = np.unique(arch_col, return_inverse=True)
    space_col = np.array([archs[a][0] for a in arch_ids], dtype=object).astype(str)[arch_of]
    choices = {name: sorted(set(column.tolist()))
               for name, column in (("space", space_col), ("protocol", protocol_col), ("backend", backend_col))}
    all_latency = np.array(columns["latency_ms"], dtype=np.float64)
    # a store written before records refused impossible figures may hold inf or -5: they are left out
    keep = np.isfinite(all_latency) & (all_latency > 0)
    for value, column in ((space, space_col), (protocol, protocol_col), (backend, backend_col)):
        if value:
            keep &= column == value
    if not keep.any():
        return {"devices": [], "device_keys": [], "choices": choices, "rows": 0, "spearman": [], "common": [],
                "scatter_archs": {"arch_id": [], "macs": []}}
    devices, device_of = np.unique(device_col[keep], return_inverse=True)
    arch_ids, arch_of = np.unique(arch_col[keep], return_inverse=True)
    latency = all_latency[keep]
    macs = np.array([archs[a][1] for a in arch_ids], dtype=np.float64)
    medians = _group_medians(device_of, arch_of, latency, (len(devices), len(arch_ids)))
    samples = _scatter_samples(~np.isnan(medians))
    scattered = np.unique(np.concatenate(samples))
    position = np.searchsorted(scattered, np.arange(len(arch_ids)))
    per_device = []
    for d, key in enumerate(devices):
        values = latency[device_of == d]
        measured = np.flatnonzero(~np.isnan(medians[d]))
        shown = samples[d]
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        within = (values >= q1 - 1.5 * (q3 - q1)) & (values <= q3 + 1.5 * (q3 - q1))
        inside, outside = values[within], np.sort(values[~within])
        per_device.append({"device_key": str(key), "measurements": int(len(values)),
                           "architectures": int(len(measured)), "median_ms": float(median),
                           "p90_ms": float(np.percentile(values, 90)),
                           "box": {"q1": float(q1), "median": float(median), "q3": float(q3),
                                   "lowerfence": float(inside.min()), "upperfence": float(inside.max()),
                                   "outliers": _extremes(outside, OUTLIER_POINTS), "outlier_count": len(outside)},
                           "scatter": {"index": position[shown].tolist(),
                                       "latency_ms": np.round(medians[d, shown], 6).tolist()}})
    correlation, common = _rank_correlations(medians)
    return {"devices": per_device, "device_keys": [str(k) for k in devices], "choices": choices,
            "rows": int(keep.sum()),
            "scatter_archs": {"arch_id": arch_ids[scattered].tolist(), "macs": macs[scattered].tolist()},
            "spearman": [[None if np.isnan(v) else round(float(v), 4) for v in line] for line in correlation],
            "common": common.tolist()}


def _scatter_samples(present: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """Per device, at most ``SCATTER_POINTS`` of the architectures it measured (sorted indices). One random
    order serves every device, so devices that measured the same architectures show the same ones: the
    scatter compares them network for network, and each architecture's id and MACs are sent once."""
    order = np.random.default_rng(seed).permutation(present.shape[1])
    return [np.sort(order[present[d, order]][:SCATTER_POINTS]) for d in range(len(present))]


def _group_medians(device_of: np.ndarray, arch_of: np.ndarray, latency: np.ndarray, shape: tuple[int, int]
                   ) -> np.ndarray:
    """(devices, archs) median latency of each pair's measurements; NaN where a device has none."""
    out = np.full(shape, np.nan)
    cell = device_of * shape[1] + arch_of
    order = np.argsort(cell, kind="stable")
    cells, starts, sizes = np.unique(cell[order], return_index=True, return_counts=True)
    single = sizes == 1
    out.flat[cells[single]] = latency[order[starts[single]]]
    for c, start, size in zip(cells[~single], starts[~single], sizes[~single], strict=True):
        out.flat[c] = np.median(latency[order[start:start + size]])
    return out


def _rank_correlations(medians: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman's ρ between every two devices over the architectures both measured (NaN below 3), and how many
    architectures that was.

    Devices that measured the same architectures (a LatBench campaign's usual shape) are ranked once each and
    correlated as one matrix: Spearman's ρ is Pearson's r of the (average-tie) ranks. Other pairs are ranked
    over what they share.
    """
    n = len(medians)
    correlation = np.full((n, n), np.nan)
    present = ~np.isnan(medians)
    common = present.astype(np.int64) @ present.T.astype(np.int64)
    groups: dict[bytes, list[int]] = {}
    for i in range(n):
        groups.setdefault(np.packbits(present[i]).tobytes(), []).append(i)
    for members in groups.values():
        shared = present[members[0]]
        if shared.sum() >= 3:
            ranks = stats.rankdata(medians[np.ix_(members, np.flatnonzero(shared))], axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                correlation[np.ix_(members, members)] = np.corrcoef(ranks).reshape(len(members), len(members))
    for i in range(n):
        for j in range(i + 1, n):
            both = present[i] & present[j]
            if common[i, j] >= 3 and not (np.array_equal(both, present[i]) and np.array_equal(both, present[j])):
                correlation[i, j] = correlation[j, i] = stats.spearmanr(medians[i, both], medians[j, both]).statistic
    return correlation, common


def _cg_op(cg_ops: list[str], index: int | None) -> str:
    """``conv (node 7)`` for a per-op entry mapped to the CG, "" for a runtime's own node."""
    return f"{cg_ops[index]} (node {index})" if index is not None and 0 <= index < len(cg_ops) else ""


def architecture(store: Store, arch_id: str) -> dict[str, Any]:
    """One architecture and every record of it; KeyError when the store has no such architecture."""
    arch = store.architecture(arch_id)
    records = list(store.measurements(arch_id=arch_id))
    cg_ops = [node["op"] for node in json.loads(arch.cg_json)["nodes"]]
    profiles = [{"device_key": r["device_key"], "backend": r["backend"],
                 "ops": [{**op, "cg_op": _cg_op(cg_ops, op.get("cg_node"))} for op in json.loads(r["op_profile_json"])]}
                for r in records if r["op_profile_json"] not in ("", "[]")]
    return {"arch_id": arch.arch_id, "space": arch.space, "arch": arch.arch, "encoding": arch.encoding,
            "macs": arch.macs, "params": arch.params, "records": records, "op_profiles": profiles}
