"""The families benchmark in a short form (full form: python -m benchmarks.families)."""

import sys

from benchmarks import families


def test_families_benchmark_short_form(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["families", "--seeds", "1", "--kinds", "ridge", "--train", "200",
                                      "--fbnet-columns", "lat_ms_raspi4", "--sizes", "50"])
    families.main()
    out = capsys.readouterr().out
    fbnet_row = next(line for line in out.splitlines() if line.startswith("| lat_ms_raspi4 |"))
    assert float(fbnet_row.split("|")[2].split("±")[0]) > 0.9  # an additive column: ridge ranks it well
    assert "NAS-Bench-Macro CIFAR-10 mean_acc (3969 networks)" in out
    assert "OFA-MobileNetV3 w1.0 ImageNet top1_acc (DyNAS-T, search-biased) (2162 networks)" in out
    assert out.count("| 50 | ") == 2
