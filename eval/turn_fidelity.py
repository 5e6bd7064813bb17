"""`wildsim eval turn-fidelity`: replay real conversation prefixes through a simulator and compare
its next user turn with the real one.

    wildsim eval turn-fidelity --real data/test.jsonl --simulator sftuser --out runs/turnfid
    wildsim eval turn-fidelity --real data/test.jsonl --simulator roleplay2 \\
        --zoo configs/simulators.yaml --engine_override builtin:smollm2-135m-instruct --max_points 50

A replay point is a real prefix ending with an assistant turn; the real "next move" is the user's
next turn, or the end of the conversation when none follows. The simulator (simulators.zoo) gets
an Episode holding the prefix and answers with `reply` (batched). Metrics (all over the whole set
of points; "pairs" are the points where the real user continued and the simulator said something):

- wordlen_l1:   |mean word length(real) − mean word length(sim)|, words pooled over the pairs
- typo_l1:      |typo rate(real) − typo rate(sim)|, judged words pooled (eval.style)
- pos_js, punct_js, caps_js, sentiment_js, length_js: squared JS distance (= JS divergence,
  natural log, max ln 2) between the real and simulated distributions over the pairs of: coarse
  POS tags (words pooled), punctuation classes (marks pooled), capitalisation classes (words
  pooled), lexicon sentiment (one label per utterance), utterance length bins (one per utterance)
- embed_distance: mean over pairs of 1 − cos(MiniLM(real), MiniLM(sim))
- termination_f1: F1 of the simulator's terminate/continue decision against the real user's, with
  "terminate" as the positive class, over all points (null when neither side ever terminates)

`--protocol paper` computes the release's definitions instead (eval/turn_paper.py): every metric
per replayed turn, averaged within a conversation, then over conversations; signed sim − real
differences for length, word length and typo rate; spaCy universal POS, pyspellchecker typos,
32-character punctuation, 2-bin capitalisation and VADER sentiment (a stand-in for the release's
hub model, named sentiment_vader_js), squared JS in nats; termination F1 replaying each
conversation until the first predicted end. `--real wildbench:SOURCE` (e.g. wildbench:sample)
replays WildBench v2 conversations with the reference answer (`--reference`, default gpt-4) as the
last assistant turn, so the points are positions 2…N+1 and the last one is a real end.
`--wb_gaps FILE` (CSV or JSON of session_id → WB-Score/WB-Reward gap between two assistants) adds
the Spearman and Pearson correlations of each per-conversation metric with those gaps.
Writes OUT/turn_fidelity.json (with its protocol), OUT/replays.jsonl (one line per point),
OUT/per_session.csv (per-conversation metrics), OUT/turn_fidelity.png and OUT/config.yaml.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from corpora.types import Episode, Message, Task
from eval.divergence import js
from eval import style
from foundation.config import option, parse_config, save_config


# --- pure metrics -------------------------------------------------------------------------------
def pooled_mean_word_length(texts: Sequence[str]) -> float:
    """Characters per word over all words of all texts (0.0 without words)."""
    ws = [w for t in texts for w in style.words(t)]
    return sum(map(len, ws)) / len(ws) if ws else 0.0


def pooled_typo_rate(texts: Sequence[str], vocab: frozenset[str] | None = None) -> float:
    """Unknown judged words / judged words over all texts (0.0 when none is judged)."""
    bad = total = 0
    for t in texts:
        b, n = style.typo_count(t, vocab)
        bad, total = bad + b, total + n
    return bad / total if total else 0.0


def distribution(counts: Counter, classes: Sequence[str]) -> np.ndarray:
    """Counts over `classes` → probabilities (k,); all zero stays all zero."""
    v = np.array([counts.get(c, 0) for c in classes], dtype=np.float64)
    return v / v.sum() if v.sum() > 0 else v


def squared_js_distance(counts_a: Counter, counts_b: Counter, classes: Sequence[str]) -> float:
    """JS distance squared = JS divergence (natural log) between two categorical histograms;
    0.0 when both are empty, ln 2 when exactly one is."""
    p, q = distribution(counts_a, classes), distribution(counts_b, classes)
    if p.sum() == 0 and q.sum() == 0:
        return 0.0
    if p.sum() == 0 or q.sum() == 0:
        return float(np.log(2))
    return js(p, q)


def feature_counts(texts: Iterable[str]) -> dict[str, Counter]:
    """Pooled POS, punctuation, capitalisation, sentiment and length-bin counts of texts."""
    out = {"pos": Counter(), "punct": Counter(), "caps": Counter(), "sentiment": Counter(),
           "length": Counter()}
    for t in texts:
        out["pos"].update(style.pos_tags(t))
        out["punct"].update(style.punctuation(t))
        out["caps"].update(style.capitalisation(t))
        out["sentiment"][style.sentiment(t)] += 1
        out["length"][style.length_bin(t)] += 1
    return out


CLASSES = {"pos": style.POS_TAGS, "punct": style.PUNCT_CLASSES, "caps": style.CAP_CLASSES,
           "sentiment": style.SENTIMENTS, "length": style.LENGTH_CLASSES}


def termination_f1(real_ends: Sequence[bool], sim_ends: Sequence[bool]) -> float | None:
    """F1 with "terminate" positive: 2TP / (2TP + FP + FN); None when there is no positive on
    either side (F1 undefined)."""
    if len(real_ends) != len(sim_ends):
        raise ValueError("real_ends and sim_ends differ in length")
    tp = sum(r and s for r, s in zip(real_ends, sim_ends))
    fp = sum(s and not r for r, s in zip(real_ends, sim_ends))
    fn = sum(r and not s for r, s in zip(real_ends, sim_ends))
    return None if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 − cos between matching rows of a and b, (n, d) each → (n,)."""
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    return 1.0 - np.sum(a * b, axis=1) / np.maximum(na * nb, 1e-12)


