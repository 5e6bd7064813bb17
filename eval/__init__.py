"""eval: cross-simulator matrix, WildBench judging, win-rate statistics, simulator fidelity, reports and plots.

Fidelity (how far a simulator's users are from real ones): `wildsim eval fidelity` (eval.fidelity)
and `wildsim eval turn-fidelity` (eval.turn_fidelity); the divergences themselves are pure
functions in eval.divergence. Modules are imported by their commands, so importing `eval` stays
cheap.
"""
