"""eval: cross-simulator matrix, WildBench judging, win-rate statistics, simulator fidelity,
reports and plots."""
