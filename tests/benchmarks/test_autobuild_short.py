"""The AutoBuild benchmark in a short form (full form: python -m benchmarks.autobuild)."""

import sys

from benchmarks import autobuild


def test_autobuild_benchmark_short_form(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["autobuild", "--space", "nas-bench-macro", "--objective", "acc=table",
                                      "--objective", "params=table:params", "--train", "120", "--seeds", "1",
                                      "--set", "epochs=10"])
    autobuild.main()
    out = capsys.readouterr().out
    assert "| acc=table | 3969 | 120 |" in out and "| params=table:params | 3969 | 120 |" in out
