"""Fine-tune a chat model into a user simulator on human user turns (the UserLM recipe).

Run (CPU demo, a few minutes):
    accelerate launch trainers/train_simulator.py --config configs/simulators/demo_cpu.yaml
    wildsim train simulator --config configs/simulators/demo_cpu.yaml --max_steps 20
Published recipe (GPUs; DeepSpeed from configs/accelerate/):
    accelerate launch --config_file configs/accelerate/zero3.yaml trainers/train_simulator.py \\
        --config configs/simulators/qwen14b.yaml

Input: WildChat-schema conversations with an `intent` field (`wildsim data intents`). Output
(`--out`): the LoRA adapter or full model, the tokenizer with `<|endconversation|>`, the effective
config.yaml and the training log; the last line printed is the engine spec that loads it as the
`sftuser` simulator. Every option: `--help`.
"""

from __future__ import annotations

import sys

from corpora.records import DataError
from trainers.sft import SimulatorTrainConfig, train_simulator
from foundation.config import parse_config


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(SimulatorTrainConfig, argv, prog="wildsim train simulator",
                       description=__doc__)
    try:
        result = train_simulator(cfg)
    except (ValueError, FileNotFoundError, DataError) as err:
        print(f"wildsim train simulator: {err}", file=sys.stderr)
        return 2
    print(f"trained on {result.examples} conversations, {result.steps} steps, "
          f"loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}, {result.wall_s:.0f} s"
          if result.losses else f"trained on {result.examples} conversations")
    print(f"saved to {result.out}; simulator engine spec: {result.spec}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
