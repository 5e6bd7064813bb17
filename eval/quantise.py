"""Quantise feature vectors into shared behaviour clusters, as MAUVE does.

Pool every set being compared (real and all simulators), L2-normalise each row, keep the principal
components that explain 90% of the variance, and run k-means (5 restarts, at most 500 iterations,
seeded; the restart with the lowest inertia is kept). One clustering serves all sets, so their
histograms are over the same bins. k defaults to 500 and is capped for small inputs at MAUVE's
round(min n / 10), never below 2 (`choose_k`).

Backends: scikit-learn (k-means++ starts, Lloyd until the centres stop moving) or faiss-cpu for
large inputs: k-means++ starts (drawn from at most 20·k points), Lloyd iterations with faiss
nearest-centroid search until the inertia improves by less than 1e-5 (relative) or 500
iterations, trained on at most 256 points per centroid (sampled with the seed), then every point
assigned. `backend="auto"` picks faiss
above 5,000 pooled points when it is installed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FAISS_ABOVE = 5_000


def choose_k(requested: int, sizes: list[int]) -> int:
    """k actually used: min(requested, round(min(sizes) / 10)), at least 2."""
    if requested < 2:
        raise ValueError(f"k must be at least 2, got {requested}")
    if not sizes or min(sizes) < 1:
        raise ValueError(f"every set needs at least one item, got sizes {sizes}")
    return max(2, min(requested, int(round(min(sizes) / 10))))


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero). (n, d) → (n, d)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def pca_reduce(x: np.ndarray, variance: float, seed: int) -> np.ndarray:
    """Project (n, d) onto the fewest principal components explaining `variance` of the total."""
    from sklearn.decomposition import PCA

    if x.shape[1] == 1 or x.shape[0] < 3:
        return x
    solver = "covariance_eigh" if x.shape[0] > 10 * x.shape[1] else "full"
    return PCA(n_components=variance, svd_solver=solver, random_state=seed).fit_transform(x)


@dataclass
class Quantisation:
    """Cluster labels of each set (same order as given) and how they were obtained."""

    labels: list[np.ndarray]   # one (n_s,) int array per set
    k: int                     # clusters used
    k_requested: int
    dims: int                  # PCA dimensions kept
    inertia: float
    backend: str

    def counts(self, i: int) -> np.ndarray:
        """Histogram (k,) of set i."""
        return np.bincount(self.labels[i], minlength=self.k)


def _kmeans_sklearn(x: np.ndarray, k: int, restarts: int, iters: int, seed: int):
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=restarts, max_iter=iters, random_state=seed).fit(
        x.astype(np.float32))
    return km.labels_.astype(np.int64), float(km.inertia_)


def _assign(index, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dist, idx = index.search(x, 1)
    return idx[:, 0], dist[:, 0]


def _lloyd_faiss(x: np.ndarray, k: int, iters: int, tol: float, rng) -> tuple[np.ndarray, float]:
    """One k-means run on x (n, d) float32, seeded by k-means++ on at most 20·k of its points:
    Lloyd iterations with faiss assignment until the inertia improves by less than `tol`
    (relative) or `iters` is reached.
    An emptied cluster is re-seeded at a random point. Returns centroids (k, d), inertia."""
    import faiss
    from scipy.sparse import csr_matrix

    from sklearn.cluster import kmeans_plusplus

    n, d = x.shape
    seed_pool = x[rng.choice(n, size=min(n, 20 * k), replace=False)]
    centroids, _ = kmeans_plusplus(seed_pool, k, random_state=int(rng.integers(2**31)))
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    index, prev = faiss.IndexFlatL2(d), np.inf
    for _ in range(iters):
        index.reset()
        index.add(centroids)
        labels, dist = _assign(index, x)
        inertia = float(dist.sum())
        if np.isfinite(prev) and prev - inertia <= tol * prev:
            break
        prev = inertia
        members = csr_matrix((np.ones(n, np.float32), (labels, np.arange(n))), shape=(k, n))
        sizes = np.asarray(members.sum(axis=1)).ravel()
        sums = members @ x
        filled = sizes > 0
        centroids[filled] = sums[filled] / sizes[filled, None]
        centroids[~filled] = x[rng.choice(n, size=int((~filled).sum()), replace=False)]
    return centroids, inertia


def _kmeans_faiss(x: np.ndarray, k: int, restarts: int, iters: int, seed: int, tol: float = 1e-5):
    """Best of `restarts` runs of `_lloyd_faiss`, trained on at most 256 points per centroid
    (sampled with the seed); every point is then assigned to the best centroids."""
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    rng = np.random.default_rng(seed)
    train = x if len(x) <= 256 * k else x[np.sort(rng.choice(len(x), 256 * k, replace=False))]
    best, best_inertia = None, np.inf
    for _ in range(restarts):
        centroids, inertia = _lloyd_faiss(train, k, iters, tol, rng)
        if inertia < best_inertia:
            best, best_inertia = centroids, inertia
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(best)
    labels, dist = _assign(index, x)
    return labels.astype(np.int64), float(dist.sum())


def _pick_backend(backend: str, n: int) -> str:
    if backend not in ("auto", "sklearn", "faiss"):
        raise ValueError(f"unknown k-means backend {backend!r}; use auto, sklearn or faiss")
    if backend != "auto":
        return backend
    if n <= FAISS_ABOVE:
        return "sklearn"
    try:
        import faiss  # noqa: F401
    except ImportError:
        return "sklearn"
    return "faiss"


def quantise(sets: list[np.ndarray], *, k: int = 500, seed: int = 42, variance: float = 0.9,
             restarts: int = 5, iters: int = 500, backend: str = "auto",
             normalise: bool = True) -> Quantisation:
    """Cluster the pooled sets (each (n_s, d)) into one shared set of k' = choose_k(k, n_s) bins.
    `normalise=False` skips the L2 normalisation (for standardised style features, whose length
    carries information)."""
    if len(sets) < 2:
        raise ValueError("quantise needs at least two sets (real and one simulated)")
    dims = {s.shape[1] for s in sets}
    if len(dims) != 1:
        raise ValueError(f"sets have different feature widths {sorted(dims)}")
    sizes = [len(s) for s in sets]
    k_used = choose_k(k, sizes)
    pooled = np.concatenate(sets).astype(np.float64)
    pooled = l2_normalise(pooled) if normalise else pooled
    reduced = pca_reduce(pooled, variance, seed)
    chosen = _pick_backend(backend, len(pooled))
    run = _kmeans_faiss if chosen == "faiss" else _kmeans_sklearn
    labels, inertia = run(reduced, k_used, restarts, iters, seed)
    bounds = np.cumsum([0] + sizes)
    return Quantisation([labels[a:b] for a, b in zip(bounds[:-1], bounds[1:])], k_used, k,
                        reduced.shape[1], inertia, chosen)