@dataclass
class TurnMetrics:
    """The nine turn-level fidelity metrics (lower is closer, except termination_f1)."""

    wordlen_l1: float
    typo_l1: float
    pos_js: float
    punct_js: float
    caps_js: float
    sentiment_js: float
    length_js: float
    embed_distance: float | None
    termination_f1: float | None


def turn_metrics(real: Sequence[str], sim: Sequence[str], real_ends: Sequence[bool],
                 sim_ends: Sequence[bool], embed_distances: np.ndarray | None) -> TurnMetrics:
    """Metrics from the paired texts (real[i] ↔ sim[i]) and all points' end decisions."""
    fr, fs = feature_counts(real), feature_counts(sim)
    jss = {k: squared_js_distance(fr[k], fs[k], CLASSES[k]) for k in CLASSES}
    embed = float(np.mean(embed_distances)) if embed_distances is not None and len(embed_distances) else None
    return TurnMetrics(abs(pooled_mean_word_length(real) - pooled_mean_word_length(sim)),
                       abs(pooled_typo_rate(real) - pooled_typo_rate(sim)),
                       jss["pos"], jss["punct"], jss["caps"], jss["sentiment"], jss["length"],
                       embed, termination_f1(real_ends, sim_ends))


# --- replay -------------------------------------------------------------------------------------
@dataclass
class ReplayPoint:
    """A real prefix ending with an assistant turn, and what the real user did next."""

    conversation_id: str
    index: int                      # messages in the prefix
    prefix: tuple[Message, ...]
    real_next: str | None           # None: the real user ended the conversation here
    intent: str = ""


def replay_points(conversations, ids, intents) -> tuple[list[ReplayPoint], int]:
    """Every replay point of the conversations (system messages dropped), and how many assistant
    turns were skipped because another assistant turn, not a user turn, followed them."""
    points, skipped = [], 0
    for conv, cid, intent in zip(conversations, ids, intents):
        msgs = tuple(m for m in conv if m.role != "system")
        for j, m in enumerate(msgs):
            if m.role != "assistant" or j == 0:
                continue
            nxt = msgs[j + 1] if j + 1 < len(msgs) else None
            if nxt is not None and nxt.role != "user":
                skipped += 1
                continue
            points.append(ReplayPoint(cid, j + 1, msgs[: j + 1], nxt.content if nxt else None, intent))
    return points, skipped


