"""`wildsim data prepare`: validate and filter WildChat, then split it by user into train /
validation / test.

    wildsim data prepare --source sample --out data/sample
    wildsim data prepare --source allenai/WildChat-1M --out data/wildchat --force-test-from allenai/WildBench
    wildsim data prepare --source shards/ --out data/x --strict --max-ngram-repeats 100 --seed 42

Three streaming passes over the source (records are never all held in memory):
  1. validate every record and count the 7-grams of the deduplicated English first user turns
     (corpora.filters);
  2. drop repeats of a conversation_hash already seen (the first record is kept), apply the
     filters (non-English, toxic, empty turn, roles not alternating, templated first turn) and
     collect the users (hashed_ip) of the kept conversations and their countries;
  3. split users (corpora.splits: user-disjoint, stratified by each user's most frequent country,
     seeded) and write each kept record, unchanged, to OUT/{train,validation,test}.jsonl.
Validation requires only the conversation (role and content per utterance) and the top-level
hashed_ip (corpora.wildchat); other WildChat fields are type-checked when present and never
required. OUT/report.json holds the counts (read = kept + dropped), the drops by reason, every
dropped record with where it was (file line or row, conversation_hash) and why, and
`missing_optional`: for each optional field, how many valid records lack it. With --strict the first
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
    missing_optional: dict[str, int] = field(default_factory=dict)
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
    """Pass 1: validate everything; the frequent 7-grams of the deduplicated English first turns."""
    def first_turns():
        seen: set[str] = set()
        for raw in tqdm(raw_records(source, limit), desc="pass 1/3 validate", unit="rec"):
            conv = _parse(raw, strict)
            if isinstance(conv, WildChatConversation) and conv.conversation_hash not in seen:
                seen.add(conv.conversation_hash)
                if not filters.non_english(conv):
                    yield conv.first_user_turn()
    return filters.frequent_ngrams(first_turns(), max_repeats)


@dataclass
class KeptUsers:
    """What pass 2 collects: kept record index -> user, each user's country counts, and the users
    of every valid conversation whose hash is a forced session (kept or not: such a user's other
    conversations must stay out of train and validation)."""

    records: dict[int, str] = field(default_factory=dict)
    countries: dict[str, Counter] = field(default_factory=dict)
    session_users: set[str] = field(default_factory=set)

    def home_countries(self) -> dict[str, str | None]:
        """Each user's most frequent country over its kept conversations (ties: the
        alphabetically first; None when it never has one)."""
        return {user: (min(c, key=lambda k: (-c[k], k)) if c else None)
                for user, c in self.countries.items()}


def filter_records(source: str, limit: int, frequent: set[int], report: PrepareReport,
                   sessions: set[str]) -> KeptUsers:
    """Pass 2: drop repeated hashes, apply the filters, collect users (see KeptUsers)."""
    kept = KeptUsers()
    seen: set[str] = set()
    missing: Counter[str] = Counter()
    for raw in tqdm(raw_records(source, limit), desc="pass 2/3 filter", unit="rec"):
        report.read += 1
        conv = _parse(raw, strict=False)
        if isinstance(conv, DataError):
            report.drop(getattr(conv, "where", raw.where), filters.SCHEMA_ERROR, str(conv))
            continue
        missing.update(conv.missing)
        if conv.conversation_hash in sessions:
            kept.session_users.add(conv.user_key)
        if conv.conversation_hash in seen:
            report.drop(conv.where, filters.DUPLICATE)
            continue
        seen.add(conv.conversation_hash)
        reason = filters.first_reason(conv) or filters.templated_first_turn(conv, frequent)
        if reason:
            report.drop(conv.where, reason)
            continue
        kept.records[raw.index] = conv.user_key
        countries = kept.countries.setdefault(conv.user_key, Counter())
        if conv.country:
            countries[conv.country] += 1
    report.missing_optional = dict(sorted(missing.items()))
    return kept


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
    kept = filter_records(args.source, args.limit, frequent, report, sessions)
    users = kept.home_countries()
    forced = kept.session_users & set(users)
    split_of = assign_users(users, tuple(args.fractions), args.seed, forced)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report.splits = write_splits(args.source, args.limit, out, kept.records, split_of)
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
