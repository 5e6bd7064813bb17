"""The study web app (FastAPI, server-rendered Jinja2 pages, one small script).

    GET  /start?PROLIFIC_PID=…      new participant -> 303 to /p/<token>  (the study link)
    GET  /p/<token>                 resumes: 303 to the page of the participant's stage
    GET/POST /p/<token>/consent, /instructions
    GET  /p/<token>/chat            practice or study: the conversation, the two replies, the vote
    POST /p/<token>/message         both replies generated concurrently, stored, 303 to chat
    POST /p/<token>/vote            the vote committed, 303 to chat (sides re-drawn next turn)
    POST /p/<token>/finish          end the study after min_exchanges
    GET/POST /p/<token>/final       the overall preference; GET /p/<token>/done: completion
    GET  /admin, /admin/export/battles.jsonl, /admin/export/wildchat.jsonl   (HTTP Basic)

Security: tokens are 256-bit random; any other token (or another participant's turn id) is 404;
pages show sides as "A"/"B" only and never a model name or spec; Jinja2 autoescapes every text;
every POST carries the participant's CSRF token; messages and rationales have length limits,
posts a per-participant rate limit (kept in the database, so every worker shares it); the admin
password comes from the environment variable the config names and is compared in constant time.
Responses send a CSP without inline scripts, no-referrer (the token is in the URL), no framing,
no caching.

Cost per request: the routes are plain functions (run in the thread pool, never blocking the
event loop) that give their database connection back as soon as they have read or committed
(before rendering a page, before waiting for the assistants); templates are compiled once; the
security headers are added by a small ASGI wrapper, not a per-request middleware task.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from arena import flow
from arena.config import StudyConfig
from arena.db import session_factory
from arena.export import battles_from_db, progress_table, wildchat_records
from arena.generation import ReplyGenerator
from arena.models import CHOICES, Participant
from corpora.records import dumps
from corpora.tasks import read_tasks
from engines.base import Sampling

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
}
_HEADER_BYTES = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
_HEADER_NAMES = {k for k, _ in _HEADER_BYTES}


class SecurityHeaders:
    """ASGI wrapper: every HTTP response gets SECURITY_HEADERS (replacing any of the same name)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [(k, v) for k, v in message.get("headers", [])
                                      if k.lower() not in _HEADER_NAMES] + _HEADER_BYTES
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _Study:
    """What every route of one study shares: config, templates, sessions, limits, replies."""

    def __init__(self, cfg: StudyConfig, engine: Engine, generator: ReplyGenerator | None):
        self.cfg = cfg
        self.templates = Jinja2Templates(directory=HERE / "templates")
        self.templates.env.auto_reload = False  # compiled once, no file check per page
        self.make_session = session_factory(engine)
        self.tasks = read_tasks(cfg.task_source) if cfg.task_source != "own" else []
        self.generator = generator or ReplyGenerator(
            cfg.assistants, Sampling(temperature=cfg.temperature, max_tokens=cfg.max_reply_tokens),
            attempts=cfg.generation_attempts, timeout=cfg.generation_timeout)

    async def db(self):
        """FastAPI dependency: one database session per request. Opening one does no I/O; a
        session still holding a connection at the end is closed in the thread pool."""
        s = self.make_session()
        try:
            yield s
        finally:
            if s.in_transaction():
                await run_in_threadpool(s.close)
            else:
                s.close()

    def page(self, request: Request, name: str, p: Participant, db=None, **ctx) -> HTMLResponse:
        """Render page `name`; with `db`, its read transaction ends first (the connection goes
        back to the pool before the rendering)."""
        if db is not None:
            db.commit()
        return self.templates.TemplateResponse(request, name, {"p": p, "cfg": self.cfg, **ctx})

    def posted(self, db, p: Participant, csrf: str) -> None:
        """Every participant POST: a valid CSRF token, then the rate limit (in the database)."""
        if not csrf or not secrets.compare_digest(csrf, p.csrf):
            raise flow.FlowError("invalid form token; reload the page", 403)
        if not flow.allow_post(db, p, self.cfg.rate_limit_per_minute):
            raise flow.FlowError("too many requests; wait a minute", 429)

    def check_length(self, text: str, limit: int, what: str) -> None:
        if len(text) > limit:
            raise flow.FlowError(f"{what} are limited to {limit} characters", 413)

    @staticmethod
    def to(p: Participant, where: str = "") -> RedirectResponse:
        return RedirectResponse(f"/p/{p.token}/{where or stage_page(p)}", status_code=303)


