"""The per-op profile's and the output check's cost in a short form (full form: python -m benchmarks.op_profile)."""

import pytest

from benchmarks.op_profile import RUNTIMES, run


@pytest.mark.parametrize("detail", sorted(RUNTIMES))
def test_measurement_detail_benchmark_short_form(detail: str) -> None:
    r = run(models=2, count=20, detail=detail)
    assert set(r) == set(RUNTIMES[detail])
    assert all(figures["latency"] > 0 and figures["wall"] > 0 for figures in r.values())
