"""Behaviour clusters explained: what each cluster is about, and whether a simulator captures it.

Terms: a TF-IDF model (scikit-learn) over one document per cluster — the texts of every item in
the cluster, all sets pooled — gives each cluster its top terms. For facet representations the
texts are the annotator's behaviour descriptions, so the terms name behaviours.

Labels, per simulator and cluster, from add-one smoothed shares s = (c + 1) / (N + k) of the
real (r) and simulated (s) sets:
- missed:        s_real ≥ ratio · s_sim   (real ≫ simulated; the simulator lacks this behaviour)
- hallucinated:  s_sim ≥ ratio · s_real   (simulated ≫ real; a behaviour real users don't show)
- captured:      neither, with mass in at least one of the two sets
- absent:        no item of either set (the cluster belongs to other simulators)
ratio defaults to 3. Add-one (not add-1/k) smoothing keeps one or two stray items from making a
cluster "missed". Rows are ranked by their term in the forward KL (missed) or backward KL
(hallucinated), so the table leads with the clusters that drive the divergences.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from eval.divergence import smooth

LABELS = ("captured", "missed", "hallucinated", "absent")


def cluster_labels(counts_real: np.ndarray, counts_sim: np.ndarray, ratio: float = 3.0) -> list[str]:
    """One of LABELS per cluster (see module docstring). counts (k,) each."""
    if ratio <= 1:
        raise ValueError(f"ratio must be > 1, got {ratio}")
    r, s = np.asarray(counts_real, float), np.asarray(counts_sim, float)
    k = r.size
    sr, ss = (r + 1) / (r.sum() + k), (s + 1) / (s.sum() + k)
    out = []
    for i in range(k):
        if r[i] == 0 and s[i] == 0:
            out.append("absent")
        elif sr[i] >= ratio * ss[i]:
            out.append("missed")
        elif ss[i] >= ratio * sr[i]:
            out.append("hallucinated")
        else:
            out.append("captured")
    return out


def cluster_terms(labels: np.ndarray, texts: list[str], k: int, n_terms: int = 6) -> list[list[str]]:
    """Top TF-IDF terms of each cluster's pooled texts. labels (n,) in [0, k); texts (n,)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [[] for _ in range(k)]
    for lab, text in zip(labels, texts):
        docs[int(lab)].append(text)
    joined = [" ".join(d) for d in docs]
    if not any(j.strip() for j in joined):
        return [[] for _ in range(k)]
    vec = TfidfVectorizer(stop_words="english", sublinear_tf=True, token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z_]+\b")
    try:
        matrix = vec.fit_transform(joined)
    except ValueError:  # only stop words
        return [[] for _ in range(k)]
    vocab = np.array(vec.get_feature_names_out())
    terms = []
    for i in range(k):
        row = matrix[i].toarray().ravel()
        top = [j for j in np.argsort(-row)[:n_terms] if row[j] > 0]
        terms.append(vocab[top].tolist())
    return terms


@dataclass
class ClusterRow:
    """One cluster as seen by one simulator."""

    cluster: int
    label: str
    count_real: int
    count_sim: int
    kl_term: float                  # its term in forward KL (missed) or backward KL (others)
    terms: list[str]
    examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _examples(labels: np.ndarray, examples: list[str], cluster: int, n: int, rng) -> list[str]:
    idx = np.flatnonzero(labels == cluster)
    pick = rng.choice(idx, size=min(n, idx.size), replace=False) if idx.size else []
    return [examples[i] for i in sorted(pick)]


def explain_clusters(labels_real: np.ndarray, labels_sim: np.ndarray, examples_real: list[str],
                     examples_sim: list[str], terms: list[list[str]], k: int, *,
                     ratio: float = 3.0, seed: int = 0) -> list[ClusterRow]:
    """Every non-absent cluster with its label, counts, KL term, terms and two examples (from
    real for missed, from the simulator for hallucinated, one of each for captured), most
    divergent first within each label."""
    cr, cs = np.bincount(labels_real, minlength=k), np.bincount(labels_sim, minlength=k)
    p, q = smooth(cr), smooth(cs)
    rng = np.random.default_rng(seed)
    rows = []
    for i, lab in enumerate(cluster_labels(cr, cs, ratio)):
        if lab == "absent":
            continue
        kl_term = p[i] * np.log(p[i] / q[i]) if lab == "missed" else q[i] * np.log(q[i] / p[i])
        if lab == "missed":
            ex = _examples(labels_real, examples_real, i, 2, rng)
        elif lab == "hallucinated":
            ex = _examples(labels_sim, examples_sim, i, 2, rng)
        else:
            ex = (_examples(labels_real, examples_real, i, 1, rng)
                  + _examples(labels_sim, examples_sim, i, 1, rng))
        rows.append(ClusterRow(i, lab, int(cr[i]), int(cs[i]), float(kl_term), terms[i], ex))
    order = {"missed": 0, "hallucinated": 1, "captured": 2}
    rows.sort(key=lambda r: (order[r.label], -r.kl_term if r.label != "captured"
                             else -(r.count_real + r.count_sim)))
    return rows
