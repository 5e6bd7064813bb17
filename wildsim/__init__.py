"""wildsim: RL for interactive assistants against user simulators, and simulator evaluation.

This package holds only the plumbing every layer shares and the command-line front door:
- `wildsim.config`: job configs as dataclasses with a help string on every field, loaded from YAML
  plus command-line overrides, validated, and saved beside each run.
- `wildsim.registry`: one small, loud registry per plug-in kind (simulators, rewards, eval tasks).
- `wildsim.cli`: the `wildsim` command; it imports each subcommand's module only when it runs.

The layers themselves are the top-level packages corpora, engines, simulators, rewards, trainers
and eval (see docs/architecture.md).
"""

__version__ = "0.1.0"
