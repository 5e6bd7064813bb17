"""Supervised fine-tuning of a user simulator on human user turns (the UserLM recipe), with TRL.

`train_simulator(cfg)` loads the base chat model, adds the `<|endconversation|>` token
(embedding initialised from EOS), turns each conversation + intent into a training example
(simulators/flipped.py: loss on the user turns only; the "userlm" turn layout of the published
fine-tuned users by default, roles kept, or the "swapped" layout), and trains with TRL's SFTTrainer on the
pre-tokenised `input_ids` + `labels` columns (TRL leaves a dataset that already has `labels`
as it is and its collator pads labels with -100). LoRA (peft) is the default; full fine-tuning
is `--lora.enabled false`. DeepSpeed ZeRO-2/3 come from the accelerate config the script is
launched with (configs/accelerate/), not from here.

What is saved in `out`:
- LoRA: the adapter (`adapter_model.safetensors`) including the trained rows of the new token
  (peft `trainable_token_indices` on the input embedding, and on the output layer when it is not
  tied), the tokenizer with the new token, and `wildsim_simulator.json` naming the base model.
  Load it with the engine spec ``hf:<base path>@lora=<out>`` (the loader resizes the base
  embeddings to the adapter's tokenizer before attaching the adapter).
  With `save_merged`, OUT/merged also holds the merged full model (``hf:`` or ``vllm:OUT/merged``).
- full: the model and tokenizer (``hf:<out>``).
- both: `config.yaml` (the effective config), `train_log.jsonl` (the trainer's log history) and
  `wildsim_simulator.json` (the engine spec and the turn layout, read by the fine-tuned simulator).
Conversations whose example is longer than `max_length` tokens are dropped and counted, never cut
(a cut would lose the end-of-conversation turn); the published run packed examples to 16,384
tokens instead, which this trainer does not do.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.finetuned import SPEC_FILE, base_model_path
from foundation.config import option, save_config



@dataclass
class LoraOptions:
    """LoRA adapter settings (peft)."""

    enabled: bool = option(True, help="train a LoRA adapter (true) or fine-tune every weight (false); "
                           "the published recipe is full fine-tuning, LoRA needs far less memory")
    r: int = option(16, help="LoRA rank: adapter capacity; memory and adapter size grow linearly with it")
    alpha: int = option(32, help="LoRA scaling numerator (the update is scaled by alpha / r)")
    dropout: float = option(0.05, help="dropout on the LoRA branch during training")
    target_modules: list[str] = option(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        help="names of the linear layers that get adapters (attention and MLP projections of "
             "Llama/Qwen-style models)")

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1:
            raise ValueError(f"lora.r and lora.alpha must be >= 1 (got r={self.r}, alpha={self.alpha})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"lora.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class SimulatorTrainConfig:
    """Fine-tune a chat model to play the user of WildChat-style conversations."""

    model: str = option("builtin:smollm2-135m-instruct",
                        help="base chat model: an engine spec (builtin:NAME, hf:PATH) or a local "
                             "model folder / hub id")
    data: str = option("", help="training conversations with an `intent` field: a WildChat-schema "
                                 "JSON/JSONL/Parquet file or a folder of them (see `wildsim data intents`)")
    split: str = option("", help="keep only records whose `split` field equals this (e.g. train); "
                                 "empty keeps all")
    out: str = option("runs/simulator", help="output folder: adapter or model, tokenizer, config.yaml")
    limit: int = option(0, help="use at most this many conversations (0 = all)")
    max_length: int = option(1024, help="examples longer than this many tokens are dropped whole "
                                        "(counted, never cut); memory grows with it")
    layout: str = option("userlm", help="turn layout: userlm (roles kept, user turns trained, as the "
                                        "published fine-tuned users; needs token ids at "
                                        "inference: a local, vllm: or openai: engine with the "
                                        "tokenizer option) or swapped (user turns as assistant turns; "
                                        "servable by any chat server)")
    epochs: float = option(2.0, help="passes over the training data")
    max_steps: int = option(-1, help="stop after this many optimiser steps (-1 = run all epochs)")
    learning_rate: float = option(2e-5, help="peak learning rate (recipe: 2e-5 full FT; LoRA "
                                             "usually wants ~10x more)")
    min_learning_rate: float = option(2e-6, help="floor of the cosine schedule (recipe: 2e-6)")
    warmup_ratio: float = option(0.1, help="fraction of the steps spent warming the learning rate up")
    global_batch_size: int = option(64, help="conversations per optimiser step over all processes; "
                                             "gradient accumulation is derived from it")
    per_device_batch_size: int = option(1, help="conversations per forward pass on each process; "
                                                "raise it while memory allows")
    weight_decay: float = option(0.0, help="AdamW weight decay")
    gradient_checkpointing: bool = option(False, help="recompute activations in the backward pass: "
                                                      "less memory, ~30% slower")
    dtype: str = option("float32", help="dtype the base weights are loaded in: float32 (CPU, or "
                                         "mixed precision masters) or bfloat16 (large LoRA runs)")
    bf16: bool = option(False, help="train in bfloat16 mixed precision (GPUs; keep false on CPU)")
    cpu: bool = option(False, help="train on the CPU even if a GPU is present")
    save_merged: bool = option(False, help="LoRA only: also save the adapter merged into the base "
                               "as a full model in OUT/merged (serve it with vllm:OUT/merged; vLLM's "
                               "LoRA cannot add the new token)")
    logging_steps: int = option(1, help="log the loss every this many optimiser steps")
    seed: int = option(42, help="seed for data order, dropout and initialisation")
    lora: LoraOptions = option(default_factory=LoraOptions, help="LoRA settings")

    def __post_init__(self) -> None:
        if self.global_batch_size < 1 or self.per_device_batch_size < 1:
            raise ValueError("global_batch_size and per_device_batch_size must be >= 1")
        if self.global_batch_size % self.per_device_batch_size:
            raise ValueError(f"global_batch_size ({self.global_batch_size}) must be a multiple of "
                             f"per_device_batch_size ({self.per_device_batch_size})")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 0 <= self.min_learning_rate <= self.learning_rate:
            raise ValueError("need 0 <= min_learning_rate <= learning_rate (learning_rate > 0)")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.dtype not in ("float32", "bfloat16", "float16", "auto"):
            raise ValueError(f"dtype must be float32, bfloat16, float16 or auto, got {self.dtype!r}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("set epochs > 0 or max_steps > 0")
        if self.layout not in ("userlm", "swapped"):
            raise ValueError(f"layout must be userlm or swapped, got {self.layout!r}")


@dataclass
class TrainResult:
    """What a fine-tuning run produced."""

    out: Path
    spec: str                      # engine spec that loads the simulator back
    examples: int                  # training examples used
    steps: int                     # optimiser steps taken
    losses: list[float] = field(default_factory=list)  # logged training losses, in order
    wall_s: float = 0.0
    data_summary: str = ""


def load_base(cfg: SimulatorTrainConfig) -> tuple[Any, Any, str, int]:
    """The base model and tokenizer with the end token added; also its path and the token's id."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from simulators.flipped import add_end_token

    path = base_model_path(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=cfg.dtype)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    end_id = add_end_token(model, tokenizer)
    return model, tokenizer, path, end_id


