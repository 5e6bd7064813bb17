"""Benchmark: fidelity's quantise + divergences + bootstrap on synthetic embeddings.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/fidelity.py              # 10k, 50k, 100k per set
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/fidelity.py --sizes 10000 --k 100
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/fidelity.py --latent 192 --centres 300  # more PCA dims

For each size n: n "real" and n "simulated" 384-d vectors drawn from a seeded Gaussian mixture
(60 behaviour centres in a 48-d subspace, `--latent`, plus isotropic noise; the simulated set reweights the
centres and drops a few), L2-normalised; then the full fidelity path — pool, PCA to 90% variance,
k-means (k = 500, 5 restarts, at most 500 iterations), histograms, forward/backward KL, JS and
1,000 bootstrap resamples — is timed phase by phase. Prints one line per size and the growth.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def synthetic_sets(n: int, dim: int = 384, centres: int = 60, seed: int = 0, latent: int = 48):
    """(n, dim) real and simulated float32 embeddings from a seeded Gaussian mixture whose centres
    and spread live in a `latent`-dimensional subspace (more latent dimensions → more PCA
    dimensions kept → slower k-means)."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(latent, dim)) / np.sqrt(latent)
    mus = rng.normal(size=(centres, latent)) * 2.0
    w_real = rng.dirichlet(np.ones(centres))
    w_sim = w_real * rng.uniform(0.2, 2.0, centres)
    w_sim[:5] = 0.0  # behaviours the simulator lacks
    w_sim /= w_sim.sum()

    def draw(weights):
        z = rng.choice(centres, size=n, p=weights)
        x = (mus[z] + rng.normal(size=(n, latent)) * 0.6) @ basis + rng.normal(size=(n, dim)) * 0.05
        return x.astype(np.float32)

    return draw(w_real), draw(w_sim)


def run_once(n: int, k: int, backend: str, bootstrap: int, latent: int,
             centres: int) -> dict[str, float]:
    from eval.divergence import bootstrap_divergences, divergences
    from eval.quantise import quantise

    real, sim = synthetic_sets(n, centres=centres, latent=latent)
    t0 = time.perf_counter()
    q = quantise([real, sim], k=k, seed=42, backend=backend)
    t1 = time.perf_counter()
    d = divergences(q.counts(0), q.counts(1))
    bootstrap_divergences(q.counts(0), q.counts(1), samples=bootstrap, seed=42)
    t2 = time.perf_counter()
    return {"quantise_s": t1 - t0, "divergences_s": t2 - t1, "total_s": t2 - t0, "k": q.k,
            "dims": q.dims, "backend": q.backend, "forward_kl": d.forward_kl, "js": d.js}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000],
                        help="items per set (real and simulated each)")
    parser.add_argument("--k", type=int, default=500, help="clusters")
    parser.add_argument("--backend", default="auto", help="k-means backend: auto, sklearn or faiss")
    parser.add_argument("--latent", type=int, default=48,
                        help="dimensions of the subspace the synthetic behaviours live in")
    parser.add_argument("--centres", type=int, default=60, help="synthetic behaviour centres")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    args = parser.parse_args(argv)
    try:
        import faiss
        faiss.omp_set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    except ImportError:
        pass
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} cores={os.cpu_count()}")
    results = []
    for n in args.sizes:
        r = run_once(n, args.k, args.backend, args.bootstrap, args.latent,
                     args.centres)
        results.append((n, r))
        print(f"n={n:>7} per set  k={r['k']}  pca_dims={r['dims']}  backend={r['backend']}  "
              f"quantise {r['quantise_s']:7.1f} s  divergences+bootstrap {r['divergences_s']:5.2f} s  "
              f"total {r['total_s']:7.1f} s   (forward KL {r['forward_kl']:.3f}, JS {r['js']:.3f})",
              flush=True)
    base_n, base = results[0]
    for n, r in results[1:]:
        print(f"growth {base_n} -> {n}: x{n / base_n:.0f} data, x{r['total_s'] / base['total_s']:.1f} time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
