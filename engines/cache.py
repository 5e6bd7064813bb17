"""A resumable disk cache in front of a ChatEngine, for judges and annotators.

`CachedChatEngine(inner, path, key_prefix)` answers each conversation from an append-only JSONL
file when it can and sends only the misses to `inner` (batched, `batch_size` at a time). Each
answer is written as soon as its batch returns, with flush + fsync, so a run killed half-way
resumes without repeating any finished call. A last line cut short by a kill is dropped (and
reported) when the file is opened.

Key: sha256 of (key_prefix, the conversation's messages, the sampling settings, and the
occurrence number of that same request within the call). The occurrence number keeps identical
requests inside one call distinct, so sampled duplicates still get their own answers. Change
`key_prefix` (e.g. to the engine spec plus a prompt version) whenever answers should not be reused.
Seeds: the key holds the sampling settings, not a request's position in the batch, so a backend
that varies the seed by position (HTTP, vLLM) may answer a resumed run's misses differently than
an uninterrupted run would; at temperature 0 this does not matter.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from corpora.types import Message
from engines.base import ChatEngine, Sampling

log = logging.getLogger(__name__)


def request_key(key_prefix: str, conversation: Sequence[Message], sampling: Sampling,
                occurrence: int = 0) -> str:
    """The cache key (hex sha256) of one chat request."""
    payload = {
        "prefix": key_prefix,
        "messages": [m.as_dict() if isinstance(m, Message) else dict(m) for m in conversation],
        "sampling": asdict(sampling),
        "occurrence": occurrence,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class CachedChatEngine:
    """ChatEngine that answers from a JSONL cache file and forwards only misses to `inner`.

    inner:      the engine doing the real work
    path:       the JSONL cache file (created, with its folder, if missing)
    key_prefix: what makes answers of this engine/prompt distinct (default: inner.name)
    batch_size: misses per inner call; answers are saved after each batch
    Counters: `hits` and `misses` over this object's lifetime; `dropped_lines` when opening.
    """

    def __init__(self, inner: ChatEngine, path: str | Path, key_prefix: str | None = None, *,
                 batch_size: int = 64):
        prefix = key_prefix if key_prefix is not None else getattr(inner, "name", None)
        if not prefix:
            raise ValueError("CachedChatEngine needs key_prefix (e.g. the engine spec) for an inner "
                             "engine without a `name`")
        self.inner, self.path, self.key_prefix = inner, Path(path), prefix
        self.batch_size = batch_size
        self.name = f"cached({prefix})"
        self.hits = self.misses = 0
        self._lock = threading.Lock()
        self.answers, self.dropped_lines = load_cache(self.path)

    def __repr__(self) -> str:
        return f"CachedChatEngine({self.key_prefix!r}, path={str(self.path)!r}, size={len(self.answers)})"

    def chat(self, conversations: Sequence[Sequence[Message]], sampling: Sampling) -> list[str]:
        """One reply per conversation, in order: cached ones from disk, the rest from `inner`."""
        keys = self._keys(conversations, sampling)
        missing = [i for i, k in enumerate(keys) if k not in self.answers]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        batches = [missing[s:s + self.batch_size] for s in range(0, len(missing), self.batch_size)]
        for batch in tqdm(batches, desc=f"chat {self.key_prefix}", disable=len(batches) < 2):
            replies = self.inner.chat([conversations[i] for i in batch], sampling)
            if len(replies) != len(batch):
                raise RuntimeError(f"{self.key_prefix}: inner engine returned {len(replies)} replies "
                                   f"for {len(batch)} conversations")
            self._save([(keys[i], r) for i, r in zip(batch, replies)])
        return [self.answers[k] for k in keys]

    def _keys(self, conversations: Sequence[Sequence[Message]], sampling: Sampling) -> list[str]:
        seen: dict[str, int] = {}
        keys = []
        for conv in conversations:
            base = request_key(self.key_prefix, conv, sampling)
            n = seen[base] = seen.get(base, -1) + 1
            keys.append(base if n == 0 else request_key(self.key_prefix, conv, sampling, n))
        return keys

    def _save(self, records: list[tuple[str, str]]) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                for key, reply in records:
                    f.write(json.dumps({"key": key, "reply": reply}, ensure_ascii=False) + "\n")
                    self.answers[key] = reply
                f.flush()
                os.fsync(f.fileno())


def load_cache(path: Path) -> tuple[dict[str, str], int]:
    """Read a cache file into {key: reply}; returns (answers, number of unreadable lines dropped).

    A last line without its newline (a write cut short) is removed from the file so that new
    records start on a fresh line; other unreadable lines are skipped and reported.
    """
    answers: dict[str, str] = {}
    if not path.exists():
        return answers, 0
    data = path.read_bytes()
    dropped = 0
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(keep)
        log.warning("%s: dropped an incomplete last record (%d bytes)", path, len(data) - keep)
        data, dropped = data[:keep], 1
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            answers[record["key"]] = record["reply"]
        except (ValueError, KeyError, TypeError):
            dropped += 1
            log.warning("%s:%d: unreadable cache record skipped", path, number)
    return answers, dropped