def replay(simulator, points: Sequence[ReplayPoint], batch_size: int = 32) -> list:
    """The simulator's UserTurn for each point, asked in batches of Episodes built from the prefixes."""
    from tqdm import tqdm

    out = []
    for start in tqdm(range(0, len(points), batch_size), desc="replaying", unit="batch"):
        batch = points[start: start + batch_size]
        episodes = []
        for p in batch:
            first_user = next((m.content for m in p.prefix if m.role == "user"), None)
            # only the prefix: the simulator must not see the real next turn it is compared with
            task = Task(task_id=p.conversation_id, intent=p.intent, opening=first_user,
                        conversation=p.prefix)
            episodes.append(Episode(task=task, simulator=getattr(simulator, "name", "simulator"),
                                    group_id=f"{p.conversation_id}:{p.index}", messages=list(p.prefix)))
        turns = simulator.reply(episodes)
        if len(turns) != len(batch):
            raise RuntimeError(f"simulator returned {len(turns)} turns for {len(batch)} episodes")
        out.extend(turns)
    return out


# --- the command --------------------------------------------------------------------------------
WILDBENCH_PREFIX = "wildbench:"


@dataclass
class TurnFidelityConfig:
    real: str = option("", help="JSONL of real conversations (records with conversation[*].role/"
                       "content), or wildbench:SOURCE (allenai/WildBench, a file in its schema, "
                       "or sample) for WildBench conversations ending with a reference answer; "
                       "under --protocol paper the default is wildbench:allenai/WildBench")
    protocol: str = option("wildsim", help="wildsim: pooled histograms over all turns with the "
                           "project's style features; paper: the 2605.09808 release's per-turn "
                           "metrics averaged per conversation (spaCy, pyspellchecker, VADER)")
    reference: str = option("gpt-4", help="with --real wildbench:...: the reference model whose "
                            "answer is the last assistant turn (tasks without one keep N-1 points)")
    wb_gaps: str | None = option(None, help="CSV/JSON of session_id -> WildBench gap between two "
                                 "assistants; adds Spearman/Pearson of per-conversation metrics")
    simulator: str = option("", help="zoo name of the simulator to replay (simulators.zoo)")
    zoo: str | None = option(None, help="simulator zoo YAML (default configs/simulators.yaml)")
    engine_override: str | None = option(None, help="engine spec replacing the zoo entry's own "
                                                    "(e.g. builtin:smollm2-135m-instruct on CPU)")
    max_points: int = option(500, help="replay at most this many points, sampled with the seed (0 = all)")
    batch_size: int = option(32, help="episodes per simulator.reply call")
    embedder: str = option("all-MiniLM-L6-v2", help="sentence-transformers model for "
                           "embed_distance ('none' leaves embed_distance out)")
    seed: int = option(42, help="seed of the simulator and of the point sample")
    out: str = option("runs/turn_fidelity", help="output folder")

    def __post_init__(self) -> None:
        if not self.real and self.protocol == "paper":
            self.real = WILDBENCH_PREFIX + "allenai/WildBench"  # the release's evaluation set
        if not self.real:
            raise ValueError("--real PATH is required (JSONL of real conversations, or "
                             "wildbench:SOURCE)")
        if not self.simulator:
            raise ValueError("--simulator NAME is required (a name in the simulator zoo)")
        if self.max_points < 0 or self.batch_size < 1:
            raise ValueError("need --max_points >= 0 and --batch_size >= 1")
        if self.protocol not in ("wildsim", "paper"):
            raise ValueError(f"--protocol must be wildsim or paper, got {self.protocol!r}")


def sample_points(points: list[ReplayPoint], max_points: int, seed: int) -> list[ReplayPoint]:
    """At most max_points points drawn without replacement (in their original order)."""
    if not max_points or len(points) <= max_points:
        return points
    keep = np.sort(np.random.default_rng(seed).choice(len(points), max_points, replace=False))
    return [points[i] for i in keep]


def evaluate(points: Sequence[ReplayPoint], turns: Sequence, embedder=None) -> tuple[TurnMetrics, dict, list[dict]]:
    """Metrics, counts and per-point records from the points and the simulator's turns."""
    real_ends = [p.real_next is None for p in points]
    sim_ends = [bool(t.ends) for t in turns]
    pairs = [i for i, (p, t) in enumerate(zip(points, turns)) if p.real_next is not None and t.text.strip()]
    real = [points[i].real_next for i in pairs]
    sim = [turns[i].text for i in pairs]
    dist = None
    if embedder is not None and pairs:
        dist = cosine_distances(embedder.encode(real), embedder.encode(sim))
    metrics = turn_metrics(real, sim, real_ends, sim_ends, dist)
    counts = {"points": len(points), "pairs": len(pairs), "real_ended": sum(real_ends),
              "sim_ended": sum(sim_ends),
              "sim_silent_while_real_continued": sum(p.real_next is not None and not t.text.strip()
                                                     for p, t in zip(points, turns))}
    pair_dist = dict(zip(pairs, dist.tolist())) if dist is not None else {}
    records = [{"conversation_id": p.conversation_id, "prefix_messages": p.index,
                "real": p.real_next, "real_ends": p.real_next is None, "sim": t.text,
                "sim_ends": bool(t.ends), "embed_distance": pair_dist.get(i)}
               for i, (p, t) in enumerate(zip(points, turns))]
    return metrics, counts, records


