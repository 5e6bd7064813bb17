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
Writes OUT/turn_fidelity.json, OUT/replays.jsonl (one line per point) and OUT/config.yaml.
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
from wildsim.config import option, parse_config, save_config


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
@dataclass
class TurnFidelityConfig:
    real: str = option("", help="JSONL of real conversations (records with conversation[*].role/content)")
    simulator: str = option("", help="zoo name of the simulator to replay (simulators.zoo)")
    zoo: str | None = option(None, help="simulator zoo YAML (default configs/simulators.yaml)")
    engine_override: str | None = option(None, help="engine spec replacing the zoo entry's own "
                                                    "(e.g. builtin:smollm2-135m-instruct on CPU)")
    max_points: int = option(500, help="replay at most this many points, sampled with the seed (0 = all)")
    batch_size: int = option(32, help="episodes per simulator.reply call")
    embedder: str = option("all-MiniLM-L6-v2", help="sentence-transformers model for embed_distance")
    seed: int = option(42, help="seed of the simulator and of the point sample")
    out: str = option("runs/turn_fidelity", help="output folder")

    def __post_init__(self) -> None:
        if not self.real:
            raise ValueError("--real PATH is required (JSONL of real conversations)")
        if not self.simulator:
            raise ValueError("--simulator NAME is required (a name in the simulator zoo)")
        if self.max_points < 0 or self.batch_size < 1:
            raise ValueError("need --max_points >= 0 and --batch_size >= 1")


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


def run(cfg: TurnFidelityConfig, command: str = "", simulator=None) -> dict:
    """Replay, score and write OUT/turn_fidelity.json and OUT/replays.jsonl; returns the summary.
    `simulator` replaces the zoo lookup (tests pass a scripted one)."""
    from eval.embed import load_embedder
    from eval.fidelity import read_user_conversations

    data = read_user_conversations(cfg.real, "real")
    points, skipped = replay_points(data.conversations, data.ids, data.intents)
    if not points:
        raise ValueError(f"{cfg.real}: no replay points (no assistant turn after a user turn)")
    points = sample_points(points, cfg.max_points, cfg.seed)
    if simulator is None:
        from simulators.zoo import load_simulator

        simulator = load_simulator(cfg.simulator, cfg.zoo, engine_override=cfg.engine_override, seed=cfg.seed)
    turns = replay(simulator, points, cfg.batch_size)
    metrics, counts, records = evaluate(points, turns, load_embedder(cfg.embedder))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"command": command, "simulator": cfg.simulator, "real": cfg.real, "seed": cfg.seed,
               "embedder": cfg.embedder, "metrics": asdict(metrics),
               "counts": {**counts, "skipped_non_alternating": skipped}}
    (out / "turn_fidelity.json").write_text(json.dumps(summary, indent=1))
    with (out / "replays.jsonl").open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    save_config(cfg, out / "config.yaml")
    return summary


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
