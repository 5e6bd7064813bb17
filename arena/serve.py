"""`wildsim arena serve`: migrate the study database, then serve the study with uvicorn.

    wildsim arena serve --config configs/arena/example.yaml [--host 127.0.0.1] [--port 8000]
                        [--workers 1] [any --field value of the study config]
    wildsim arena serve --demo      the builtin model vs the CPU demo's RL adapter (or the base
                                    model twice when runs/demo/train_rl/final does not exist)

Prints the participant link and the admin link. Admin pages need the password in the
environment variable the config names (ARENA_ADMIN_PASSWORD by default; unset: admin pages
are off), never printed or stored. Several workers need PostgreSQL (each worker is a process;
SQLite's writers in different processes would wait on its busy handler); every state the
workers share, the rate limit and the sessions-per-id limit included, is in the database. The
effective config reaches the workers through the ARENA_STUDY_CONFIG environment variable (it
never holds secrets).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from arena.config import StudyConfig
from foundation.config import from_dict, parse_config, to_dict

CONFIG_ENV = "ARENA_STUDY_CONFIG"
DEMO_ADAPTER = Path("runs/demo/train_rl/final")


def demo_config() -> StudyConfig:
    """The laptop demo: builtin SmolLM2 vs its RL adapter from `make demo`, SQLite."""
    base = "builtin:smollm2-135m-instruct"
    if DEMO_ADAPTER.exists():
        from engines.builtin import builtin_model_dir
        rl = f"hf:{builtin_model_dir('smollm2-135m-instruct')}@lora={DEMO_ADAPTER}"
    else:
        print(f"no RL adapter at {DEMO_ADAPTER} (run `make demo` first): comparing the base "
              "model with itself")
        rl = base
    return StudyConfig(study_id="demo", assistants={"base": base, "rl": rl}, min_exchanges=2,
                       max_exchanges=5, practice_exchanges=1, max_reply_tokens=96,
                       completion_code="DEMO-DONE", db_url="sqlite:///runs/arena/demo.db")


def app_from_env():
    """uvicorn factory: the app for the config in ARENA_STUDY_CONFIG (one per worker)."""
    from arena.app import create_app
    from arena.db import make_engine
    cfg = from_dict(StudyConfig, json.loads(os.environ[CONFIG_ENV]))
    return create_app(cfg, make_engine(cfg.db_url))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wildsim arena serve", add_help=False)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (8000)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (1)")
    p.add_argument("--demo", action="store_true", help="serve the laptop demo study")
    return p


def main(argv: list[str] | None = None) -> int:
    server_args, rest = build_parser().parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        build_parser().print_help()
        print()
    if server_args.demo:
        cfg = demo_config()
    else:
        cfg = parse_config(StudyConfig, rest, prog="wildsim arena serve", description=__doc__)
    if server_args.workers > 1 and cfg.db_url.startswith("sqlite"):
        raise SystemExit("wildsim arena serve: several --workers need PostgreSQL "
                         "(db_url: postgresql+psycopg://...); SQLite serves one worker")
    import uvicorn

    from arena.db import open_database
    open_database(cfg.db_url).dispose()  # migrate once, before any worker starts
    os.environ[CONFIG_ENV] = json.dumps(to_dict(cfg))
    if not os.environ.get(cfg.admin_password_env):
        print(f"admin pages are off: set {cfg.admin_password_env} in the environment to turn "
              "them on")
    base = f"http://{server_args.host}:{server_args.port}"
    print(f"participant link: {base}/start   (Prolific: {base}/start?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}})")
    print(f"admin pages:      {base}/admin   (any user name, the password in ${cfg.admin_password_env})",
          flush=True)
    uvicorn.run("arena.serve:app_from_env", factory=True, host=server_args.host,
                port=server_args.port, workers=server_args.workers, log_level="warning")
    return 0
