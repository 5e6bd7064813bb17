"""The ground floor every layer stands on: job configs and plug-in registries.

- `foundation.config`: job configs as dataclasses with a help string on every field, loaded from
  YAML plus command-line overrides, validated, and saved beside each run.
- `foundation.registry`: one small, loud registry per plug-in kind (simulators, rewards, eval tasks).

It imports nothing from the project: corpora, engines, simulators, rewards, trainers, eval, arena
and the `wildsim` command all import it, never the other way round (docs/architecture.md).
"""