def wildbench_conversations(source: str, reference: str
                            ) -> tuple[list[tuple[Message, ...]], list[str], list[str], int]:
    """WildBench tasks as conversations: the conversation_input turns, then the `reference`
    model's answer as the last assistant turn (the release's evaluation set). Returns the
    conversations, session ids, intents and how many tasks lack that reference."""
    from corpora.wildbench import load_wildbench

    convs, ids, intents, missing = [], [], [], 0
    for t in load_wildbench(source):
        msgs = [*t.history, Message("user", t.query)]
        answer = t.references.get(reference)
        if answer:
            msgs.append(Message("assistant", answer))
        else:
            missing += 1
        convs.append(tuple(msgs))
        ids.append(t.session_id)
        intents.append(t.intent)
    return convs, ids, intents, missing


def sample_conversations(points: list[ReplayPoint], max_points: int, seed: int) -> list[ReplayPoint]:
    """Whole conversations drawn with the seed until `max_points` points are reached (at least
    one conversation), kept in their original order, so each is replayed from its first point."""
    if not max_points or len(points) <= max_points:
        return points
    order = list(dict.fromkeys(p.conversation_id for p in points))
    sizes = Counter(p.conversation_id for p in points)
    chosen, total = set(), 0
    for i in np.random.default_rng(seed).permutation(len(order)):
        if chosen and total + sizes[order[i]] > max_points:
            continue
        chosen.add(order[i])
        total += sizes[order[i]]
    return [p for p in points if p.conversation_id in chosen]


def evaluate_paper(points: Sequence[ReplayPoint], turns: Sequence, embedder=None
                   ) -> tuple[dict, dict[str, dict], dict]:
    """The paper protocol: (metrics, per-conversation means, counts); see eval/turn_paper.py."""
    from eval import turn_paper

    pairs = [i for i, (p, t) in enumerate(zip(points, turns))
             if p.real_next is not None and t.text.strip()]
    real = [points[i].real_next for i in pairs]
    sim = [turns[i].text for i in pairs]
    dist = None
    if embedder is not None and pairs:
        dist = cosine_distances(embedder.encode(real), embedder.encode(sim))
    values = turn_paper.per_turn_values(real, sim, dist)
    metrics, per_session = turn_paper.paper_summary(
        [points[i].conversation_id for i in pairs], values,
        [p.conversation_id for p in points], [p.real_next is None for p in points],
        [bool(t.ends) for t in turns])
    for p in points:
        row = per_session.setdefault(p.conversation_id, {})
        row["points"] = row.get("points", 0) + 1
        row["pairs"] = row.get("pairs", 0)
    for i in pairs:
        per_session[points[i].conversation_id]["pairs"] += 1
    counts = {"points": len(points), "pairs": len(pairs), "conversations": len(per_session),
              "conversations_with_pairs": len({points[i].conversation_id for i in pairs})}
    return metrics, per_session, counts


def read_gaps(path: str) -> dict[str, float]:
    """session_id → gap from a JSON object, or a CSV with columns session_id and gap."""
    import csv

    text = Path(path).read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        return {str(k): float(v) for k, v in json.loads(text).items()}
    rows = list(csv.DictReader(text.splitlines()))
    if rows and not {"session_id", "gap"} <= set(rows[0]):
        raise ValueError(f"{path}: the CSV needs columns session_id and gap")
    return {r["session_id"]: float(r["gap"]) for r in rows}


