"""wildsim: RL for interactive assistants against user simulators, and simulator evaluation.

This package is the top floor: the `wildsim` command (`wildsim.cli`, which imports each
subcommand's module only when it runs) and the CPU demo (`wildsim.demo`). Nothing below imports
it. The configs and registries every layer shares live in the `foundation` package; the layers
themselves are the top-level packages corpora, engines, simulators, rewards, trainers, eval and
arena (see docs/architecture.md).
"""

__version__ = "0.1.0"
