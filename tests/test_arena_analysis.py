"""Arena analysis on hand-computed battle sets: win rates with ties half, the tie-adjusted SE,
Wald and participant-clustered bootstrap intervals, the sign test, Bradley–Terry ratings on the
Elo scale, and `wildsim arena analyze` end to end."""

from __future__ import annotations

import json
import math

import pytest

from arena.analyze import analyze_study, main, read_battles
from arena.ratings import (Battle, bradley_terry, bradley_terry_logits, clustered_bootstrap_interval,
                           elo_scale, oriented_pairs, pair_win_rate, win_counts)
from corpora.records import DataError
from eval.stats import bootstrap_interval

ELO_LN2 = 400 * math.log10(2)  # 120.412 rating points = odds 2:1


def _battles(spec):
    """[(a, b, winner, judge)] -> Battles."""
    return [Battle(a, b, w, j) for a, b, w, j in spec]


# x beats y 3 times, loses once, 2 ties (one both-bad); judges p1..p3
SMALL = _battles([("x", "y", "model_a", "p1"), ("x", "y", "model_a", "p1"),
                  ("x", "y", "tie", "p2"), ("y", "x", "model_b", "p2"),
                  ("x", "y", "model_b", "p3"), ("x", "y", "tie (bothbad)", "p3")])


def test_pair_win_rate_by_hand():
    (pair, scored), = oriented_pairs(SMALL).items()
    assert pair == ("x", "y")  # the flipped battle (y, x, model_b) counts as a win for x
    wr = pair_win_rate(scored, n_boot=200)
    assert (wr.wins, wr.ties, wr.losses) == (3, 2, 1)
    assert wr.rate == pytest.approx(4 / 6)
    # var(s) = (w + t/4)/n − p² = 3.5/6 − 4/9 = 0.138889; SE = sqrt(var/6)
    se = math.sqrt((3.5 / 6 - 4 / 9) / 6)
    assert wr.se == pytest.approx(se) and se == pytest.approx(0.152145, abs=1e-6)
    assert wr.wald.low == pytest.approx(4 / 6 - 1.959964 * se, abs=1e-6)
    assert wr.wald.high == pytest.approx(4 / 6 + 1.959964 * se, abs=1e-6)
    assert wr.sign_test_p == pytest.approx(2 * (1 + 4) / 16)  # 3 wins vs 1 loss


def test_clustered_bootstrap_pools_participants_battles():
    # two participants: [1, 1, 1] and [0]; a resample draws both (prob 1/2, pooled 3/4),
    # the first twice (1/4, rate 1) or the second twice (1/4, rate 0): the 40%–60% quantiles
    # are 3/4, where a mean of participant means would give 1/2
    iv = clustered_bootstrap_interval([[1, 1, 1], [0]], level=0.2, n_boot=4000, seed=1)
    assert iv.low == pytest.approx(0.75) and iv.high == pytest.approx(0.75)
    assert clustered_bootstrap_interval([[1, 0], [0.5, 0.5]], n_boot=300).low == 0.5


def test_clustered_interval_is_wider_when_participants_agree_with_themselves():
    scored = [(f"p{j}", 1.0 if j < 5 else 0.0) for j in range(10) for _ in range(4)]
    clustered = pair_win_rate(scored, n_boot=2000, seed=0).bootstrap
    iid = bootstrap_interval([s for _, s in scored], n_boot=2000, seed=0)
    assert clustered.high - clustered.low > 1.4 * (iid.high - iid.low)


def test_bradley_terry_two_models_by_hand():
    # x scores 3 wins + 2 half-ties = 4 of 6: odds 2 -> 120.41 points apart, centred on 1000
    ratings = elo_scale(bradley_terry_logits(win_counts(SMALL, ["x", "y"])))
    assert ratings[0] == pytest.approx(1000 + ELO_LN2 / 2, abs=1e-4)
    assert ratings[1] == pytest.approx(1000 - ELO_LN2 / 2, abs=1e-4)


def test_bradley_terry_three_models_by_hand():
    # strengths 4 : 2 : 1 fit these counts exactly (a beats b 2:1, b beats c 2:1, a beats c 4:1)
    spec = ([("a", "b", "model_a", "j")] * 2 + [("a", "b", "model_b", "j")]
            + [("b", "c", "model_a", "k")] * 2 + [("b", "c", "model_b", "k")]
            + [("a", "c", "model_a", "l")] * 4 + [("a", "c", "model_b", "l")])
    bt = bradley_terry(_battles(spec), n_boot=50)
    got = {m: r["rating"] for m, r in bt["ratings"].items()}
    assert got == pytest.approx({"a": 1000 + ELO_LN2, "b": 1000.0, "c": 1000 - ELO_LN2}, abs=1e-3)
    assert sum(got.values()) / 3 == pytest.approx(1000)
    for r in bt["ratings"].values():
        assert r["ci_low"] <= r["rating"] <= r["ci_high"]
    assert bt["separated"] == []


def test_a_model_that_always_wins_is_flagged():
    bt = bradley_terry(_battles([("a", "b", "model_a", "j")] * 3), n_boot=20)
    assert bt["separated"] == ["a", "b"]


def test_turn_and_final_votes_are_analysed_apart():
    battles = SMALL + [Battle("x", "y", "model_b", "p1", 2, "final")]
    result = analyze_study(battles, n_boot=100)
    assert result["battles"] == 6 and result["final"]["battles"] == 1
    assert result["final"]["pairs"][0]["win_rate_a"] == 0.0


def test_analyze_cli_writes_json_report_and_plots(tmp_path, capsys):
    path = tmp_path / "battles.jsonl"
    with open(path, "w") as f:
        for b in SMALL:
            f.write(json.dumps({"model_a": b.model_a, "model_b": b.model_b, "winner": b.winner,
                                "judge": b.judge, "turn": 1}) + "\n")
    assert main(["--battles", str(path), "--out", str(tmp_path / "out"), "--n-boot", "200"]) == 0
    result = json.loads((tmp_path / "out" / "arena.json").read_text())
    (pair,) = result["pairs"]
    assert (pair["model_a"], pair["wins_a"], pair["ties"], pair["wins_b"]) == ("x", 3, 2, 1)
    assert pair["win_rate_a"] == pytest.approx(4 / 6) and pair["judges"] == 3
    assert result["bradley_terry"]["x"]["rating"] == pytest.approx(1000 + ELO_LN2 / 2, abs=1e-3)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| x | y | 6 | 3 | 2 | 1 | 0.667 | 0.152 |" in report
    for png in ("winrate_heatmap.png", "ratings.png"):
        assert (tmp_path / "out" / png).read_bytes()[:4] == b"\x89PNG"


def test_bad_battle_lines_name_the_line(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text('{"model_a": "x", "model_b": "y", "winner": "model_a", "judge": "p"}\n'
                    '{"model_a": "x", "model_b": "y", "winner": "draw", "judge": "p"}\n')
    with pytest.raises(DataError, match=r"b.jsonl:2: winner 'draw'"):
        read_battles(path)
