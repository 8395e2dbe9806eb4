"""The one door to measure (``Evaluator.send`` / ``fetch_all``) and the searches' ask and tell.

The measurer here records what it is sent and answers from the CG: it stands in for the fleet, which the
searches' own tests drive with real agents."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hwnas.controller.fleet import Outcome
from hwnas.controller.search.algorithms import make_algorithm
from hwnas.controller.search.evaluator import Evaluator
from hwnas.controller.search.objectives import OBJECTIVES, get_objectives
from hwnas.controller.search.problem import SearchProblem, drive
from hwnas.controller.spaces import Candidate, get_space
from hwnas.controller.store import MeasurementRecord


class RecordingMeasurer:
    """Answers each candidate's latency as its MACs / 1e6 ms (a network named 'bad' fails), and records the
    order of calls, so a test sees that ``send`` returns before anything is fetched."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self._sent: list[Candidate] = []

    def send(self, candidates):
        self.calls.append(("send", len(candidates)))
        self._sent += candidates

    def fetch_all(self):
        sent, self._sent = self._sent, []
        self.calls.append(("fetch_all", len(sent)))
        return [Outcome(c.arch_id, None, f"{c.arch} failed") if c.arch.startswith("bad") else
                Outcome(c.arch_id, MeasurementRecord(job_key=c.arch_id, arch_id=c.arch_id, device_key="d", backend="b",
                                          protocol="p", protocol_params={}, batch_size=1, input_shape=[1],
                                          latency_ms=c.graph.macs() / 1e6, stats={}, agent_name="a",
                                          agent_version="1", started_unix_ns=0, finished_unix_ns=0), "")
                for c in sent]


def _candidates(n: int, seed: int = 0) -> list[Candidate]:
    space = get_space("nb201")
    rng = np.random.default_rng(seed)
    out: dict[str, Candidate] = {}
    while len(out) < n:
        x = space.sample(rng)
        if space.has_network(x):
            c = space.candidate(x)
            out.setdefault(c.arch_id, c)
    return list(out.values())


def test_send_is_asynchronous_a_network_is_evaluated_once_and_the_budget_counts_networks() -> None:
    measurer = RecordingMeasurer()
    batches = []
    evaluator = Evaluator(None, get_objectives("latency,flops"), 3, measurer, None, batches.append)
    a, b, c, d = _candidates(4)
    renamed_a = dataclasses.replace(a, arch="a under another name")
    evaluator.send([a, b, renamed_a])
    evaluator.send([a, c, d])  # a again: no second measurement; d: over the budget of 3
    assert measurer.calls == [("send", 2), ("send", 1)] and evaluator.remaining == 0
    got = evaluator.fetch_all()
    assert measurer.calls[-1] == ("fetch_all", 3)
    assert [e.candidate for e in got[:2]] == [a, b] and got[2] is got[0] and got[3] is got[0] and got[5] is None
    assert got[0].values == {"latency": a.graph.macs() / 1e6, "flops": float(a.graph.macs())}
    assert [e.index for e in evaluator.history] == [1, 2, 3] and batches == [evaluator.history]
    assert evaluator.evaluate_candidates([b]) == [got[1]] and len(measurer.calls) == 3  # known: not measured again


def test_a_failed_measurement_is_an_evaluation_with_its_error_and_no_values() -> None:
    evaluator = Evaluator(None, [OBJECTIVES["latency"]], None, RecordingMeasurer(), None)
    good, bad = _candidates(2, seed=1)
    first, second = evaluator.evaluate_candidates([good, dataclasses.replace(bad, arch="bad one")])
    assert first.ok and not second.ok and second.error == "bad one failed" and second.values == {}
    assert evaluator.successful() == [first] and second.outcome.record is None


def test_every_caller_reports_failures_alike(capsys: pytest.CaptureFixture) -> None:
    """Search, AutoGO, AutoBuild build and predictor layers print the evaluator's causes through one function."""
    from hwnas.controller.cli.common import report_failures

    evaluator = Evaluator(None, [OBJECTIVES["latency"]], None, RecordingMeasurer(), None)
    assert not report_failures("x", evaluator)
    a, b, c = _candidates(3, seed=2)
    evaluator.evaluate_candidates([a, dataclasses.replace(b, arch="bad b"), dataclasses.replace(c, arch="bad c")])
    assert evaluator.failure_causes() == [("bad b failed", 1), ("bad c failed", 1)]
    assert report_failures("x", evaluator)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "hwnas x: of 3 evaluations, 2 failed; causes, most frequent first:"
    assert [line.split(" x ", 1)[1] for line in err[1:]] == ["bad b failed", "bad c failed"]


