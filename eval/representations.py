"""Turn conversations into the vectors fidelity clusters: facets, utterances or style.

- `facets`: the LLM annotator's six behaviour descriptions (eval.facets), each embedded; views
  `requests`, `responses`, `context`, `style`, `damsl`, `sgd` and `combined` (the six embeddings
  concatenated). One item per conversation.
- `utterances`: user turns embedded directly (one item per user turn, or per conversation as
  the re-normalised mean of its turns' embeddings with `unit="conversation"`).
- `style`: eval.style's measurable features of the user turns (per turn, or the mean per
  conversation); standardised over the pooled sets by the caller.

Each set becomes a `Represented`: its vectors per view, the texts TF-IDF reads per view, one
example utterance per item, and how many conversations were skipped and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from corpora.types import Message

REPRESENTATIONS = ("facets", "utterances", "style")
UNITS = ("utterance", "conversation")
EXAMPLE_CHARS = 240


@dataclass
class Represented:
    """One set of conversations, represented."""

    views: dict[str, np.ndarray]   # view -> (n, d) vectors
    texts: dict[str, list[str]]    # view -> (n,) texts for TF-IDF
    examples: list[str]            # (n,) example utterance per item
    conversations: int             # conversations read
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> conversations left out
    annotation: dict | None = None  # facets only: eval.facets.AnnotationRun.summary()

    @property
    def n(self) -> int:
        return len(self.examples)


def short(text: str, limit: int = EXAMPLE_CHARS) -> str:
    """One line, at most `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def user_turns(messages: Sequence[Message]) -> list[str]:
    """The non-empty user utterances of a conversation."""
    return [m.content for m in messages if m.role == "user" and m.content.strip()]


def _units(conversations: Sequence[Sequence[Message]]) -> tuple[list[list[str]], int]:
    turns = [user_turns(c) for c in conversations]
    return [t for t in turns if t], sum(not t for t in turns)


def _per_unit(turn_vectors: np.ndarray, sizes: list[int], unit: str, renorm: bool) -> np.ndarray:
    """Turn vectors (T, d) → unit vectors: unchanged per utterance, mean per conversation."""
    if unit == "utterance":
        return turn_vectors
    bounds = np.cumsum([0] + sizes)
    means = np.stack([turn_vectors[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
    if renorm:
        norms = np.linalg.norm(means, axis=1, keepdims=True)
        means = means / np.where(norms > 0, norms, 1.0)
    return means


def _texts_for(turns: list[list[str]], unit: str) -> tuple[list[str], list[str]]:
    if unit == "utterance":
        flat = [t for ts in turns for t in ts]
        return flat, [short(t) for t in flat]
    return ["\n".join(ts) for ts in turns], [short(ts[0]) for ts in turns]


def represent_style(conversations: Sequence[Sequence[Message]], unit: str = "utterance") -> Represented:
    """Unstandardised style vectors (eval.style.STYLE_FEATURES) of the user turns."""
    from eval.style import style_vector

    turns, empty = _units(conversations)
    flat = [t for ts in turns for t in ts]
    vectors = np.stack([style_vector(t) for t in flat]) if flat else np.zeros((0, 15))
    vectors = _per_unit(vectors, [len(ts) for ts in turns], unit, renorm=False) if flat else vectors
    texts, examples = _texts_for(turns, unit)
    return Represented({"style": vectors}, {"style": texts}, examples, len(conversations),
                       {"no_user_turns": empty})


def represent_utterances(conversations: Sequence[Sequence[Message]], embedder,
                         unit: str = "utterance") -> Represented:
    """Embeddings of the user turns (per turn, or their re-normalised mean per conversation)."""
    turns, empty = _units(conversations)
    flat = [t for ts in turns for t in ts]
    vectors = embedder.encode(flat, progress=len(flat) > 2000)
    if flat:
        vectors = _per_unit(vectors, [len(ts) for ts in turns], unit, renorm=True)
    texts, examples = _texts_for(turns, unit)
    return Represented({"utterances": vectors}, {"utterances": texts}, examples,
                       len(conversations), {"no_user_turns": empty})


def represent_facets(conversations: Sequence[Sequence[Message]], engine, embedder, *,
                     batch_size: int = 16, seed: int = 0, desc: str = "annotating") -> Represented:
    """Annotate each conversation's six facets with `engine`, embed each facet text, and add the
    `combined` view (the six unit-length embeddings concatenated)."""
    from eval.facets import FACETS, annotate

    kept_convs = [c for c in conversations if user_turns(c)]
    empty = len(conversations) - len(kept_convs)
    run = annotate(kept_convs, engine, batch_size=batch_size, seed=seed, desc=desc)
    pairs = [(c, a) for c, a in zip(kept_convs, run.annotations) if a is not None]
    views, texts = {}, {}
    for facet in FACETS:
        texts[facet] = [a.text(facet) for _, a in pairs]
        views[facet] = embedder.encode(texts[facet])
    views["combined"] = np.concatenate([views[f] for f in FACETS], axis=1)
    texts["combined"] = [" ".join(a.text(f) for f in FACETS[:4]) for _, a in pairs]
    examples = [short(user_turns(c)[0]) for c, _ in pairs]
    return Represented(views, texts, examples, len(conversations),
                       {"no_user_turns": empty, "annotation_failed": run.failures},
                       annotation=run.summary())
