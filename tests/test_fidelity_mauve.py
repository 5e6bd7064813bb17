"""MAUVE from cluster histograms against hand-computed values: identical histograms, disjoint
supports (closed form on a dense grid), a 2-bin curve with one λ worked by hand, and the reference
procedure (sort the curve's points by each coordinate, average the two areas) on random
histograms; against the `mauve-text` package itself when it is installed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from eval.divergence import (MAUVE_GRID, MAUVE_SCALING, area_under_curve, bootstrap_divergences,
                             divergence_curve, divergences, mauve, mauve_counts, mixture_grid)


def test_defaults_follow_the_reference_implementation():
    assert MAUVE_SCALING == 5.0 and MAUVE_GRID == 25
    grid = mixture_grid()
    assert grid.shape == (25,) and grid[0] == pytest.approx(1e-6) and grid[-1] == pytest.approx(1 - 1e-6)


def test_identical_histograms_score_one():
    for p in ([0.2, 0.3, 0.5], [1.0, 0.0], [0.25] * 4):
        assert mauve(p, p) == pytest.approx(1.0, abs=1e-12)
    assert mauve_counts([3, 0, 7], [30, 0, 70]) == pytest.approx(1.0, abs=1e-12)


def test_disjoint_supports_score_near_zero_and_match_the_closed_form():
    # p = (1, 0), q = (0, 1): KL(q‖r) = −ln(1 − λ), KL(p‖r) = −ln λ, so the curve is
    # x = (1 − λ)^c, y = λ^c, i.e. x^(1/c) + y^(1/c) = 1, whose area is
    # ∫₀¹ (1 − x^(1/c))^c dx = c·B(c, c + 1) = c·Γ(c)Γ(c+1)/Γ(2c+1) = 1/252 for c = 5.
    exact = 5 * math.gamma(5) * math.gamma(6) / math.gamma(11)
    assert exact == pytest.approx(1 / 252)
    assert mauve([1, 0], [0, 1], points=20001) == pytest.approx(exact, rel=1e-5)
    # the default 25-point polyline lies just above the convex curve
    coarse = mauve([1, 0], [0, 1])
    assert exact < coarse < 0.01


def test_two_bins_one_lambda_by_hand():
    # p = (½, ½), q = (1, 0), λ = ½: r = (¾, ¼); KL(q‖r) = ln(4/3), KL(p‖r) = ½ ln(2/3) + ½ ln 2
    # = ½ ln(4/3). One point (x, y) between (1, 0) and (0, 1) encloses the area
    # ½(1 − x)·y + ½x(y + 1) = (x + y) / 2.
    curve = divergence_curve([0.5, 0.5], [1.0, 0.0], [0.5], scaling=1.0)
    x, y = 0.75, math.sqrt(0.75)
    assert np.allclose(curve, [[1, 0], [x, y], [0, 1]], atol=1e-12)
    assert area_under_curve(curve) == pytest.approx(3 / 8 + math.sqrt(3) / 4, abs=1e-12)
    c5 = divergence_curve([0.5, 0.5], [1.0, 0.0], [0.5])
    assert area_under_curve(c5) == pytest.approx((0.75 ** 5 + 0.75 ** 2.5) / 2, abs=1e-12)


def _reference_procedure(p, q):
    """The reference's area: sort the points by x, then by y, trapezoid each way, average."""
    x, y = divergence_curve(p, q).T
    by_x, by_y = np.argsort(x), np.argsort(y)
    return 0.5 * (np.trapezoid(y[by_x], x[by_x]) + np.trapezoid(x[by_y], y[by_y]))


def test_matches_the_reference_procedure_on_random_histograms():
    rng = np.random.default_rng(0)
    for _ in range(50):
        k = int(rng.integers(2, 200))
        p, q = rng.dirichlet(np.ones(k) * 0.3), rng.dirichlet(np.ones(k) * 0.3)
        value = mauve(p, q)
        assert 0 < value < 1
        assert value == pytest.approx(_reference_procedure(p, q), abs=1e-12)
        assert value == pytest.approx(mauve(q, p), abs=1e-12)   # symmetric


def test_matches_the_mauve_text_package_when_installed():
    ref = pytest.importorskip("mauve.compute_mauve")
    rng = np.random.default_rng(1)
    for _ in range(20):
        k = int(rng.integers(2, 100))
        p, q = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))
        curve = ref.get_divergence_curve_for_multinomials(p, q, mixture_grid(), MAUVE_SCALING)
        assert np.allclose(curve, divergence_curve(p, q), atol=1e-12)
        x, y = curve.T
        by_x, by_y = np.argsort(x), np.argsort(y)
        expected = 0.5 * (ref.compute_area_under_curve(x[by_x], y[by_x])
                          + ref.compute_area_under_curve(y[by_y], x[by_y]))
        assert mauve(p, q) == pytest.approx(expected, abs=1e-12)


