"""arena: the human-study web app. Participants compare two anonymous assistants turn by turn
(FastAPI + Jinja2 pages, votes in SQLAlchemy/Alembic-managed SQLite or PostgreSQL), and the
study's votes and conversations leave as FastChat battles, WildChat-schema records and an
analysis (win rates with intervals, sign tests, Bradley–Terry ratings).

    wildsim arena serve --config configs/arena/example.yaml   (or --demo)
    wildsim arena analyze --db URL | --battles FILE.jsonl --out DIR
    wildsim arena export --db URL --format battles|wildchat --out FILE

Depends on engines, corpora and eval's statistics (eval/stats.py); see docs/arena.md.
"""

from arena.config import StudyConfig

__all__ = ["StudyConfig"]
