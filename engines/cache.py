"""A resumable disk cache in front of a ChatEngine, for judges and annotators.

`CachedChatEngine(inner, path, key_prefix)` answers each conversation from an append-only JSONL
file when it can and sends only the misses to `inner` (batched, `batch_size` at a time). Each
answer is appended as soon as it arrives and flushed to the operating system, so a process
killed half-way (even SIGKILL) resumes without repeating any call it had received an answer to:
an inner engine with `chat_each(conversations, sampling)` (the HTTP engine) hands over answers
one by one as its requests complete; any other engine hands over a whole batch when `chat`
returns. The file is fsynced after every batch, so a machine crash loses at most the batch in
progress. A last line cut short by a crash is dropped (and reported) when the file is opened.

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
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterator, Sequence

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
            self._ask([conversations[i] for i in batch], [keys[i] for i in batch], sampling)
        return [self.answers[k] for k in keys]

    def _ask(self, conversations: Sequence[Sequence[Message]], keys: Sequence[str],
             sampling: Sampling) -> None:
        """Send one batch of misses to `inner` and save every answer the moment it arrives."""
        chat_each = getattr(self.inner, "chat_each", None)
        saved = 0
        with self._appender() as save:
            if chat_each is not None:
                for j, reply in chat_each(conversations, sampling):
                    save(keys[j], reply)
                    saved += 1
            else:
                replies = self.inner.chat(conversations, sampling)
                if len(replies) != len(keys):
                    raise RuntimeError(f"{self.key_prefix}: inner engine returned {len(replies)} "
                                       f"replies for {len(keys)} conversations")
                for key, reply in zip(keys, replies):
                    save(key, reply)
                    saved += 1
        if saved != len(keys):
            raise RuntimeError(f"{self.key_prefix}: inner engine answered {saved} of "
                               f"{len(keys)} conversations")

    def _keys(self, conversations: Sequence[Sequence[Message]], sampling: Sampling) -> list[str]:
        seen: dict[str, int] = {}
        keys = []
        for conv in conversations:
            base = request_key(self.key_prefix, conv, sampling)
            n = seen[base] = seen.get(base, -1) + 1
            keys.append(base if n == 0 else request_key(self.key_prefix, conv, sampling, n))
        return keys

    @contextmanager
    def _appender(self) -> Iterator[Callable[[str, str], None]]:
        """A `save(key, reply)` that appends one record and flushes it to the operating system
        (it then outlives a killed process); the file is fsynced when the block ends, error or not."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            def save(key: str, reply: str) -> None:
                line = json.dumps({"key": key, "reply": reply}, ensure_ascii=False) + "\n"
                with self._lock:
                    f.write(line)
                    f.flush()
                    self.answers[key] = reply

            try:
                yield save
            finally:
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
