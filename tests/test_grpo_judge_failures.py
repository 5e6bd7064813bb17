"""Judge failures during GRPO: counted every step, and an episode whose every judge failed is left
out of the loss (zero advantage, not in its group's statistics) instead of trained on 0.0.

The end-to-end test serves the judge from a real OpenAI-compatible server on loopback that answers
the first verdict request of each task with a score and every later one with text that holds no
score: in each group of two episodes one is scored and one is unscorable. Left out, the unscorable
episode leaves its group one real reward, so every advantage is 0 and the LoRA weights cannot move;
trained on the 0.0 fallback, the groups would have advantages of ±1 and the weights would move."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from corpora.types import Episode, Task
from rewards.base import RewardResult
from trainers.grpo import episode_metrics, episode_reward_func, judge_failures, reward_failure_metrics


def _judge_details(valid: int, failures: int) -> dict:
    return {"judges": [], "valid_judges": valid, "parse_failures": failures,
            "mean_score": None if valid == 0 else 5.0, "fallback_used": valid == 0}


def test_failure_counts_by_hand():
    assert judge_failures(_judge_details(0, 2)) == (2, 1, True)
    assert judge_failures(_judge_details(1, 1)) == (1, 0, True)
    assert judge_failures({"words": 4}) == (0, 0, False)
    nested = {"components": {"a": {"details": _judge_details(0, 2)},
                             "b": {"details": _judge_details(1, 1)}}}
    assert judge_failures(nested) == (3, 1, True)
    details = [_judge_details(2, 0), _judge_details(1, 1), {**_judge_details(0, 2), "excluded": True}]
    assert reward_failure_metrics(details) == {"reward/excluded": 1.0,
                                               "reward/judge_parse_failures": 3.0,
                                               "reward/all_judges_failed": 1.0}
    assert reward_failure_metrics([{"words": 3}]) == {"reward/excluded": 0.0}


def test_reward_function_returns_none_for_excluded_episodes_and_metrics_skip_them():
    class Scripted:
        name = "judge"

        def score(self, episodes):
            return [RewardResult(0.8, _judge_details(2, 0)), RewardResult(0.0, _judge_details(0, 2), excluded=True),
                    RewardResult(0.4, _judge_details(1, 1))]

    episodes = [Episode(task=Task(task_id=f"t{i}", intent="x"), simulator="s") for i in range(3)]
    assert episode_reward_func(Scripted())([], [], episodes=episodes) == [0.8, None, 0.4]
    assert episodes[1].reward is None and episodes[1].reward_details["excluded"] is True
    records = [{**ep.to_record(), "messages": []} for ep in episodes]
    metrics = episode_metrics(records)
    assert metrics["reward/mean"] == pytest.approx(0.6) and metrics["reward/min"] == 0.4
    assert metrics["reward/excluded"] == 1 and metrics["reward/all_judges_failed"] == 1
    assert metrics["reward/judge_parse_failures"] == 3


class FirstOnlyJudgeServer:
    """/v1/chat/completions: the first request naming a task ("item N" in the transcript) gets a
    verdict with a score; every later one gets text with no score (a parse failure)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = body["messages"][-1]["content"]
                found = re.search(r"item (\d+)", text)
                item = found.group(0) if found else ""
                with server.lock:
                    n = server.seen[item] = server.seen.get(item, 0) + 1
                content = ('{"rationale": "fine", "score": 7}' if n == 1
                           else "I would rather not say.")
                payload = json.dumps({"choices": [{"message": {"role": "assistant",
                                                               "content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@pytest.mark.slow
def test_episodes_every_judge_failed_on_are_not_trained_on(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file

    from rewards.judge import JudgeReward
    from trainers.train_rl import TrainRLConfig, run_training
    from foundation.config import from_dict

    server = FirstOnlyJudgeServer()
    try:
        reward = JudgeReward([f"openai:{server.url}#judge"], max_words=50)
        (tmp_path / "zoo.yaml").write_text(
            "simulators:\n  tiny-roleplay:\n    kind: roleplay\n"
            f"    engine: hf:{tiny_model_dir}\n"
            "    sampling: {temperature: 1.0, max_tokens: 4}\n    options: {opening: real}\n")
        tasks = [Task(task_id=f"t{i}", intent=f"You want help with item {i}",
                      opening=f"hello, item {i} please") for i in range(2)]
        cfg = from_dict(TrainRLConfig, {
            "policy": {"model": str(tiny_model_dir), "lora": {"r": 4, "alpha": 8}},
            "simulator": {"name": "tiny-roleplay", "zoo": str(tmp_path / "zoo.yaml")},
            "rollout": {"max_turns": 1, "max_tokens": 6},
            "grpo": {"steps": 1, "prompts_per_step": 2, "num_generations": 2,
                     "per_device_batch_size": 4, "learning_rate": 0.05},
            "out": str(tmp_path / "run"), "threads": 1, "cpu": True})
        result = run_training(cfg, tasks=tasks, reward=reward)
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    out = tmp_path / "run"
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    (row,) = [r for r in rows if "reward/mean" in r]  # the other row is the end-of-run summary
    assert row["reward/excluded"] == 2 and row["reward/all_judges_failed"] == 2
    assert row["reward/judge_parse_failures"] == 2
    records = [json.loads(x) for x in (out / "transcripts.jsonl").read_text().splitlines()]
    assert sorted(str(r["reward"]) for r in records) == ["0.7", "0.7", "None", "None"]
    assert all(r["reward_details"].get("excluded") for r in records if r["reward"] is None)
    # TRL's own reward statistics leave the excluded episodes out (0.7, not a mean with 0.0)
    assert row["reward/mean"] == pytest.approx(0.7) and row["trl/reward"] == pytest.approx(0.7)
    assert result.rewards == [pytest.approx(0.7)]
    # every advantage was 0, so one Adam update left the LoRA weights where they started (B = 0)
    weights = load_file(str(out / "final" / "adapter_model.safetensors"))
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and all(float(w.abs().max()) == 0.0 for w in lora_b)