def write_per_session(path: Path, per_session: dict[str, dict]) -> None:
    """OUT/per_session.csv: one row per conversation with its points, pairs and metric means."""
    import csv

    columns = sorted({k for row in per_session.values() for k in row} - {"points", "pairs"})
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["session_id", "points", "pairs", *columns])
        for sid, row in per_session.items():
            writer.writerow([sid, row.get("points", 0), row.get("pairs", 0),
                             *[row.get(c, "") for c in columns]])


def _load_real(cfg: TurnFidelityConfig) -> tuple[list[ReplayPoint], int, dict]:
    if cfg.real.startswith(WILDBENCH_PREFIX):
        convs, ids, intents, missing = wildbench_conversations(cfg.real[len(WILDBENCH_PREFIX):],
                                                               cfg.reference)
        extra = {"tasks_without_reference": missing}
    else:
        from eval.fidelity import read_user_conversations

        data = read_user_conversations(cfg.real, "real")
        convs, ids, intents, extra = data.conversations, data.ids, data.intents, {}
    points, skipped = replay_points(convs, ids, intents)
    if not points:
        raise ValueError(f"{cfg.real}: no replay points (no assistant turn after a user turn)")
    sample = sample_conversations if cfg.protocol == "paper" else sample_points
    return sample(points, cfg.max_points, cfg.seed), skipped, extra


def run(cfg: TurnFidelityConfig, command: str = "", simulator=None) -> dict:
    """Replay, score and write the outputs (see the module docstring); returns the summary.
    `simulator` replaces the zoo lookup (tests pass a scripted one)."""
    from eval.embed import load_embedder

    points, skipped, extra = _load_real(cfg)
    if simulator is None:
        from simulators.zoo import load_simulator

        simulator = load_simulator(cfg.simulator, cfg.zoo, engine_override=cfg.engine_override, seed=cfg.seed)
    turns = replay(simulator, points, cfg.batch_size)
    embedder = None if cfg.embedder == "none" else load_embedder(cfg.embedder)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    per_session: dict[str, dict] = {}
    if cfg.protocol == "paper":
        metrics, per_session, counts = evaluate_paper(points, turns, embedder)
        _, _, records = evaluate(points, turns, None)
    else:
        turn_m, counts, records = evaluate(points, turns, embedder)
        metrics = asdict(turn_m)
    summary = {"command": command, "protocol": cfg.protocol, "simulator": cfg.simulator,
               "real": cfg.real, "seed": cfg.seed, "embedder": cfg.embedder, "metrics": metrics,
               "counts": {**counts, "skipped_non_alternating": skipped, **extra}}
    if cfg.protocol == "paper":
        summary["notes"] = {"sentiment_vader_js": "VADER [neg, neu, pos] stand-in: the release's "
                            "lxyuan/distilbert-base-multilingual-cased-sentiments-student needs "
                            "the model hub; not comparable with the paper's sentiment figures"}
        write_per_session(out / "per_session.csv", per_session)
        if cfg.wb_gaps:
            from eval.turn_paper import gap_correlations

            gaps = read_gaps(cfg.wb_gaps)
            names = sorted({k for row in per_session.values() for k in row} - {"points", "pairs"})
            summary["wb_gap_correlations"] = {
                n: gap_correlations({s: r[n] for s, r in per_session.items() if n in r}, gaps)
                for n in names}
    _plot(out / "turn_fidelity.png", metrics, cfg.protocol)
    (out / "turn_fidelity.json").write_text(json.dumps(summary, indent=1))
    with (out / "replays.jsonl").open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    save_config(cfg, out / "config.yaml")
    return summary


def _plot(path: Path, metrics: dict, protocol: str) -> None:
    from eval.eval_report import bar_chart

    names = list(metrics)
    values = [metrics[n] for n in names]
    bar_chart(path, names, values, [None] * len(names), [None] * len(names),
              title=f"Turn-level fidelity ({protocol} protocol)", ylabel="value", reference=0.0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = parse_config(TurnFidelityConfig, argv, prog="wildsim eval turn-fidelity", description=__doc__)
    try:
        summary = run(cfg, "wildsim eval turn-fidelity " + shlex.join(argv))
    except ValueError as err:
        print(f"wildsim eval turn-fidelity: error: {err}", file=sys.stderr)
        return 2
    for name, value in summary["metrics"].items():
        print(f"{name:>16}: {'n/a' if value is None else f'{value:.4f}'}")
    print(f"{summary['counts']}\nwrote {Path(cfg.out) / 'turn_fidelity.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