def test_measured_objectives_without_a_measurer_are_refused() -> None:
    with pytest.raises(ValueError, match="measured objectives need agents"):
        Evaluator(None, [OBJECTIVES["latency"]], 5, None, None)


@pytest.mark.parametrize("algo", ["random", "nsga2", "linas"])
def test_a_search_paused_between_asks_ends_where_an_unpaused_one_does_and_never_evaluates_itself(algo) -> None:
    space = get_space("nb201")
    settings = {"population": 8, "inner_evals": 200}

    def history(pause_after: int | None) -> list[str]:
        evaluator = Evaluator(space, get_objectives("flops,params"), 30, None, None)
        calls = []
        evaluate = evaluator.evaluate
        evaluator.evaluate = lambda encodings: (calls.append(len(encodings)), evaluate(encodings))[1]
        problem = SearchProblem(space, evaluator, seed=3)
        algorithm = make_algorithm(algo, settings)
        if pause_after is None:
            drive(algorithm, problem)
        else:
            algorithm.setup(problem)
            asks = 0
            while (ask := algorithm.ask()) is not None:
                if asks == pause_after:  # the driver holds the search here: nothing moves until it tells
                    assert algorithm.ask() is ask
                evaluations = problem.evaluate(ask)
                driven = (len(calls), len(evaluator.history))
                algorithm.tell(evaluations)  # the algorithm reads them and asks again, evaluating nothing
                assert (len(calls), len(evaluator.history)) == driven
                asks += 1
        assert len(evaluator.history) == 30
        return [e.arch_id for e in evaluator.history]

    assert history(pause_after=1) == history(pause_after=None)


def test_a_wrong_answer_is_a_failed_evaluation_not_a_figure() -> None:
    """#37: a record whose output check failed is stored, but a search does not take its latency."""
    from hwnas.controller.fleet import Outcome
    from hwnas.controller.search.measure import value_of
    from hwnas.controller.store import JobSpec, MeasurementRecord

    from .test_store import ARCH, record

    job = JobSpec(campaign="c", arch_id=ARCH.arch_id, device_key="k")
    good = record(job)
    wrong = MeasurementRecord(**{**vars(good), "output_check_status": "wrong_answer", "output_max_abs_error": 2.5})
    assert value_of(Outcome(job.job_key, good), "latency_ms", "latency")[0] == good.latency_ms
    value, why = value_of(Outcome(job.job_key, wrong), "latency_ms", "latency")
    assert value is None and "wrong answer (max abs error 2.5)" in why


def test_a_model_file_is_measured_once_by_its_bytes_and_only_by_measured_objectives() -> None:
    """``hwnas profile``'s candidates: no graph, so no static objective; the same bytes under another name are
    the same model."""
    from hwnas.controller.errors import SettingError
    from hwnas.controller.spaces import ModelFile

    class FileMeasurer:
        def __init__(self) -> None:
            self.sent: list[ModelFile] = []

        def send(self, candidates):
            self.sent += candidates

        def fetch_all(self):
            sent, self.sent = self.sent, []
            return [Outcome(c.arch_id, MeasurementRecord(
                job_key=c.arch_id, arch_id=c.arch_id, device_key="d", backend="b", protocol="p", protocol_params={},
                batch_size=1, input_shape=[1], latency_ms=float(len(c.data)), stats={}, agent_name="a",
                agent_version="1", started_unix_ns=0, finished_unix_ns=0)) for c in sent]

    measurer = FileMeasurer()
    evaluator = Evaluator(None, [OBJECTIVES["latency"]], None, measurer, None)
    a, same_bytes, other = ModelFile("a.onnx", b"abc", "onnx"), ModelFile("b.onnx", b"abc", "onnx"), \
        ModelFile("c.tflite", b"abcd", "tflite")
    assert a.arch_id == same_bytes.arch_id != other.arch_id
    first, again, third = evaluator.evaluate_candidates([a, same_bytes, other])
    assert first is again and first.values == {"latency": 3.0} and third.values == {"latency": 4.0}
    assert len(evaluator.history) == 2
    with pytest.raises(SettingError, match="objectives.*flops need a network's graph.*d.onnx"):
        Evaluator(None, get_objectives("latency,flops"), None, measurer, None).send([ModelFile("d.onnx", b"x", "onnx")])
