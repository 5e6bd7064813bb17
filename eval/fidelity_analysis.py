"""One fidelity analysis: shared clusters → divergences, intervals, floor, pairwise JS, mixture,
explained clusters — for one view of the represented sets (set 0 is real, the rest simulators).

Returns plain JSON-able mappings (the body of fidelity.json); the math lives in
eval.divergence, eval.quantise, eval.mixture and eval.clusters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eval.clusters import cluster_terms, explain_clusters
from eval.divergence import bootstrap_divergences, divergences, js_counts, split_halves
from eval.mixture import optimal_mixture
from eval.quantise import quantise

CLUSTER_ROWS = 8  # rows per label kept in fidelity.json for each simulator


def _simulator_block(counts_real, counts_sim, cfg, seed: int) -> dict[str, Any]:
    d = divergences(counts_real, counts_sim)
    ci = bootstrap_divergences(counts_real, counts_sim, samples=cfg.bootstrap, level=cfg.level, seed=seed)
    return {**d.as_dict(),
            "ci": {name: [iv.low, iv.high] for name, iv in ci.items()},
            "n_real": int(counts_real.sum()), "n_sim": int(counts_sim.sum()),
            "counts_real": counts_real.tolist(), "counts_sim": counts_sim.tolist()}


def _floor_block(labels_real: np.ndarray, k: int, cfg) -> dict[str, Any]:
    a, b = split_halves(labels_real, k, cfg.seed)
    block = _simulator_block(a, b, cfg, cfg.seed + 7)
    block["counts_a"], block["counts_b"] = block.pop("counts_real"), block.pop("counts_sim")
    block["n_a"], block["n_b"] = block.pop("n_real"), block.pop("n_sim")
    return block


def _mixture_block(counts_real, counts_sims: dict[str, np.ndarray]) -> dict[str, Any] | None:
    if len(counts_sims) < 2:
        return None
    fit = optimal_mixture(counts_real, list(counts_sims.values()))
    return {"weights": {n: float(w) for n, w in zip(counts_sims, fit.weights)},
            **fit.divergences.as_dict(), "iterations": fit.iterations,
            "kkt_violation": fit.kkt_violation}


def _cluster_summary(rows) -> dict[str, Any]:
    summary = {"captured": 0, "missed": 0, "hallucinated": 0}
    for r in rows:
        summary[r.label] += 1
    kept, per_label = [], {}
    for r in rows:
        per_label[r.label] = per_label.get(r.label, 0) + 1
        if per_label[r.label] <= CLUSTER_ROWS:
            kept.append(r.as_dict())
    return {**summary, "rows": kept}


def analyse_view(view: str, names: list[str], represented, cfg, *, normalise: bool = True
                 ) -> dict[str, Any]:
    """Quantise every set's `view` vectors together and compare each simulator with real."""
    sets = [r.views[view] for r in represented]
    q = quantise(sets, k=cfg.k, seed=cfg.seed, variance=cfg.variance, restarts=cfg.restarts,
                 iters=cfg.iters, backend=cfg.backend, normalise=normalise)
    counts = {n: q.counts(i) for i, n in enumerate(names)}
    real, sims = names[0], names[1:]
    texts = [t for r in represented for t in r.texts[view]]
    terms = cluster_terms(np.concatenate(q.labels), texts, q.k)
    simulators, clusters = {}, {}
    for i, name in enumerate(sims, 1):
        simulators[name] = _simulator_block(counts[real], counts[name], cfg, cfg.seed + i)
        rows = explain_clusters(q.labels[0], q.labels[i], represented[0].examples,
                                represented[i].examples, terms, q.k, ratio=cfg.ratio, seed=cfg.seed)
        clusters[name] = _cluster_summary(rows)
    return {
        "k": q.k,
        "quantisation": {"k": q.k, "k_requested": q.k_requested, "pca_dims": q.dims,
                         "variance": cfg.variance, "restarts": cfg.restarts, "iters": cfg.iters,
                         "backend": q.backend, "inertia": q.inertia, "l2_normalised": normalise},
        "simulators": simulators,
        "floor": _floor_block(q.labels[0], q.k, cfg),
        "pairwise_js": {a: {b: js_counts(counts[a], counts[b]) for b in sims} for a in sims},
        "mixture": _mixture_block(counts[real], {n: counts[n] for n in sims}),
        "clusters": clusters,
        "cluster_terms": {str(i): t for i, t in enumerate(terms)},
    }
