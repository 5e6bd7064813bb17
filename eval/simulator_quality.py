"""How well a simulator model predicts real users: perplexity of real user turns and termination F1.

Both are read from one forward pass per held-out conversation over its training example
(simulators/flipped.py: intent as system message, real user turns as the simulator's trained
turns, then a final turn holding only `<|endconversation|>`), built in the turn layout the tuned
simulator was trained in (recorded in its wildsim_simulator.json; userlm by default).

Perplexity of real user turns
    PPL = exp(total NLL / total label tokens), summed over all conversations, where the label
    tokens are exactly the example's trained tokens: every real user turn's content tokens and
    its end-of-turn token (with the template's text after it in the userlm layout), plus the
    final `<|endconversation|>` turn likewise; NLL is −log p(token | everything before it) under the model.
    An untuned model is scored with the end token added the same way training adds it
    (embedding copied from EOS), so both models see the same ids.

Termination F1
    Decision points are the moments right after each real assistant turn, where the real user
    either wrote another turn (gold: continue) or left (gold: terminate — only after the last
    assistant turn). At each, p_end = the model's probability that the next user turn starts
    with `<|endconversation|>`; the model predicts terminate iff p_end ≥ threshold (0.5). The
    score is the F1 of the terminate class: 2·TP / (2·TP + FP + FN) (0 when TP + FP + FN = 0
    is impossible here, since every conversation has one gold terminate). Inference guardrails
    (no ending on the first turns) are not applied: this measures the model itself.

`compare_simulators(base, tuned, tasks)` scores an untuned base model and a fine-tuned one on
the same conversations (the demo's simulator stage, wildsim/demo.py, calls it after training).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from corpora.types import Task
from simulators.flipped import END_TOKEN, IGNORE, FlippedExample, build_examples


@dataclass
class F1:
    """Precision, recall and F1 of the positive (terminate) class."""

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float


@dataclass
class SimulatorQuality:
    """Scores of one model on held-out conversations."""

    perplexity: float          # exp(nll / tokens)
    nll: float                 # total negative log-likelihood of the label tokens (nats)
    tokens: int                # label tokens scored
    termination: F1            # F1 of "terminate" at the decision points
    mean_p_end_at_end: float   # mean p_end where the real user left
    mean_p_end_elsewhere: float  # mean p_end where the real user went on (nan if none)
    conversations: int
    skipped: dict[str, int] = field(default_factory=dict)


def perplexity(total_nll: float, tokens: int) -> float:
    """exp(total NLL / tokens); raises on zero tokens (nothing was scored)."""
    if tokens <= 0:
        raise ValueError("perplexity of zero tokens is undefined: no label tokens were scored")
    return math.exp(total_nll / tokens)


def f1_score(predicted: Sequence[bool], gold: Sequence[bool]) -> F1:
    """F1 of the positive class for aligned boolean predictions and gold labels."""
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} gold labels")
    tp = sum(p and g for p, g in zip(predicted, gold))
    fp = sum(p and not g for p, g in zip(predicted, gold))
    fn = sum(g and not p for p, g in zip(predicted, gold))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return F1(tp, fp, fn, precision, recall, f1)


def turn_starts(labels: Sequence[int]) -> list[int]:
    """Positions where a trained span (one model turn) begins: labels[i] != IGNORE and
    (i == 0 or labels[i-1] == IGNORE)."""
    return [i for i, lab in enumerate(labels)
            if lab != IGNORE and (i == 0 or labels[i - 1] == IGNORE)]


def decision_points(labels: Sequence[int], end_id: int) -> tuple[list[int], list[bool]]:
    """The decision points of a flipped example and their gold labels.

    Returns (positions, terminate): positions are the first label token of every model turn but
    the first (the opening is not a decision); terminate[j] is True where that turn is the end
    token. A truncated example without its end turn yields only continue labels."""
    starts = turn_starts(labels)[1:]
    return starts, [labels[i] == end_id for i in starts]


def score_example(logprobs: Any, example: FlippedExample, end_id: int) -> tuple[float, int, list[float], list[bool]]:
    """NLL, label-token count, p_end at the decision points and their gold labels.

    logprobs: (T, V) log-softmax of the model's logits for example.input_ids (row t predicts
    token t+1)."""
    import torch

    labels = torch.tensor(example.labels)
    targets = labels[1:]
    mask = targets != IGNORE
    picked = logprobs[:-1].gather(1, targets.clamp(min=0)[:, None])[:, 0]
    nll = float(-(picked[mask]).sum())
    positions, gold = decision_points(example.labels, end_id)
    p_end = [float(logprobs[p - 1, end_id].exp()) for p in positions]
    return nll, int(mask.sum()), p_end, gold


def score_model(model: Any, examples: Sequence[FlippedExample], end_id: int, *,
                threshold: float = 0.5, skipped: dict[str, int] | None = None) -> SimulatorQuality:
    """Perplexity and termination F1 of `model` on flipped examples (one forward pass each)."""
    import torch
    from tqdm import tqdm

    model.eval()
    device = next(model.parameters()).device
    total_nll, total_tokens, p_end, gold = 0.0, 0, [], []
    with torch.no_grad():
        for ex in tqdm(examples, desc="scoring", unit="conv", leave=False):
            if ex.labels[0] != IGNORE:
                raise ValueError(f"{ex.task_id}: the first token carries a label; nothing predicts it")
            logits = model(input_ids=torch.tensor([ex.input_ids], device=device)).logits[0]
            nll, n, pe, g = score_example(torch.log_softmax(logits.float(), -1).cpu(), ex, end_id)
            total_nll, total_tokens = total_nll + nll, total_tokens + n
            p_end, gold = p_end + pe, gold + g
    at_end = [p for p, g in zip(p_end, gold) if g]
    elsewhere = [p for p, g in zip(p_end, gold) if not g]
    return SimulatorQuality(
        perplexity=perplexity(total_nll, total_tokens), nll=total_nll, tokens=total_tokens,
        termination=f1_score([p >= threshold for p in p_end], gold),
        mean_p_end_at_end=sum(at_end) / len(at_end) if at_end else float("nan"),
        mean_p_end_elsewhere=sum(elsewhere) / len(elsewhere) if elsewhere else float("nan"),
        conversations=len(examples), skipped=dict(skipped or {}))


def load_scoring_model(spec_or_path: str, *, with_end_token: bool) -> tuple[Any, Any]:
    """(model, tokenizer) for scoring: a fine-tuned simulator (engine spec or training output
    folder) when `with_end_token`, else a base model (engine spec or path) to which the end token
    is added as training adds it."""
    from simulators.finetuned import base_model_path, load_simulator_engine
    from simulators.flipped import add_end_token

    if with_end_token:
        engine = load_simulator_engine(spec_or_path)
        return engine.model, engine.tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = base_model_path(spec_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
    add_end_token(model, tokenizer)
    return model, tokenizer


def examples_for(tokenizer: Any, tasks: Sequence[Task], max_length: int,
                 layout: str = "userlm") -> tuple[list[FlippedExample], dict]:
    """Held-out examples in the simulator's turn layout and the counts of what was skipped (and why)."""
    items = [(t.task_id, t.intent, t.conversation) for t in tasks]
    examples, stats = build_examples(tokenizer, items, max_length=max_length, layout=layout)
    return examples, dict(stats.skipped)


def compare_simulators(base: str, tuned: str, tasks: Sequence[Task], *, max_length: int = 1024,
                       threshold: float = 0.5) -> dict[str, SimulatorQuality]:
    """Score the untuned base model (engine spec or path; the end token is added to it) and the
    fine-tuned simulator (engine spec or training output folder) on the same conversations."""
    from simulators.finetuned import recorded_layout

    layout = recorded_layout(tuned)  # both models are scored in the layout the tuned one learnt
    results = {}
    for label, source, tuned_model in (("untuned", base, False), ("tuned", tuned, True)):
        model, tokenizer = load_scoring_model(source, with_end_token=tuned_model)
        examples, skipped = examples_for(tokenizer, tasks, max_length, layout)
        end_id = tokenizer.convert_tokens_to_ids(END_TOKEN)
        results[label] = score_model(model, examples, end_id, threshold=threshold, skipped=skipped)
    return results