def wrap_lora(model: Any, opts: LoraOptions, end_id: int) -> Any:
    """The model with LoRA adapters and a trainable row for the end token (input embedding, and
    output layer when untied; tied ones follow the input row)."""
    from peft import LoraConfig, get_peft_model

    tied = model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    rows = {"embed_tokens": [end_id]} if tied else {"embed_tokens": [end_id], "lm_head": [end_id]}
    config = LoraConfig(r=opts.r, lora_alpha=opts.alpha, lora_dropout=opts.dropout,
                        target_modules=list(opts.target_modules), task_type="CAUSAL_LM",
                        trainable_token_indices=rows)
    return get_peft_model(model, config)


def sft_args(cfg: SimulatorTrainConfig, world_size: int) -> Any:
    """TRL SFTConfig for this run (cosine schedule with a floor; no intermediate checkpoints)."""
    from trl import SFTConfig

    per_step = cfg.per_device_batch_size * world_size
    accumulation = max(1, math.ceil(cfg.global_batch_size / per_step))
    return SFTConfig(
        output_dir=str(Path(cfg.out) / "trainer"), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate, lr_scheduler_type="cosine_with_min_lr",
        # The floor as a ratio: DeepSpeed's optimizer wrapper has no `defaults` to divide by.
        lr_scheduler_kwargs={"min_lr_rate": cfg.min_learning_rate / cfg.learning_rate},
        warmup_steps=cfg.warmup_ratio,
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=accumulation, weight_decay=cfg.weight_decay,
        gradient_checkpointing=cfg.gradient_checkpointing, bf16=cfg.bf16, use_cpu=cfg.cpu,
        logging_steps=cfg.logging_steps, save_strategy="no", report_to="none", seed=cfg.seed,
        max_length=cfg.max_length, dataset_num_proc=None, remove_unused_columns=False,
    )


