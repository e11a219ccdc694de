"""The auto-mask benchmark's summary: the pooled figure weighs cases by their damage, and runs
over parts of a set combine without counting a case twice."""
import json

import numpy as np
import pytest

from benchmarks import auto_mask


def _row(image: str, fraction: float, ours: float, ns: float) -> dict:
    return {"set": "s", "image": image, "damaged_fraction": fraction,
            "ours_auto_mask": {"psnr_damaged": ours}, "navier_stokes_true_mask": {"psnr_damaged": ns}}


def test_pooled_psnr_weighs_each_case_by_its_damaged_pixels():
    rows = [_row("1", 0.01, 20.0, 30.0), _row("1-grey", 0.03, 30.0, 30.0)]
    summary = auto_mask.summarise(rows, ["ours_auto_mask", "navier_stokes_true_mask"], by_colour=True)
    whole, colour, grey = summary
    assert whole["psnr_damaged"]["ours_auto_mask"] == pytest.approx(25.0)
    expected = -10 * np.log10((0.01 * 1e-2 + 0.03 * 1e-3) / 0.04)  # squared errors 1e-2 and 1e-3
    assert whole["psnr_damaged_pooled"]["ours_auto_mask"] == pytest.approx(expected)
    assert whole["psnr_damaged_pooled"]["navier_stokes_true_mask"] == pytest.approx(30.0)
    assert whole["auto_wins_vs_ns"] == 1
    assert (colour["set"], colour["images"], grey["set"], grey["images"]) == ("s colour", 1, "s grey", 1)


def test_combining_runs_refuses_a_case_measured_twice(tmp_path, capsys):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"rows": [_row("1", 0.01, 20.0, 19.0)]}))
    second.write_text(json.dumps({"rows": [_row("2", 0.01, 21.0, 22.0)]}))
    auto_mask.combine([str(first), str(second)])
    assert "| s | 2 | 20.50" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="s/1 is in an earlier file too"):
        auto_mask.combine([str(first), str(first)])


def test_the_pooled_gap_comes_with_a_bootstrap_interval_over_the_cases():
    same_gap = [_row(str(i), 0.01 * (i + 1), 20.0 + i, 19.0 + i) for i in range(5)]
    steady = auto_mask.pooled_gap(same_gap)
    assert steady["gap"] == pytest.approx(1.0) and steady["ci95"] == pytest.approx([1.0, 1.0])
    mixed = [_row("1", 0.02, 18.0, 20.0), _row("2", 0.01, 26.0, 24.0), _row("3", 0.02, 22.0, 21.5), _row("4", 0.01, 25.0, 25.0)]
    spread = auto_mask.pooled_gap(mixed)
    assert spread["ci95"][0] < spread["gap"] < spread["ci95"][1]
    assert spread == auto_mask.pooled_gap(mixed)  # seeded: the same rows give the same interval
    whole = auto_mask.summarise(mixed, ["ours_auto_mask", "navier_stokes_true_mask"], by_colour=False)[0]
    assert whole["auto_minus_ns_pooled"] == spread
    assert whole["auto_minus_ns_pooled"]["gap"] == pytest.approx(
        whole["psnr_damaged_pooled"]["ours_auto_mask"] - whole["psnr_damaged_pooled"]["navier_stokes_true_mask"])
