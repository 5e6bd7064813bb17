"""`wildsim data intents` with the paper protocol (the default), against a real loopback
OpenAI-compatible server: few-shot prompt, whole conversation as `<role>: content`, temperature
0.7, top-p 0.9, a generous token budget; unusable intents dropped and counted."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from simulators.intents import FEW_SHOT, PAPER_MAX_TOKENS, PREFIX, main

LONG = "please help me plan a cheap weekend trip to the mountains " * 20  # > 600 characters
REPLIES = {  # what the server answers, by a word of the conversation
    "mountains": f"<think>The person wants travel planning.</think>\n{PREFIX} plan an affordable short trip.",
    "haiku": "ok",  # unusable: dropped
}


@pytest.fixture()
def server():
    bodies = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            bodies.append(body)
            last = body["messages"][-1]["content"]
            text = next(reply for word, reply in REPLIES.items() if word in last)
            out = json.dumps({"choices": [{"message": {"role": "assistant", "content": text},
                                           "finish_reason": "stop"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", bodies
    httpd.shutdown()
    httpd.server_close()


def record(i, turns):
    return {"conversation_hash": f"h{i}", "conversation": [
        {"role": "user" if k % 2 == 0 else "assistant", "content": t} for k, t in enumerate(turns)]}


def test_paper_protocol_end_to_end(server, tmp_path, capsys):
    url, bodies = server
    src = tmp_path / "train.jsonl"
    records = [record(0, (LONG, "Here is a plan.", "cheaper please", "Done.")),
               record(1, ("write a haiku", "Leaves fall...")),
               record(2, ("", "an assistant turn with no user turn"))]
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "out"
    assert main(["--in", str(src), "--engine", f"openai:{url}#annotator", "--out", str(out)]) == 0

    assert len(bodies) == 2  # the record without a user turn is never asked
    body = next(b for b in bodies if "mountains" in b["messages"][-1]["content"])
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.7, 0.9, PAPER_MAX_TOKENS)
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * len(FEW_SHOT) + ["user"]
    assert len(FEW_SHOT) == 3 and all(m["content"].startswith(PREFIX) for m in messages[2:7:2])
    assert messages[-1]["content"] == ("Conversation:\nuser: " + LONG.strip() + "\nassistant: Here is "
                                       "a plan.\nuser: cheaper please\nassistant: Done.")

    written = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert [r["conversation_hash"] for r in written] == ["h0"]
    assert written[0]["intent"] == f"{PREFIX} plan an affordable short trip."
    summary = json.loads((out / "intents_summary.json").read_text())
    assert (summary["records"], summary["kept"], summary["fallback"], summary["no_user_turn"]) == (3, 1, 1, 1)
    assert summary["dropped"] == ["train.jsonl record 1", "train.jsonl record 2"]
    assert "2 dropped, 1 written" in capsys.readouterr().out
