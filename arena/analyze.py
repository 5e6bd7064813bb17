"""`wildsim arena analyze`: win rates, sign tests and Bradley–Terry ratings of a study.

    wildsim arena analyze --db sqlite:///runs/arena/arena.db --out runs/arena/analysis
    wildsim arena analyze --battles battles.jsonl --out DIR

Input: the study database, or FastChat-style battles (one JSON object per line with model_a,
model_b, winner ∈ {model_a, model_b, tie, tie (bothbad)}, judge, turn; an optional `phase` of
"turn" (default) or "final"). Output DIR/arena.json, DIR/report.md, DIR/winrate_heatmap.png,
DIR/ratings.png. Per-turn votes and final preferences are analysed separately (arena.json's top
level is the per-turn analysis; `final` holds the same for final preferences). The statistics
are defined in arena/ratings.py and eval/stats.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

from arena.ratings import WINNERS, Battle, bradley_terry, oriented_pairs, pair_win_rate
from corpora.records import DataError


def parse_battle(data: Any, where: str) -> Battle:
    """One battle record, checked; DataError names the line and the field."""
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(data).__name__}")
    for name in ("model_a", "model_b", "winner", "judge"):
        if not isinstance(data.get(name), str) or not data.get(name):
            raise DataError(f"{where}: field {name!r} must be a non-empty string")
    if data["winner"] not in WINNERS:
        raise DataError(f"{where}: winner {data['winner']!r} is not one of {list(WINNERS)}")
    if data["model_a"] == data["model_b"]:
        raise DataError(f"{where}: model_a and model_b are both {data['model_a']!r}")
    phase = data.get("phase", "turn")
    if phase not in ("turn", "final"):
        raise DataError(f"{where}: phase {phase!r} must be 'turn' or 'final'")
    return Battle(data["model_a"], data["model_b"], data["winner"], data["judge"],
                  data.get("turn", 0), phase)


def read_battles(path: str | Path) -> list[Battle]:
    """Battles from a JSONL file (blank lines skipped; any bad line is an error naming it)."""
    battles = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{number}: not JSON ({err})") from None
            battles.append(parse_battle(data, f"{path}:{number}"))
    return battles


def battles_from_url(url: str) -> list[Battle]:
    """Battles of the study database at `url`."""
    from arena.db import open_database, session_factory
    from arena.export import battles_from_db
    with session_factory(open_database(url))() as s:
        return [parse_battle(b, f"database vote {i}") for i, b in enumerate(battles_from_db(s))]


def analyze(battles: Sequence[Battle], level: float = 0.95, n_boot: int = 2000,
            seed: int = 0) -> dict[str, Any]:
    """Per-pair win rates and Bradley–Terry ratings of one set of battles."""
    pairs = []
    for (a, b), scored in oriented_pairs(battles).items():
        wr = pair_win_rate(scored, level, n_boot, seed)
        pairs.append({"model_a": a, "model_b": b, "battles": wr.n, "wins_a": wr.wins,
                      "ties": wr.ties, "wins_b": wr.losses, "win_rate_a": wr.rate, "se": wr.se,
                      "wald": [wr.wald.low, wr.wald.high],
                      "bootstrap": [wr.bootstrap.low, wr.bootstrap.high],
                      "judges": len({j for j, _ in scored}), "sign_test_p": wr.sign_test_p})
    bt = bradley_terry(battles, level, max(n_boot // 4, 100), seed)
    return {"battles": len(battles), "judges": len({b.judge for b in battles}), "pairs": pairs,
            "bradley_terry": bt["ratings"], "bradley_terry_separated": bt["separated"]}


def analyze_study(battles: Sequence[Battle], level: float = 0.95, n_boot: int = 2000,
                  seed: int = 0) -> dict[str, Any]:
    """arena.json: the per-turn analysis at the top level, final preferences under `final`."""
    turns = [b for b in battles if b.phase == "turn"]
    finals = [b for b in battles if b.phase == "final"]
    result = analyze(turns, level, n_boot, seed)
    result["final"] = analyze(finals, level, n_boot, seed)
    result["settings"] = {"level": level, "n_boot": n_boot, "seed": seed,
                          "ties": "half a win to each side",
                          "bootstrap": "clustered by judge (participant)",
                          "elo": "400/ln10 points per logit, mean 1000"}
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wildsim arena analyze", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", help="SQLAlchemy URL of the study database")
    src.add_argument("--battles", help="FastChat-style battles JSONL")
    p.add_argument("--out", required=True, help="folder for arena.json, report.md and the PNGs")
    p.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from arena.report import write_report
    try:
        battles = battles_from_url(args.db) if args.db else read_battles(args.battles)
    except (DataError, OSError) as err:
        raise SystemExit(f"wildsim arena analyze: {err}")
    result = analyze_study(battles, args.level, args.n_boot, args.seed)
    out = write_report(result, args.out)
    print(f"{len(battles)} battles ({result['battles']} per-turn, {result['final']['battles']} "
          f"final) from {result['judges']} participants -> {out}/arena.json, report.md, PNGs")
    return 0
