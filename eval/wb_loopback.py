"""A rule-based WildBench judge on a loopback OpenAI-compatible server, to show how the three
protocols (wildsim / official / paper) move the numbers on the same verdict-making rule.

    python -m eval.wb_loopback --out runs/wb_protocols
    python -m eval.wb_loopback --out runs/wb_protocols --model-a builtin:smollm2-135m-instruct

The judge is not a language model: it reads the prompt it is sent (either prompt family), takes
the task's checklist, and scores a response by checklist coverage — the share of the checklist's
content words (4+ letters) that appear in the response. Pairwise: the coverage gap d = cov(A) −
cov(B) gives A++ / A+ / A=B / B+ / B++ at |d| > 0.15 / > 0.03 / else; a near-tie (|d| ≤ 0.03)
is answered "A+" (a position bias, which judging both orders cancels and one order does not).
Score: round(1 + 9·coverage). Checklist: an item is satisfied when half of its content words
appear. Replies use the JSON keys of the prompt they answer. The judge is deterministic, so the
differences between protocol runs come from the protocols alone (orders, tag groups, skip rules,
denominators, units, parsing), never from judge noise. The run writes OUT/<mode>-<protocol>/ for
each run and prints one summary table (docs/evaluation.md records one).

The default model under test, `terse`, needs no model either: its answer to each task is the
first `--terse-words` space-separated pieces of the task's gpt-4 reference (stored as
OUT/terse.json and read through `file:`), compared with the full reference (`ref:gpt-4`). Any
engine spec can replace it (`--model-a builtin:smollm2-135m-instruct` generates real answers).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Sequence

_WORD = re.compile(r"[a-z]{4,}")
RUNS = (("reward", "wildsim"), ("reward", "official"), ("reward", "paper"),
        ("score", "wildsim"), ("score", "official"), ("checklist", "wildsim"),
        ("checklist", "paper"))


def coverage(response: str, checklist: Sequence[str]) -> float:
    """Share of the checklist's distinct content words (4+ letters) found in the response."""
    wanted = {w for item in checklist for w in _WORD.findall(item.lower())}
    have = set(_WORD.findall(response.lower()))
    return len(wanted & have) / len(wanted) if wanted else 0.0


def pair_label(cov_a: float, cov_b: float) -> str:
    """The rule's label for coverages of A and B (near-ties lean to A)."""
    d = cov_a - cov_b
    if abs(d) <= 0.03:
        return "A+"
    strength = "++" if abs(d) > 0.15 else "+"
    return ("A" if d > 0 else "B") + strength


def _between(text: str, start: str, end: str) -> str | None:
    m = re.search(re.escape(start) + r"\n*(.*?)\n*" + re.escape(end), text, re.S)
    return m.group(1) if m else None


def _checklist(text: str) -> list[str]:
    block = _between(text, "<|begin_of_checklist|>", "<|end_of_checklist|>")
    if block is not None:
        return [line[2:] for line in block.splitlines() if line.startswith("- ")]
    block = re.search(r"## Checklist[^\n]*\n(.*?)\n\n##", text, re.S)
    return [re.sub(r"^\d+\.\s*", "", s) for s in block.group(1).splitlines()] if block else []


def judge_reply(prompt: str) -> str:
    """The rule-based judge's reply to one WildBench prompt (either prompt family)."""
    checklist = _checklist(prompt)
    official = "<|begin_of_query|>" in prompt
    a = _between(prompt, "<|begin_of_response_A|>", "<|end_of_response_A|>") \
        or _between(prompt, "=== BEGIN RESPONSE A ===", "=== END RESPONSE A ===")
    if a is not None:
        b = _between(prompt, "<|begin_of_response_B|>", "<|end_of_response_B|>") \
            or _between(prompt, "=== BEGIN RESPONSE B ===", "=== END RESPONSE B ===") or ""
        label = pair_label(coverage(a, checklist), coverage(b, checklist))
        keys = (("analysis of A", "analysis of B", "reason of A=B", "reason of A>B",
                 "reason of B>A") if official else ("analysis_a", "analysis_b", "reasons"))
        return json.dumps({**{k: "checklist coverage" for k in keys}, "choice": label})
    response = _between(prompt, "<|begin_of_response|>", "<|end_of_response|>") \
        or _between(prompt, "=== BEGIN RESPONSE ===", "=== END RESPONSE ===") or ""
    if '"items"' in prompt:
        items = [{"item": i, "analysis": "word match",
                  "satisfied": coverage(response, [c]) >= 0.5} for i, c in enumerate(checklist, 1)]
        return json.dumps({"items": items})
    score = round(1 + 9 * coverage(response, checklist))
    return json.dumps({"strengths": "-", "weaknesses": "-",
                       "score": str(score) if official else score})