def create_app(cfg: StudyConfig, engine: Engine, generator: ReplyGenerator | None = None) -> FastAPI:
    """The app for study `cfg` on the (migrated) database `engine`."""
    app = FastAPI(title=f"arena: {cfg.study_id}", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    study = _Study(cfg, engine, generator)
    app.state.cfg, app.state.generator = cfg, study.generator
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(flow.FlowError)
    async def flow_error(request: Request, err: flow.FlowError):
        return study.templates.TemplateResponse(request, "error.html", {"message": str(err)},
                                                status_code=err.status)

    _entry_routes(app, study)
    _chat_routes(app, study)
    _final_routes(app, study)
    _add_admin(app, cfg, study.make_session, study.templates)
    return app


def _entry_routes(app: FastAPI, study: _Study) -> None:
    """The landing page, the study link, consent and instructions."""
    cfg, db = study.cfg, study.db

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request):
        return study.templates.TemplateResponse(request, "index.html", {"cfg": cfg})

    @app.get("/start")
    def start(request: Request, s=Depends(db)):
        external = (request.query_params.get("PROLIFIC_PID")
                    or request.query_params.get("participant") or None)
        if external and len(external) > 128:
            raise flow.FlowError("participant id too long", 422)
        return study.to(flow.create_participant(s, cfg, external, study.tasks))

    @app.get("/p/{token}")
    def resume(token: str, s=Depends(db)):
        return study.to(flow.by_token(s, token))

    @app.get("/p/{token}/consent", response_class=HTMLResponse)
    @app.get("/p/{token}/instructions", response_class=HTMLResponse)
    def read(request: Request, token: str, s=Depends(db)):
        p = flow.by_token(s, token)
        stage = request.url.path.rsplit("/", 1)[1]
        return study.page(request, f"{stage}.html", p, s) if p.stage == stage else study.to(p)

    @app.post("/p/{token}/consent")
    @app.post("/p/{token}/instructions")
    def agree(request: Request, token: str, csrf: str = Form(""), s=Depends(db)):
        p = flow.by_token(s, token)
        study.posted(s, p, csrf)
        flow.advance(s, p, request.url.path.rsplit("/", 1)[1])
        if p.stage == "practice" and cfg.practice_exchanges == 0:
            flow.advance(s, p, "practice")
        return study.to(p)


def _chat_routes(app: FastAPI, study: _Study) -> None:
    """Practice and study turns: the page, the message (both replies), the vote, finishing."""
    cfg, db = study.cfg, study.db

    @app.get("/p/{token}/chat", response_class=HTMLResponse)
    def chat(request: Request, token: str, s=Depends(db)):
        p = flow.by_token(s, token)
        if p.stage not in ("practice", "study"):
            return study.to(p)
        v = flow.view(s, flow.session_of(s, p, p.stage))
        return study.page(request, "chat.html", p, s, view=v, can_finish=(
            p.stage == "study" and v.votes >= cfg.min_exchanges and v.pending is None))

    @app.post("/p/{token}/message")
    def message(token: str, csrf: str = Form(""), text: str = Form(""), s=Depends(db)):
        p = flow.by_token(s, token)
        study.posted(s, p, csrf)
        text = text.strip()
        if not text:
            raise flow.FlowError("write a message first", 422)
        study.check_length(text, cfg.max_message_chars, "messages")
        if p.stage not in ("practice", "study"):
            return study.to(p)
        sess = flow.session_of(s, p, p.stage)
        v = flow.view(s, sess)
        if v.pending is not None:
            raise flow.FlowError("vote on the two replies first", 409)
        sides = flow.sides_for(cfg, p, sess.kind, v.turns)
        s.commit()  # no connection held while the assistants answer
        replies = study.generator.pair(sides, v.history + [flow.Message("user", text)])
        flow.add_turn(s, p, sess, v.turns, text, sides, replies)
        return study.to(p, "chat")

    @app.post("/p/{token}/vote")
    def vote(token: str, csrf: str = Form(""), turn_id: int = Form(...), choice: str = Form(""),
             rationale: str = Form(""), s=Depends(db)):
        p = flow.by_token(s, token)
        study.posted(s, p, csrf)
        if choice not in CHOICES:
            raise flow.FlowError("choose A, B, tie or both bad", 422)
        study.check_length(rationale, cfg.max_rationale_chars, "rationales")
        if p.stage not in ("practice", "study"):
            flow.by_turn_owner(s, p, turn_id)
            return study.to(p)
        sess = flow.session_of(s, p, p.stage)
        flow.record_vote(s, cfg, p, sess, turn_id, choice, rationale.strip())
        flow.after_vote(s, cfg, p, sess)
        return study.to(p)

    @app.post("/p/{token}/finish")
    def finish(token: str, csrf: str = Form(""), s=Depends(db)):
        p = flow.by_token(s, token)
        study.posted(s, p, csrf)
        if p.stage == "study":
            sess = flow.session_of(s, p, "study")
            v = flow.view(s, sess)
            if v.votes < cfg.min_exchanges or v.pending is not None:
                raise flow.FlowError(f"please complete at least {cfg.min_exchanges} turns", 409)
            flow.end_session(s, p, sess)
        return study.to(p)