def test_closer_histograms_score_higher():
    real = np.array([40, 30, 20, 10])
    assert mauve_counts(real, [38, 32, 19, 11]) > mauve_counts(real, [25, 25, 25, 25]) \
        > mauve_counts(real, [0, 0, 10, 90])


def test_divergences_and_bootstrap_carry_mauve():
    d = divergences([30, 20, 10], [20, 20, 20])
    assert d.mauve == pytest.approx(mauve_counts([30, 20, 10], [20, 20, 20]))
    assert set(d.as_dict()) == {"forward_kl", "backward_kl", "js", "mauve"}
    ci = bootstrap_divergences([300, 200, 100], [200, 200, 200], samples=200, seed=2)
    assert ci["mauve"].low <= d.mauve <= ci["mauve"].high <= 1.0


def test_bad_grids_are_rejected():
    with pytest.raises(ValueError):
        mixture_grid(0)
    with pytest.raises(ValueError, match="strictly between"):
        divergence_curve([0.5, 0.5], [1.0, 0.0], [0.0, 0.5])


def _mauve_by_hand(counts_real, counts_sim, c=5.0, m=25):
    """MAUVE in plain Python: the curve in λ order between (1, 0) and (0, 1), trapezoids."""
    nr, ns = sum(counts_real), sum(counts_sim)
    p, q = [x / nr for x in counts_real], [x / ns for x in counts_sim]
    points = [(1.0, 0.0)]
    for j in range(m):
        lam = 1e-6 + j * (1 - 2e-6) / (m - 1)
        r = [lam * a + (1 - lam) * b for a, b in zip(p, q)]
        kl_q = sum(b * math.log(b / t) for b, t in zip(q, r) if b > 0)
        kl_p = sum(a * math.log(a / t) for a, t in zip(p, r) if a > 0)
        points.append((math.exp(-c * kl_q), math.exp(-c * kl_p)))
    points.append((0.0, 1.0))
    return sum(0.5 * (y0 + y1) * (x0 - x1) for (x0, y0), (x1, y1) in zip(points, points[1:]))


def test_fidelity_run_reports_mauve_per_simulator_floor_and_report(tmp_path):
    from eval.fidelity import main
    from tests.fidelity_fixtures import write_set

    real = ["terse", "polite", "shouty"]
    write_set(tmp_path / "real.jsonl", real, 200, seed=1)
    write_set(tmp_path / "same.jsonl", real, 200, seed=2)
    write_set(tmp_path / "lacks.jsonl", ["terse"], 200, seed=3)
    out = tmp_path / "out"
    argv = ["--real", str(tmp_path / "real.jsonl"), "--representation", "style", "--k", "20",
            "--seed", "7", "--bootstrap", "100", "--out", str(out),
            "--simulated", f"same={tmp_path / 'same.jsonl'}",
            "--simulated", f"lacks={tmp_path / 'lacks.jsonl'}"]
    assert main(argv) == 0
    result = json.loads((out / "fidelity.json").read_text())
    assert result["mauve_settings"] == {"scaling": 5.0, "grid": 25}
    sims = result["simulators"]
    for name, sim in sims.items():
        assert {"forward_kl", "backward_kl", "js", "counts_real", "counts_sim"} <= set(sim)
        assert sim["mauve"] == pytest.approx(_mauve_by_hand(sim["counts_real"], sim["counts_sim"]),
                                             abs=1e-12), name
        assert len(sim["ci"]["mauve"]) == 2 and 0 < sim["ci"]["mauve"][0] <= sim["ci"]["mauve"][1] <= 1
    assert sims["same"]["mauve"] > 0.5 > sims["lacks"]["mauve"]
    floor = result["floor"]
    assert floor["mauve"] == pytest.approx(_mauve_by_hand(floor["counts_a"], floor["counts_b"]), abs=1e-12)
    assert 0 < result["mixture"]["mauve"] <= 1
    report = (out / "report.md").read_text()
    assert "MAUVE [CI]" in report
    row = next(line for line in report.splitlines() if line.startswith("| same |"))
    assert f"{sims['same']['mauve']:.4f} [" in row
    floor_row = next(line for line in report.splitlines() if line.startswith("| *floor"))
    assert f"{floor['mauve']:.4f} [" in floor_row