class LoopbackJudge:
    """The rule-based judge behind POST /v1/chat/completions on 127.0.0.1 (any model name)."""

    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "LoopbackJudge":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def spec(self, name: str) -> str:
        return f"openai:http://127.0.0.1:{self.httpd.server_address[1]}/v1#{name}"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = judge_reply(body["messages"][-1]["content"])
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data.encode())))
        self.end_headers()
        self.wfile.write(data.encode())


def headline(result: dict, mode: str) -> dict[str, Any]:
    """The numbers a run reports first, in its protocol's units."""
    if mode == "score":
        s = next(iter(result["models"].values()))["summary"]
        return {"mean": s["mean"]["mean"], "task_macro": s["task_macro"], "n": s["n_scored"]}
    s = next(iter(result["references"].values()))["summary"]
    if mode == "checklist":
        return {"win_rate": s["win_rate"]["rate"], "wins_over_n": s["wins_over_n"],
                "n": s["n_scored"], "left_out_items": s["left_out_items"]}
    return {"mean": s["mean"]["mean"], "task_macro": s["task_macro"], "win_rate":
            s["win_rate"]["rate"], "wins_over_n": s["wins_over_n"], "n": s["n_scored"],
            "skipped": s["n_skipped"], "dropped": s["n_dropped"]}


def main(argv: Sequence[str] | None = None) -> int:
    from eval import wildbench

    parser = argparse.ArgumentParser(prog="python -m eval.wb_loopback", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/wb_protocols", help="output folder")
    parser.add_argument("--model-a", default="terse",
                        help="engine spec of the model under test (answers cached), or 'terse'")
    parser.add_argument("--terse-words", type=int, default=60,
                        help="'terse' answers: this many leading pieces of the gpt-4 reference")
    parser.add_argument("--model-b", default="ref:gpt-4", help="the reference")
    parser.add_argument("--data", default="sample", help="WildBench data (default: the sample)")
    parser.add_argument("--gen-max-tokens", type=int, default=128, help="response budget")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_a = args.model_a
    if model_a == "terse":
        model_a = "file:" + str(write_terse(args.data, args.terse_words, out / "terse.json"))
    rows = []
    with LoopbackJudge() as judge:
        for mode, protocol in RUNS:
            run_out = out / f"{mode}-{protocol}"
            _share_generations(out, run_out)
            judges = [judge.spec(f"rule-{i}") for i in range(3 if mode == "checklist" else 1)]
            code = wildbench.main(["--model-a", model_a, "--model-b", args.model_b,
                                   *[a for j in judges for a in ("--judge", j)],
                                   "--data", args.data, "--mode", mode, "--protocol", protocol,
                                   "--gen-max-tokens", str(args.gen_max_tokens),
                                   "--out", str(run_out), "--n-boot", "200"])
            if code != 0:
                return code
            result = json.loads((run_out / "wildbench.json").read_text())
            rows.append({"mode": mode, "protocol": protocol, **headline(result, mode)})
    (out / "summary.json").write_text(json.dumps(rows, indent=1))
    for row in rows:
        print(json.dumps(row))
    return 0


def write_terse(data: str, words: int, path: Path) -> Path:
    """The `terse` answers: each task's gpt-4 reference cut to its first `words` pieces."""
    from corpora.wildbench import load_wildbench

    records = [{"session_id": t.session_id,
                "output": " ".join(t.references.get("gpt-4", "").split(" ")[:words])}
               for t in load_wildbench(data)]
    path.write_text(json.dumps(records, ensure_ascii=False))
    return path


def _share_generations(out: Path, run_out: Path) -> None:
    """Copy the responses generated by earlier runs into this run's cache (same keys are reused)."""
    (run_out / "cache").mkdir(parents=True, exist_ok=True)
    target = run_out / "cache" / "generations.jsonl"
    if target.exists():
        return
    for earlier in sorted(out.glob("*/cache/generations.jsonl")):
        if earlier != target:
            with target.open("a", encoding="utf-8") as fh:
                fh.write(earlier.read_text(encoding="utf-8"))


if __name__ == "__main__":
    raise SystemExit(main())