def _final_routes(app: FastAPI, study: _Study) -> None:
    """The overall preference and the completion page."""
    cfg, db = study.cfg, study.db

    @app.get("/p/{token}/final", response_class=HTMLResponse)
    def final(request: Request, token: str, s=Depends(db)):
        p = flow.by_token(s, token)
        if p.stage != "final":
            return study.to(p)
        paths = flow.assistant_paths(s, p)
        return study.page(request, "final.html", p, s,
                          transcripts=[paths[m] for m in flow.final_order(cfg, p)])

    @app.post("/p/{token}/final")
    def final_vote(token: str, csrf: str = Form(""), choice: str = Form(""),
                   rationale: str = Form(""), s=Depends(db)):
        p = flow.by_token(s, token)
        study.posted(s, p, csrf)
        study.check_length(rationale, cfg.max_rationale_chars, "rationales")
        flow.record_final(s, cfg, p, choice, rationale.strip())
        return study.to(p)

    @app.get("/p/{token}/done", response_class=HTMLResponse)
    def done(request: Request, token: str, s=Depends(db)):
        p = flow.by_token(s, token)
        return study.page(request, "done.html", p, s) if p.stage == "done" else study.to(p)


def stage_page(p: Participant) -> str:
    """The page of the participant's stage."""
    return {"practice": "chat", "study": "chat"}.get(p.stage, p.stage)


def _add_admin(app: FastAPI, cfg: StudyConfig, make_session, templates: Jinja2Templates) -> None:
    """Admin pages behind HTTP Basic auth with the password from the environment."""
    basic = HTTPBasic(auto_error=False)

    def admin(credentials: HTTPBasicCredentials | None = Depends(basic)) -> None:
        password = os.environ.get(cfg.admin_password_env)
        if not password:
            raise HTTPException(404, f"admin pages are off: set {cfg.admin_password_env}")
        if credentials is None or not secrets.compare_digest(
                credentials.password.encode(), password.encode()):
            raise HTTPException(401, "admin password required",
                                headers={"WWW-Authenticate": 'Basic realm="arena admin"'})

    @app.get("/admin", response_class=HTMLResponse, dependencies=[Depends(admin)])
    def progress(request: Request):
        with make_session() as s:
            rows = progress_table(s, cfg)
        return templates.TemplateResponse(request, "admin.html", {"cfg": cfg, "rows": rows})

    @app.get("/admin/export/battles.jsonl", dependencies=[Depends(admin)])
    def battles():
        with make_session() as s:
            lines = [json.dumps(b) for b in battles_from_db(s)]
        return PlainTextResponse("\n".join(lines) + ("\n" if lines else ""),
                                 media_type="application/x-ndjson")

    @app.get("/admin/export/wildchat.jsonl", dependencies=[Depends(admin)])
    def wildchat():
        with make_session() as s:
            lines = [dumps(r) for r in wildchat_records(s)]
        return Response("\n".join(lines) + ("\n" if lines else ""),
                        media_type="application/x-ndjson")