def _trainer_class(lora: bool) -> type:
    """SFTTrainer, or (for LoRA) a subclass computing the loss from the model's full logits.

    TRL's fused LM head multiplies hidden states by `lm_head.weight` directly; with peft's
    trainable token rows on the output layer that is the frozen base weight, so the end token's
    output row would never learn. The model's own forward applies the trained rows."""
    from transformers import Trainer
    from trl import SFTTrainer

    if not lora:
        return SFTTrainer

    class LoraTokenSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    return LoraTokenSFTTrainer


def train_on_examples(cfg: SimulatorTrainConfig, model: Any, tokenizer: Any, examples: list) -> Any:
    """Run SFTTrainer on the simulator's examples; returns the trainer (its state holds the log history)."""
    from accelerate import PartialState
    from datasets import Dataset

    if not examples:
        raise ValueError("no training examples: check --data/--split and the skipped counts above")
    dataset = Dataset.from_dict({"input_ids": [e.input_ids for e in examples],
                                 "labels": [e.labels for e in examples]})
    trainer = _trainer_class(cfg.lora.enabled)(model=model, args=sft_args(cfg, PartialState().num_processes),
                         train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    return trainer


def save_outputs(cfg: SimulatorTrainConfig, trainer: Any, tokenizer: Any, base_path: str) -> str:
    """Save adapter or model, the tokenizer with the end token and the effective config; return
    the engine spec that loads the simulator back."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.lora.enabled:
        # the new token's rows live in the adapter (trainable tokens); the full embedding matrices
        # need not be saved because the loader resizes the base model to the tokenizer
        trainer.model.save_pretrained(out, save_embedding_layers=False)
        spec = f"hf:{Path(base_path).resolve() if Path(base_path).exists() else base_path}@lora={out.resolve()}"
    else:
        trainer.save_model(str(out))
        spec = f"hf:{out.resolve()}"
    tokenizer.save_pretrained(out)
    if cfg.lora.enabled and cfg.save_merged:
        merged = trainer.model.merge_and_unload()  # the run is over: the peft wrapper is not needed
        merged.save_pretrained(out / "merged")
        tokenizer.save_pretrained(out / "merged")
    with contextlib.suppress(OSError):  # the trainer's own folder, empty without checkpoints
        (out / "trainer").rmdir()
    save_config(cfg, out / "config.yaml")
    with open(out / "train_log.jsonl", "w") as fh:
        for row in trainer.state.log_history:
            fh.write(json.dumps(row) + "\n")
    (out / SPEC_FILE).write_text(json.dumps({"base": base_path, "lora": cfg.lora.enabled,
                                             "spec": spec, "layout": cfg.layout}, indent=1))
    return spec


def train_simulator(cfg: SimulatorTrainConfig, tasks: list | None = None) -> TrainResult:
    """Fine-tune a simulator end to end: load base + end token, build flipped examples from
    `tasks` (or from cfg.data), train, save. Returns where it went and the logged losses."""
    from simulators.flipped import build_examples

    start = time.time()
    if tasks is None:
        tasks = load_training_tasks(cfg)
    model, tokenizer, base_path, end_id = load_base(cfg)
    if cfg.lora.enabled:
        model = wrap_lora(model, cfg.lora, end_id)
    items = [(t.task_id, t.intent, t.conversation) for t in tasks]
    examples, stats = build_examples(tokenizer, items, max_length=cfg.max_length, layout=cfg.layout)
    print(f"[train simulator] {stats.summary()}", flush=True)
    trainer = train_on_examples(cfg, model, tokenizer, examples)
    spec = save_outputs(cfg, trainer, tokenizer, base_path)
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    return TrainResult(Path(cfg.out), spec, len(examples), trainer.state.global_step, losses,
                       time.time() - start, stats.summary())


def load_training_tasks(cfg: SimulatorTrainConfig) -> list:
    """Tasks (with intent and conversation) from cfg.data, filtered by split, up to cfg.limit."""
    from corpora.tasks import read_tasks

    if not cfg.data:
        raise ValueError("--data is required: a WildChat-schema file or folder with intents")
    tasks = read_tasks(cfg.data, split=cfg.split or None)
    return tasks[: cfg.limit] if cfg.limit else tasks
