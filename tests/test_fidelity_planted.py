"""End-to-end fidelity on planted behaviours: eval.fidelity.main on small JSONL files, then the
written fidelity.json is checked for what the method must show and recomputed by hand."""

from __future__ import annotations

import json
import math

import pytest

from eval.fidelity import main, read_user_conversations, FidelityInputError
from tests.fidelity_fixtures import write_set

REAL = ["terse", "polite", "shouty"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("fid")
    write_set(d / "real.jsonl", REAL, 300, seed=1)
    write_set(d / "same.jsonl", REAL, 300, seed=2)
    write_set(d / "lacks.jsonl", ["terse", "polite"], 300, seed=3)
    write_set(d / "invents.jsonl", REAL + ["code"], 300, seed=4)
    write_set(d / "only_shouty.jsonl", ["shouty"], 150, seed=5)
    return d


def _run(data, out, representation, sims, extra=()):
    argv = ["--real", str(data / "real.jsonl"), "--representation", representation,
            "--k", "30", "--seed", "7", "--bootstrap", "200", "--out", str(out), *extra]
    for name in sims:
        argv += ["--simulated", f"{name}={data / (name + '.jsonl')}"]
    assert main(argv) == 0
    return json.loads((out / "fidelity.json").read_text())


@pytest.fixture(scope="module")
def style_result(data, tmp_path_factory):
    return _run(data, tmp_path_factory.mktemp("out_style"), "style",
                ["same", "lacks", "invents", "only_shouty"])


def _by_hand(counts_real, counts_sim):
    """Forward KL, backward KL and JS straight from the definitions, in plain Python."""
    k = len(counts_real)
    nr, ns = sum(counts_real), sum(counts_sim)
    p = [(c + 1 / k) / (nr + 1) for c in counts_real]
    q = [(c + 1 / k) / (ns + 1) for c in counts_sim]
    fwd = sum(a * math.log(a / b) for a, b in zip(p, q))
    bwd = sum(b * math.log(b / a) for a, b in zip(p, q))
    pr, qr = [c / nr for c in counts_real], [c / ns for c in counts_sim]
    m = [(a + b) / 2 for a, b in zip(pr, qr)]
    half = lambda x: sum(a * math.log(a / c) for a, c in zip(x, m) if a > 0)  # noqa: E731
    return fwd, bwd, 0.5 * half(pr) + 0.5 * half(qr)


def test_records_what_was_run(style_result):
    r = style_result
    assert r["representation"] == "style" and r["seed"] == 7 and r["k_requested"] == 30
    assert r["k"] == 30 and r["n"]["real"] == 600 and r["n"]["only_shouty"] == 300
    assert r["command"].startswith("wildsim eval fidelity --real")
    assert set(r["simulators"]) == {"same", "lacks", "invents", "only_shouty"}


def test_divergences_recomputed_from_reported_counts(style_result):
    for name, sim in style_result["simulators"].items():
        assert len(sim["counts_real"]) == style_result["k"]
        fwd, bwd, js = _by_hand(sim["counts_real"], sim["counts_sim"])
        assert sim["forward_kl"] == pytest.approx(fwd, rel=1e-9), name
        assert sim["backward_kl"] == pytest.approx(bwd, rel=1e-9), name
        assert sim["js"] == pytest.approx(js, rel=1e-9, abs=1e-12), name
        assert 0 <= sim["js"] <= math.log(2)
    floor = style_result["floor"]
    assert floor["forward_kl"] == pytest.approx(_by_hand(floor["counts_a"], floor["counts_b"])[0])


def test_same_behaviours_sit_at_the_floor(style_result):
    same, floor = style_result["simulators"]["same"], style_result["floor"]
    for key in ("forward_kl", "backward_kl", "js"):
        assert same[key] <= floor["ci"][key][1], key


def test_missing_behaviour_shows_in_forward_kl(style_result):
    sims = style_result["simulators"]
    lacks, same = sims["lacks"], sims["same"]
    assert lacks["forward_kl"] > 10 * same["forward_kl"]
    assert lacks["forward_kl"] > 2 * lacks["backward_kl"]
    assert style_result["clusters"]["lacks"]["missed"] >= 1


def test_invented_behaviour_shows_in_backward_kl(style_result):
    invents = style_result["simulators"]["invents"]
    assert invents["backward_kl"] > 10 * style_result["simulators"]["same"]["backward_kl"]
    assert invents["backward_kl"] > 2 * invents["forward_kl"]
    rows = style_result["clusters"]["invents"]["rows"]
    hallucinated = [r for r in rows if r["label"] == "hallucinated"]
    assert hallucinated and hallucinated[0]["count_real"] == 0
    assert any("(" in e or ";" in e for e in hallucinated[0]["examples"])  # the pasted code


def test_pairwise_js_is_symmetric(style_result):
    pj = style_result["pairwise_js"]
    assert pj["same"]["same"] == 0.0
    assert pj["lacks"]["invents"] == pytest.approx(pj["invents"]["lacks"])


def test_report_and_plots_written(style_result, tmp_path_factory):
    out = tmp_path_factory.getbasetemp()
    reports = list(out.glob("out_style*/report.md"))
    assert reports and "Optimal mixture" in reports[0].read_text()
    assert (reports[0].parent / "divergences.png").stat().st_size > 5000
    assert (reports[0].parent / "pairwise_js.png").exists()


def test_complementary_mixture_beats_both(data, tmp_path):
    r = _run(data, tmp_path, "style", ["lacks", "only_shouty"])
    mix, sims = r["mixture"], r["simulators"]
    assert mix["forward_kl"] < 0.5 * min(s["forward_kl"] for s in sims.values())
    assert mix["weights"]["lacks"] == pytest.approx(2 / 3, abs=0.1)
    assert sum(mix["weights"].values()) == pytest.approx(1.0)


def test_utterance_embeddings_end_to_end(tmp_path):
    for name, behaviours, seed in (("real", REAL, 11), ("same", REAL, 12), ("lacks", REAL[:2], 13)):
        write_set(tmp_path / f"{name}.jsonl", behaviours, 120, seed=seed, turns=1)
    r = _run(tmp_path, tmp_path / "out", "utterances", ["same", "lacks"], ("--k", "12"))
    assert r["embedder"] == "all-MiniLM-L6-v2"
    sims = r["simulators"]
    assert sims["lacks"]["forward_kl"] > 5 * sims["same"]["forward_kl"]
    fwd, bwd, js = _by_hand(sims["lacks"]["counts_real"], sims["lacks"]["counts_sim"])
    assert sims["lacks"]["forward_kl"] == pytest.approx(fwd) and sims["lacks"]["js"] == pytest.approx(js)


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"conversation": [{"role": "user", "content": "hi"}]}\n{"conversation": [{"role": "user"}]}\n')
    with pytest.raises(FidelityInputError, match=r"bad.jsonl:2: conversation\[0\] needs `role` and `content`"):
        read_user_conversations(bad)
    assert main(["--real", str(bad), "--simulated", f"x={bad}", "--representation", "style",
                 "--out", str(tmp_path / "o")]) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--real", str(bad), "--simulated", "no-equals-sign"])
