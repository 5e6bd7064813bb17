"""Judge prompts of the `official` protocol: the section order and JSON keys of the allenai/WildBench
pairwise (v2) and score (v2) templates, in this project's own words.

Section order: instruction; the conversation (history as one string, the current query, response A
and response B — or the one response); the checklist as a guide; the rules with the five labels (or
the 1–10 bands); the output format. Pairwise keys: "analysis of A", "analysis of B", "reason of A=B",
"reason of A>B", "reason of B>A", "choice"; score keys: "strengths", "weaknesses", "score".
Pairwise prompts cut the history string, the query and each response to their first 1,000
space-separated pieces with "... (truncated)" appended (responses arrive already cut, see
eval.wb_protocol.shown_response); score prompts cut nothing, as the official score runs.
"""

from __future__ import annotations

from typing import Sequence

from corpora.types import Message
from eval.wb_prompts import JudgeContext
from eval.wb_protocol import cut_pieces

PAIR_KEYS = ("analysis of A", "analysis of B", "reason of A=B", "reason of A>B", "reason of B>A",
             "choice")
SCORE_KEYS = ("strengths", "weaknesses", "score")


def history_string(history: Sequence[Message]) -> str:
    """The earlier turns as one string of "USER: …" / "ASSISTANT: …" paragraphs."""
    return "\n\n".join(f"{m.role.upper()}: {m.content}" for m in history)


def _conversation(ctx: JudgeContext, cut: bool) -> str:
    history, query = history_string(ctx.history), ctx.query
    if cut:
        history, query = cut_pieces(history), cut_pieces(query)
    return ("# The conversation between the user and the AI\n\n"
            f"## History\n<|begin_of_history|>\n\n{history}\n\n<|end_of_history|>\n\n"
            f"## Current user query\n<|begin_of_query|>\n\n{query}\n\n<|end_of_query|>\n\n")


def _checklist(ctx: JudgeContext) -> str:
    items = "\n".join(f"- {c}" for c in ctx.checklist)
    return ("# Evaluation\n\n## Checklist\n<|begin_of_checklist|>\n\n" + items +
            "\n\n<|end_of_checklist|>\n\nLet the checklist guide the evaluation without limiting "
            "it.\n\n")


def official_pairwise_prompt(ctx: JudgeContext, shown_a: str, shown_b: str) -> str:
    """The pairwise prompt (responses already as shown: stripped, cut, or the placeholder)."""
    keys = ",\n".join(f'    "{k}": "[...]"' for k in PAIR_KEYS[:-1])
    return (
        "# Instruction\n\nYou are an expert evaluator of AI assistants. Read the conversation "
        "history and the current user query carefully, then judge the quality of two responses "
        "to the query (Response A and Response B) by the rules below.\n\n"
        + _conversation(ctx, cut=True) +
        f"## Response A\n<|begin_of_response_A|>\n\n{shown_a}\n\n<|end_of_response_A|>\n\n"
        f"## Response B\n<|begin_of_response_B|>\n\n{shown_b}\n\n<|end_of_response_B|>\n\n"
        + _checklist(ctx) +
        "## Rules\n\nCompare the two responses given your analysis of the query and the "
        "history. Write your analysis first, then choose one of five labels:\n"
        "- A++: Response A is much better than Response B.\n"
        "- A+: Response A is slightly better than Response B.\n"
        "- A=B: both are of the same quality (choose this rarely).\n"
        "- B+: Response B is slightly better than Response A.\n"
        "- B++: Response B is much better than Response A.\n\n"
        "## Output format\n\nAnalyse each response, summarise where they are equal, where A is "
        "better and where B is better, then give the label. Answer with this JSON object only, "
        "the placeholders filled in:\n{\n" + keys + ',\n    "choice": "[one label]"\n}'
    )


def official_score_prompt(ctx: JudgeContext, response: str) -> str:
    """The score prompt: strengths, weaknesses, then a score from 1 to 10 (nothing is cut)."""
    return (
        "# Instruction\n\nYou are an expert evaluator of AI assistants. Read the conversation "
        "history and the current user query carefully, then judge the quality of one response "
        "to the query by the rules below.\n\n"
        + _conversation(ctx, cut=False) +
        f"## AI response\n<|begin_of_response|>\n\n{response}\n\n<|end_of_response|>\n\n"
        + _checklist(ctx) +
        "## Rules\n\nScore the response from 1 (very poor) to 10 (perfect):\n"
        "- 1~2: very poor, makes no sense.\n"
        "- 3~4: poor, does not help the user solve the problem in a meaningful way.\n"
        "- 5~6: fair, with issues such as factual errors, hallucinations or missing key "
        "information.\n"
        "- 7~8: good, but could be improved.\n"
        "- 9~10: perfect, helps the user solve the problem.\n\n"
        "## Output format\n\nAnswer with this JSON object only, the placeholders filled in:\n"
        '{\n    "strengths": "[...]",\n    "weaknesses": "[...]",\n    "score": "[1~10]"\n}'
    )
