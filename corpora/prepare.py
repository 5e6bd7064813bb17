"""`wildsim data prepare`: validate and filter WildChat, then split it by user into train /
validation / test.

    wildsim data prepare --source sample --out data/sample
    wildsim data prepare --source allenai/WildChat-1M --out data/wildchat --force-test-from allenai/WildBench
    wildsim data prepare --source shards/ --out data/x --strict --max-ngram-repeats 100 --seed 42

Three streaming passes over the source (records are never all held in memory):
  1. validate every record and count the 7-grams of the first user turns (corpora.filters);
  2. apply the filters (non-English, toxic, empty turn, roles not alternating, templated first
     turn) and collect the users of the kept conversations;
  3. split users (corpora.splits: user-disjoint, stratified by country, seeded) and write each
     kept record, unchanged, to OUT/{train,validation,test}.jsonl.
OUT/report.json holds the counts (read = kept + dropped), the drops by reason, and every dropped
record with where it was (file line or row, conversation_hash) and why. With --strict the first
record that fails validation stops the run (exit code 2); without it, such records are dropped as
"schema_error" and listed. An unreadable source is a one-line error, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from corpora import filters
from corpora.records import DataError, dumps
from corpora.splits import DEFAULT_FRACTIONS, DEFAULT_SEED, SPLITS, assign_users, split_counts
from corpora.wildchat import WildChatConversation, check_source, parse_raw, raw_records


@dataclass
class Dropped:
    """One record that was not kept: where it was and why."""

    where: str
    reason: str
    detail: str = ""


@dataclass
class PrepareReport:
    """What `prepare` did; written to OUT/report.json."""

    source: str
    settings: dict[str, Any]
    read: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    forced_test_users: int = 0
    skipped: list[Dropped] = field(default_factory=list)

    def drop(self, where: str, reason: str, detail: str = "") -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self.skipped.append(Dropped(where, reason, detail))

    def summary(self) -> str:
        drops = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
        parts = ", ".join(f"{name} {self.splits.get(name, 0)}" for name in SPLITS)
        return (f"read {self.read}, kept {self.kept} ({parts}), dropped "
                f"{self.read - self.kept} ({drops})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wildsim data prepare", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True,
                        help="'sample' (the bundled sample), a hub name (allenai/WildChat-1M, "
                             "allenai/WildChat-4.8M) or a JSON/JSONL/Parquet file or folder")
    parser.add_argument("--out", required=True, help="output folder for the splits and report.json")
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first record that fails validation (exit code 2)")
    parser.add_argument("--max-ngram-repeats", type=int, default=filters.DEFAULT_MAX_NGRAM_REPEATS,
                        help="drop conversations whose first turn has a 7-gram found in more than "
                             "this many first turns (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split seed (default 42)")
    parser.add_argument("--fractions", type=float, nargs=3, default=list(DEFAULT_FRACTIONS),
                        metavar=("TRAIN", "VAL", "TEST"), help="user shares of the splits "
                                                                "(default 0.89 0.05 0.06)")
    parser.add_argument("--limit", type=int, default=0, help="read at most N records (0 = all)")
    parser.add_argument("--force-test-from", default="",
                        help="a WildBench source ('sample', allenai/WildBench or a file): the users "
                             "of conversations whose hash is one of its session_ids go to test")
    return parser


def _parse(raw, strict: bool) -> WildChatConversation | DataError:
    """The typed conversation, or the error (raised in strict mode)."""
    try:
        return parse_raw(raw)
    except DataError as err:
        if strict:
            raise
        return err


def count_first_turns(source: str, limit: int, strict: bool, max_repeats: int) -> set[int]:
    """Pass 1: validate everything; the frequent 7-grams of the valid first turns."""
    def first_turns():
        for raw in tqdm(raw_records(source, limit), desc="pass 1/3 validate", unit="rec"):
            conv = _parse(raw, strict)
            if isinstance(conv, WildChatConversation):
                yield conv.first_user_turn()
    return filters.frequent_ngrams(first_turns(), max_repeats)


def filter_records(source: str, limit: int, frequent: set[int], report: PrepareReport,
                   sessions: set[str]) -> tuple[dict[int, str], dict[str, str | None], set[str]]:
    """Pass 2: apply the filters. Returns kept record index -> user key, user key -> country,
    and the users of every valid conversation whose hash is in `sessions` (kept or not: such a
    user's other conversations must stay out of train and validation)."""
    kept: dict[int, str] = {}
    users: dict[str, str | None] = {}
    session_users: set[str] = set()
    for raw in tqdm(raw_records(source, limit), desc="pass 2/3 filter", unit="rec"):
        report.read += 1
        conv = _parse(raw, strict=False)
        if isinstance(conv, DataError):
            report.drop(getattr(conv, "where", raw.where), filters.SCHEMA_ERROR, str(conv))
            continue
        if conv.conversation_hash in sessions:
            session_users.add(conv.user_key)
        reason = filters.first_reason(conv) or filters.templated_first_turn(conv, frequent)
        if reason:
            report.drop(conv.where, reason)
            continue
        kept[raw.index] = conv.user_key
        users[conv.user_key] = conv.country
    return kept, users, session_users


def forced_sessions(force_from: str) -> set[str]:
    """The session_ids of a WildBench source (empty when none is given)."""
    if not force_from:
        return set()
    from corpora.wildbench import iter_wildbench

    return {task.session_id for task in iter_wildbench(force_from)}


def write_splits(source: str, limit: int, out: Path, kept: dict[int, str],
                 split_of: dict[str, str]) -> dict[str, int]:
    """Pass 3: copy each kept record, unchanged, into its split's file."""
    counts: Counter[str] = Counter()
    handles = {name: (out / f"{name}.jsonl").open("w", encoding="utf-8") for name in SPLITS}
    try:
        for raw in tqdm(raw_records(source, limit), desc="pass 3/3 write", unit="rec"):
            if raw.index in kept and raw.data is not None:
                name = split_of[kept[raw.index]]
                handles[name].write(dumps(raw.data) + "\n")
                counts[name] += 1
    finally:
        for handle in handles.values():
            handle.close()
    return {name: counts[name] for name in SPLITS}


def prepare(args: argparse.Namespace) -> PrepareReport:
    """Run the three passes and write OUT/report.json; DataError on unusable input."""
    settings = {"strict": args.strict, "max_ngram_repeats": args.max_ngram_repeats,
                "seed": args.seed, "fractions": list(args.fractions), "limit": args.limit,
                "force_test_from": args.force_test_from}
    report = PrepareReport(args.source, settings)
    try:
        assign_users({}, tuple(args.fractions))
    except ValueError as err:
        raise DataError(str(err)) from None
    check_source(args.source)
    sessions = forced_sessions(args.force_test_from)
    frequent = count_first_turns(args.source, args.limit, args.strict, args.max_ngram_repeats)
    kept, users, session_users = filter_records(args.source, args.limit, frequent, report, sessions)
    forced = session_users & set(users)
    split_of = assign_users(users, tuple(args.fractions), args.seed, forced)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report.splits = write_splits(args.source, args.limit, out, kept, split_of)
    report.kept = sum(report.splits.values())
    report.users = split_counts(split_of)
    report.forced_test_users = len(forced)
    (out / "report.json").write_text(json.dumps(asdict(report), indent=1, ensure_ascii=False))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    try:
        report = prepare(args)
    except DataError as err:
        print(f"wildsim data prepare: {err}", file=sys.stderr)
        return 2
    print(report.summary())
    print(f"wrote {args.out}/{{{','.join(SPLITS)}}}.jsonl and {args.out}/report.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
