"""``hwnas.Lab``: the lab as a Python object — its store and its agents — for scripts and notebooks.

One ``Lab`` holds one store and, once something is measured, one long-lived ``Fleet`` on the lab's agents:
every call enters by the same doors as the CLI (``Fleet.profile`` through the evaluator for one model,
the store's queue for campaigns and searches), so the records are the CLI's records.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.controller.errors import DeviceError, UserError
from hwnas.controller.lab.handles import Campaign, CampaignSummary, ProfileJob, Search, SearchResult
from hwnas.controller.lab.models import as_model_file
from hwnas.controller.lab.security import client_security, listen_tls, submitter

log = logging.getLogger("hwnas.lab")
AgentsArg = Mapping[str, str | Sequence[str]] | str | Path | None
InputShape = Sequence[int] | Mapping[str, Sequence[int]] | None


@dataclass(frozen=True)
class Device:
    """A configured agent of a device key, as it answers now (``Lab.devices``)."""

    key: str
    address: str
    healthy: bool
    health: str  # SERVING, or why not
    agent_name: str
    agent_version: str
    backends: tuple[str, ...]
    queued: int  # jobs waiting for this key in the store

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]


def endpoints_of(agents: AgentsArg) -> list:
    """``{"rpi4": "host:port"}`` (or a list of addresses per key), or the path of an agents TOML file."""
    from hwnas.controller.fleet import agents as fleet_agents

    if agents is None:
        return []
    if isinstance(agents, (str, Path)):
        try:
            return fleet_agents.load_agents(Path(agents))
        except (OSError, ValueError) as exc:
            raise UserError("agents", f"{agents}: {exc}") from None
    if not isinstance(agents, Mapping):
        raise UserError("agents", f"must map device keys to HOST:PORT addresses, or name a TOML file; got a "
                                  f"{type(agents).__name__}")
    endpoints = []
    for key, where in agents.items():
        for address in [where] if isinstance(where, str) else where:
            try:
                endpoints.append(fleet_agents.parse_agent(f"{key}={address}"))
            except ValueError as exc:
                raise UserError("agents", f"{key}={address!r}: {exc}") from None
    return endpoints


class Lab:
    """A lab's store and agents. Use as a context manager, or call ``close()``.

    ``store``: a SQLite file or a SQLAlchemy URL (PostgreSQL for several controllers). ``agents``: device key
    -> ``HOST:PORT`` (or a list), or an agents TOML file. ``tls``: the folder ``hwnas certs init`` wrote, or a
    ``ClientTls``; without it, plaintext, which agents allow on loopback only. ``token``: the agents' bearer
    token, or the path of its file. ``golden``: golden-model checks of campaigns and searches (as the CLI), or
    a ``GoldenPolicy``. ``listen``: also serve agents that dial in (``hwnas-agent serve --controller ADDR
    --device-key KEY``) on ``HOST:PORT``, with the certificate of the ``tls`` folder (``controller.pem``), or in
    plaintext on a loopback address; ``listen_address`` says where. ``fleet``: a whole ``FleetConfig`` instead
    of those (the CLI's flags make one).
    """

    def __init__(self, store: str | Path = "hwnas.db", agents: AgentsArg = None, *, tls: Any = None,
                 token: str | Path | None = None, isolated: Iterable[str] = (), golden: Any = True,
                 lease_s: float = 120.0, connect_timeout_s: float = 10.0, workers: int = 8,
                 listen: str | None = None, fleet: Any = None) -> None:
        from hwnas.controller.fleet import FleetConfig
        from hwnas.controller.fleet.client import AgentClient
        from hwnas.controller.fleet.health import GoldenPolicy

        for field, value, least in (("lease_s", lease_s, 1.0), ("connect_timeout_s", connect_timeout_s, 0.1),
                                    ("workers", workers, 1)):
            if not value >= least:
                raise UserError(field, f"must be at least {least}, got {value!r}")
        self.store_target = str(store)
        self._tls, self._token = client_security(tls, token)
        self._submitter = submitter(self._tls.cert if self._tls else None,
                                    Path(token).name if isinstance(token, Path) else None)
        if fleet is None:
            policy = GoldenPolicy() if golden is True else golden or None
            fleet = FleetConfig(endpoints=endpoints_of(agents),
                                connect=functools.partial(AgentClient, tls=self._tls, token=self._token),
                                lease_s=lease_s, token=self._token, isolated=tuple(isolated), note=log.info,
                                golden=policy, listen=listen, listen_tls=listen_tls(listen, tls))
        self._on_done = fleet.on_done
        self._config = dataclasses.replace(fleet, on_done=self._measured)
        self.endpoints = list(self._config.endpoints)
        self._connect = self._config.connect
        self.connect_timeout_s = connect_timeout_s
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hwnas-lab")
        self._lock = threading.Lock()
        self._store: Any = None
        self._fleet: Any = None
        self._progress: list[Any] = []  # callbacks (device key, arch id) of the campaigns and searches running

    # -- lifetime --------------------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        keys = sorted({ep.device_key for ep in self.endpoints})
        return f"Lab(store={self.store_target!r}, devices={keys})"

    def close(self) -> None:
        """Stop the agents' work (jobs running go back to the queue) and close the store."""
        with self._lock:
            fleet, store, self._fleet, self._store = self._fleet, self._store, None, None
        if fleet is not None:
            fleet.close()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if store is not None:
            store.close()

    @property
    def listen_address(self) -> str:
        """``HOST:PORT`` where agents dial in (the port chosen when ``listen`` asked for port 0); this starts
        the lab's fleet. "" when the lab does not listen."""
        fleet = self._opened_fleet()
        return fleet.gateway.address if fleet.gateway is not None else ""

    @property
    def store(self):
        """The lab's ``Store`` (opened on first use)."""
        from hwnas.controller.store import Store

        with self._lock:
            if self._store is None:
                try:
                    self._store = Store(self.store_target)
                except (OSError, ValueError) as exc:
                    raise UserError("store", f"{self.store_target}: {exc}") from None
            return self._store

    def _opened_fleet(self):
        """The one fleet on the lab's agents, started on first use."""
        from hwnas.controller.fleet import Fleet

        store = self.store
        with self._lock:
            if self._fleet is None:
                self._fleet = Fleet(store, self._config).open()
            return self._fleet

    def _measured(self, device_key: str, arch_id: str) -> None:
        self._on_done(device_key, arch_id)  # the caller's own (the CLI's progress bars)
        for callback in list(self._progress):
            callback(device_key, arch_id)

    def _endpoint(self, device: str):
        found = [ep for ep in self.endpoints if ep.device_key == device]
        if not found:
            known = sorted({ep.device_key for ep in self.endpoints})
            raise UserError("device", f"{device!r} has no agent in this lab (its devices: {known or 'none'}); "
                                      "add it to Lab(agents={...})")
        return found[0]

    def _check_devices(self, devices: Sequence[str]) -> None:
        """Every configured agent of the keys answers (``DeviceError`` naming those that do not); keys without
        one are served by agents that dial in, where the lab listens for them."""
        from hwnas.controller.fleet import agents

        if not (self._config.listen or self._config.dial_in):
            for key in devices:
                self._endpoint(key)  # UserError for a key no agent serves
        endpoints = [ep for ep in self.endpoints if ep.device_key in devices]
        try:
            agents.wait_for_agents(endpoints, self.connect_timeout_s, self._connect)
        except ConnectionError as exc:
            raise DeviceError(",".join(devices), f"does not answer: {exc}") from None

    # -- the devices -----------------------------------------------------------------------------------
    def devices(self) -> list[Device]:
        """Every configured agent: its device key, health, backends and queue depth, asked now."""
        from hwnas.controller.fleet import survey

        return [Device(s.device_key, s.address, s.health == "SERVING", s.health, s.name, s.version,
                       tuple(filter(None, s.backends.split(","))), s.queued_for_key)
                for s in survey(self.endpoints, self._connect, self.store)]

    # -- one model ---------------------------------------------------------------------------------------
    def profile(self, model: Any, device: str, *, input_shape: InputShape = None, protocol: str = "latbench",
                params: Mapping[str, float] | None = None, backend: str | None = None,
                model_format: str | None = None, batch_size: int = 0, threads: int = 0,
                warmup_runs: int | None = None, deadline_s: float = 0.0, output_check: bool = False,
                op_profile: bool = False, memory: bool = True, samples: bool = False,
                name: str | None = None) -> ProfileJob:
        """Measure ``model`` on ``device``'s agent; returns at once with a ``ProfileJob``.

        ``model``: a ``torch.nn.Module`` (with ``input_shape``), an ONNX or TFLite file's path or bytes, an
        ``onnx.ModelProto`` or an hwnas CG. ``input_shape``: a shape, or ``{input name: shape}`` for a model
        with several dynamic inputs. The options are ``hwnas profile``'s flags. The record is the one
        ``hwnas profile`` gives, not kept in the dataset (campaigns keep theirs). Several jobs run together;
        one agent's host measures one at a time.
        """
        from hwnas.controller.fleet.client import ProfileSpec

        shapes = _shapes(input_shape)
        file = as_model_file(model, next(iter(shapes.values()), None), name)
        endpoint = self._endpoint(device)
        spec = ProfileSpec(protocol=protocol, protocol_params=dict(params or {}), batch_size=batch_size,
                           input_shapes={} if _is_torch(model) else shapes, threads=threads,
                           warmup_runs=warmup_runs, deadline_seconds=deadline_s, return_samples=samples,
                           op_profile=op_profile, memory=memory, output_check=output_check)
        fleet = self._opened_fleet()
        future = self._pool.submit(_profile_one, fleet, endpoint, spec, backend, model_format, file,
                                   self.connect_timeout_s)
        return ProfileJob(future, file.arch, device)

    def profile_many(self, models: Sequence[Any], devices: Sequence[str], **options: Any) -> list[ProfileJob]:
        """Every model on every device, all submitted at once: jobs in (model, device) order."""
        if isinstance(devices, str):
            devices = [devices]
        return [self.profile(model, device, **options) for model in models for device in devices]

    # -- campaigns and the dataset -------------------------------------------------------------------------
    def latbench(self, devices: Sequence[str], space: Any = "nb201", sample: int | None = 100, *,
                 seed: int = 0, archs: Sequence[Sequence[int]] | None = None, protocol: str = "latbench",
                 params: Mapping[str, float] | None = None, backend: str | Sequence[str] = "onnxruntime",
                 model_format: str | Sequence[str] = "", batch_size: int = 1, campaign: str | None = None,
                 priority: int = 0, op_profile: bool = False, memory: bool = False, output_check: bool = False,
                 submitted_by: str | None = None, progress: bool = True) -> Campaign:
        """A LatBench-style build: ``sample`` networks of ``space`` (a name, or a space object) or ``archs``
        (encodings) on every device key, queued in the store and measured by the lab's agents; returns at once
        with a ``Campaign``.

        ``backend``/``model_format``: one for every key, or ``["KEY=NAME", ...]`` per key (one plan per runtime,
        as ``hwnas latbench build --backend``). ``progress``: a progress bar per device key (tqdm). Jobs keyed
        by what they measure are never measured twice, so the same call later resumes a stopped campaign. The
        jobs are queued before the agents are asked; ``DeviceError`` when one does not answer (they wait).
        """
        from hwnas.controller.fleet import campaign as campaigns
        from hwnas.controller.graph.model_formats import FormatUnavailable, check_exportable
        from hwnas.controller.lab.searching import space_named
        from hwnas.controller.spaces.catalog import sample as sample_space

        devices = [devices] if isinstance(devices, str) else list(devices)
        searched = space_named(space) if isinstance(space, str) else space
        chosen = [list(a) for a in archs] if archs is not None else sample_space(searched, sample or 0, seed)
        if not chosen:
            raise UserError("sample", f"must be at least 1 (or pass archs), got {sample}")
        name = campaign or f"{searched.name}-{protocol}-n{len(chosen)}-s{seed}"
        base = campaigns.CampaignPlan(campaign=name, device_keys=devices, protocol=protocol,
                                      protocol_params=dict(params or {}), batch_size=batch_size, priority=priority,
                                      op_profile=op_profile, memory=memory, output_check=output_check,
                                      submitted_by=submitted_by or self._submitter)
        try:
            plans = campaigns.plans_by_runtime(base, [backend] if isinstance(backend, str) else list(backend),
                                               [model_format] if isinstance(model_format, str) and model_format
                                               else [f for f in model_format if f])
            for plan in plans:
                check_exportable(plan.model_format)
        except FormatUnavailable as exc:
            raise UserError("model_format", str(exc)) from None
        fleet = self._opened_fleet()
        queued = [fleet.queue(searched, chosen, plan) for plan in plans]
        keys = [key for q in queued for key in q.job_keys]
        self._check_devices(devices)
        bars = _bars(self.store.counts_of(keys), devices) if progress else {}
        advance = _advancer(bars)
        self._progress.append(advance)

        def run() -> CampaignSummary:
            try:
                fleet.drain(devices)
            finally:
                self._progress.remove(advance)
                for bar in bars.values():
                    bar.close()
            quarantined = {k: why for k, why in self.store.quarantined_keys().items() if k in devices}
            return CampaignSummary(name, self.store.counts_of(keys), self.store.failure_causes(name), quarantined)

        return Campaign(self._pool.submit(run), name, keys, self.store.counts_of, sum(q.added for q in queued))

    def dataset(self, device: str | None = None, *, space: str | None = None, exclude_warned: bool = False):
        """The dataset as a pandas DataFrame, one row per measurement (``docs/dataset.md``'s columns): every
        key's, or ``device``'s; every space's (the golden checks' reference network is space ``golden``), or
        ``space``'s."""
        import pandas as pd

        from hwnas.controller.store.export import rows

        return pd.DataFrame([row for row in rows(self.store, device, exclude_warned)
                             if space is None or row["space"] == space])

    # -- searches and predictors -----------------------------------------------------------------------
    def search(self, device: str, space: Any = "nb201", objectives: str | Sequence[str] = ("latency", "accuracy"), *,
               algo: str = "linas", evals: int = 200, seed: int = 0, out: str | Path | None = None,
               accuracy: str | None = None, backend: str = "onnxruntime", model_format: str = "",
               protocol: str = "latbench", params: Mapping[str, float] | None = None, batch_size: int = 1,
               priority: int = 100, op_profile: bool = False, memory: bool = False, output_check: bool = False,
               settings: Mapping[str, Any] | None = None, hv_bounds: str = "", restrict: str = "",
               submitted_by: str | None = None, progress: bool | Callable[[Any, float], None] = True,
               note: Callable[[str], None] = log.info) -> Search:
        """A device-specific search on ``device``'s agents (``hwnas search``); returns at once with a
        ``Search`` whose result has the measured front and the hypervolume.

        ``settings``: the algorithm's own (``population``, ``predictors``, ...; ``hwnas search --help`` lists
        them). ``progress``: a bar (True), none (False), or a callable given each evaluation and the
        hypervolume after it. The measurement options are ``hwnas search``'s flags.
        """
        from hwnas.controller.lab.searching import JobShape, prepare_search

        shape = JobShape(backend, model_format, protocol, dict(params or {}), batch_size, priority, op_profile,
                         memory, output_check)
        prepared = prepare_search(device, space, objectives, algo, evals, seed, out, accuracy, shape,
                                  dict(settings or {}), submitted_by or self._submitter, hv_bounds, restrict)
        self.store  # opened (created) up front: a search's measurements and its re-runs live there  # noqa: B018
        fleet = None
        if prepared.plan is not None:
            self._check_devices([device])
            fleet = self._opened_fleet()
        bars = _bars({device: {"queued": evals}}, [device], unit="eval") if progress is True else {}
        advance = _advancer(bars)
        self._progress.append(advance)
        each = progress if callable(progress) else lambda evaluation, hv: None

        def run() -> SearchResult:
            try:
                return prepared.run(fleet, note, each)
            finally:
                self._progress.remove(advance)
                for bar in bars.values():
                    bar.close()

        return Search(self._pool.submit(run), prepared.out.name)

    def train_predictor(self, device: str, kind: str = "ridge", *, space: str | None = None, seed: int = 0,
                        sources: Sequence[str] = ()):
        """A latency predictor of ``device`` from its measurements in the dataset (``hwnas predictor train``),
        saved beside the store; returns a ``DevicePredictor`` (``.predict(networks)``, ``.metrics``)."""
        from hwnas.controller.lab.predicting import train

        return train(self.store, self.store_target, device, kind, space, seed, sources)


def _profile_one(fleet, endpoint, spec, backend, model_format, file, ready_timeout_s: float):
    """One model through the one door: the evaluator on a ``ProfileMeasurer`` (as ``hwnas profile``)."""
    from hwnas.controller.graph.model_formats import FormatUnavailable
    from hwnas.controller.search.evaluator import Evaluator
    from hwnas.controller.search.measure import ProfileMeasurer
    from hwnas.controller.search.objectives import OBJECTIVES

    measurer = ProfileMeasurer(fleet, endpoint, spec, backend, model_format, ready_timeout_s=ready_timeout_s)
    try:
        [evaluation] = Evaluator(None, [OBJECTIVES["latency"]], None, measurer, None).evaluate_candidates([file])
    except ConnectionError as exc:
        raise DeviceError(endpoint.device_key, f"at {endpoint.address} does not answer: {exc}") from None
    except (ValueError, FormatUnavailable) as exc:
        raise UserError("model", f"{file.arch}: {exc}") from None
    return evaluation


def _shapes(input_shape: InputShape) -> dict[str, tuple[int, ...]]:
    """``{input name: shape}`` ("" names a model's only input) from a shape or a mapping of them."""
    named = input_shape if isinstance(input_shape, Mapping) else {"": input_shape} if input_shape else {}
    try:
        shapes = {name: tuple(int(d) for d in shape) for name, shape in named.items()}
    except (TypeError, ValueError):
        raise UserError("input_shape", f"must be whole numbers such as (1, 3, 224, 224), got {input_shape!r}") \
            from None
    if any(d < 1 for shape in shapes.values() for d in shape):
        raise UserError("input_shape", f"must be positive dimensions, got {input_shape!r}")
    return shapes


def _is_torch(model: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def _bars(counts: Mapping[str, Mapping[str, int]], devices: Sequence[str], unit: str = "model") -> dict:
    from tqdm.auto import tqdm

    return {key: tqdm(total=sum(counts.get(key, {}).values()), initial=counts.get(key, {}).get("done", 0),
                      desc=key, unit=unit, position=k) for k, key in enumerate(devices)}


def _advancer(bars: Mapping[str, Any]):
    lock = threading.Lock()

    def advance(key: str, _arch_id: str) -> None:
        with lock:
            if key in bars:
                bars[key].update(1)

    return advance
