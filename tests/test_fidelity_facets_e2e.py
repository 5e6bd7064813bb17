"""`wildsim eval fidelity --representation facets` end to end, with the annotator served by an
OpenAI-compatible server on 127.0.0.1 (started here) that describes each conversation's user by
the style of its first turn; the annotator cache makes the second run call the server no more."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eval.fidelity import main
from tests.fidelity_fixtures import write_set


def describe(prompt: str) -> str:
    """The scripted annotator: one behaviour description per planted behaviour."""
    convo = prompt.split("USER: ", 1)[1]
    if any(code in convo for code in ("def f(", "for (int", "SELECT *")):
        return "I would rather not describe this conversation."  # the planted annotator failure
    if "!!!" in convo:
        style, acts = "Shouts in capital letters with many exclamation marks; hostile.", "reject"
    elif "please" in convo.lower():
        style, acts = "Formal, polite and verbose, with greetings and full sentences.", "request"
    else:
        style, acts = "Terse lower-case fragments with misspellings and no punctuation.", "directive"
    return json.dumps({"requests": f"Makes a {acts} about an artefact.",
                       "responses": "Does not react to the outputs.", "context": "Little context.",
                       "style": style, "damsl": [acts, acts], "sgd": [["REQUEST"], ["REQUEST"]]})


@pytest.fixture()
def annotator_url():
    calls = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls.append(1)
            reply = {"choices": [{"message": {"role": "assistant",
                                              "content": describe(body["messages"][-1]["content"])},
                                  "finish_reason": "stop"}]}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", calls
    httpd.shutdown()
    httpd.server_close()


def test_facets_end_to_end_with_cache(tmp_path, annotator_url):
    url, calls = annotator_url
    write_set(tmp_path / "real.jsonl", ["terse", "polite", "shouty"], 60, seed=1)
    write_set(tmp_path / "same.jsonl", ["terse", "polite", "shouty"], 60, seed=2)
    write_set(tmp_path / "lacks.jsonl", ["terse", "polite"], 60, seed=3)
    argv = ["--real", str(tmp_path / "real.jsonl"), "--simulated", f"same={tmp_path / 'same.jsonl'}",
            "--simulated", f"lacks={tmp_path / 'lacks.jsonl'}", "--representation", "facets",
            "--annotator", f"openai:{url}#annotator", "--k", "6", "--bootstrap", "100",
            "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    first_calls = len(calls)
    assert 0 < first_calls <= 180  # identical conversations across sets are answered once
    result = json.loads((tmp_path / "out" / "fidelity.json").read_text())
    assert result["view"] == "combined" and result["annotator"].startswith("openai:")
    assert result["annotation"] == {name: {"annotated": 60, "failed": 0, "retried": 0,
                                           "failure_reasons": {}} for name in ("real", "same", "lacks")}
    assert "Annotator: real 60 annotated, 0 failed, 0 retried;" in \
        (tmp_path / "out" / "report.md").read_text()
    assert set(result["per_view"]) == {"requests", "responses", "context", "style", "damsl", "sgd"}
    sims = result["simulators"]
    assert sims["lacks"]["forward_kl"] > 5 * max(sims["same"]["forward_kl"], 0.01)
    missed = [r for r in result["clusters"]["lacks"]["rows"] if r["label"] == "missed"]
    assert missed and any(t in missed[0]["terms"] for t in ("shouts", "exclamation", "capital", "hostile", "reject"))
    # the constant facet cannot tell the sets apart
    assert result["per_view"]["responses"]["simulators"]["lacks"]["js"] == pytest.approx(0.0, abs=1e-9)
    assert main(argv) == 0 and len(calls) == first_calls  # resumed entirely from the cache


def test_a_set_the_annotator_cannot_describe_is_an_error_naming_why(tmp_path, annotator_url, capsys):
    url, _ = annotator_url
    write_set(tmp_path / "real.jsonl", ["terse", "polite"], 10, seed=1)
    write_set(tmp_path / "coder.jsonl", ["code"], 10, seed=2)
    argv = ["--real", str(tmp_path / "real.jsonl"), "--simulated", f"coder={tmp_path / 'coder.jsonl'}",
            "--representation", "facets", "--annotator", f"openai:{url}#annotator",
            "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "coder" in err and "'annotation_failed': 10" in err
    assert "{'no JSON object': 10}" in err
