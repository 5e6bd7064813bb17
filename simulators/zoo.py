"""The simulator zoo: named, ready-to-use user simulators described in configs/simulators.yaml.

An entry maps a name to a simulator kind (a class registered in simulators.base.SIMULATOR_KINDS),
the engine spec it runs on, its sampling settings and its constructor options:

    simulators:
      roleplay2:
        description: prompted role-play user, starts from the real opening turn
        kind: roleplay
        engine: vllm:Qwen/Qwen2.5-14B-Instruct
        engine_options: {gpu_memory_utilization: 0.4}   # optional, passed to the engine loader
        sampling: {temperature: 0.7, top_p: 0.9, max_tokens: 1024}   # over ZOO_SAMPLING
        options: {opening: real}                         # constructor keyword arguments

`load_simulator(name)` builds one: the engine comes from `engines.spec.load_chat_engine(spec)`
(models are cached per process, so entries naming the same spec share one model) and the class
is called as `cls(engine, name=, sampling=, seed=, **options)`. A class with a `from_zoo(entry,
load, seed)` classmethod builds itself instead, engine included (the mixture does, to load its
members by zoo name with `load(name)`; the fine-tuned simulator does, to load its model with the
end-of-conversation token). `engine_override` swaps the engine spec of every entry built by the
call that has one (mixture members included; a from_zoo class sees it in `entry.engine`), e.g.
to run the GPU recipe's prompts on the builtin CPU model. An unknown name is an error that lists
the zoo's names. `cap_max_tokens(simulator, n)` caps a built simulator's tokens per user turn (a
mixture's members included), for runs that want shorter user turns than the entry's.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

import yaml

from engines.base import Sampling
from simulators.base import SIMULATOR_KINDS, UserSimulator
from simulators.persona import REPO_ROOT, resolve_path
from foundation.registry import Registry

DEFAULT_ZOO = REPO_ROOT / "configs" / "simulators.yaml"
#: Sampling every zoo entry starts from (the published simulator settings).
ZOO_SAMPLING = Sampling(temperature=0.7, top_p=0.9, max_tokens=1024)
#: Modules that register simulator kinds; imported (when present) before a kind is looked up.
KIND_MODULES = ("simulators.roleplay", "simulators.mixture", "simulators.finetuned")
ENTRY_KEYS = ("description", "kind", "engine", "engine_options", "sampling", "options")

EngineLoader = Callable[..., Any]


class ZooError(ValueError):
    """A zoo file or entry that cannot be used; the message names the file, entry and key."""


@dataclass(frozen=True)
class ZooEntry:
    """One simulator of the zoo (see the module docstring for the YAML form)."""

    name: str
    kind: str
    engine: str | None = None
    engine_options: dict[str, Any] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def sampling_settings(self) -> Sampling:
        """ZOO_SAMPLING with this entry's sampling keys applied."""
        return ZOO_SAMPLING.with_(**self.sampling)


def _entry(name: str, raw: Any, where: str) -> ZooEntry:
    if not isinstance(raw, dict):
        raise ZooError(f"{where}: entry {name!r} must be a mapping with keys {', '.join(ENTRY_KEYS)}")
    unknown = sorted(set(raw) - set(ENTRY_KEYS))
    if unknown:
        raise ZooError(f"{where}: entry {name!r} has unknown key(s) {unknown}; "
                       f"known keys: {', '.join(ENTRY_KEYS)}")
    if not raw.get("kind"):
        raise ZooError(f"{where}: entry {name!r} needs a kind (e.g. roleplay, finetuned, mixture)")
    sampling_keys = {f.name for f in fields(Sampling)} - {"seed", "json_schema"}
    for key in ("engine_options", "sampling", "options"):
        if not isinstance(raw.get(key, {}), dict):
            raise ZooError(f"{where}: entry {name!r}: {key} must be a mapping")
    bad = sorted(set(raw.get("sampling", {})) - sampling_keys)
    if bad:
        raise ZooError(f"{where}: entry {name!r}: unknown sampling key(s) {bad}; "
                       f"known: {', '.join(sorted(sampling_keys))} (seeds come from the simulator seed)")
    sampling = dict(raw.get("sampling", {}))
    if "stop" in sampling:
        sampling["stop"] = tuple(sampling["stop"])
    entry = ZooEntry(name=name, kind=str(raw["kind"]), engine=raw.get("engine"),
                     engine_options=dict(raw.get("engine_options", {})), sampling=sampling,
                     options=dict(raw.get("options", {})), description=str(raw.get("description", "")))
    try:
        entry.sampling_settings()
    except (TypeError, ValueError) as err:
        raise ZooError(f"{where}: entry {name!r}: bad sampling: {err}") from None
    return entry


def load_zoo(path: str | Path | None = None) -> Registry[ZooEntry]:
    """Read a zoo file (default configs/simulators.yaml) into a registry of entries by name."""
    path = resolve_path(path) if path else DEFAULT_ZOO
    if not path.exists():
        raise ZooError(f"simulator zoo {path} does not exist; pass an existing YAML file")
    data = yaml.safe_load(path.read_text()) or {}
    entries = data.get("simulators") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise ZooError(f"{path}: expected a top-level 'simulators:' mapping of name -> entry")
    zoo: Registry[ZooEntry] = Registry(f"simulator (in {path})")
    for name, raw in entries.items():
        zoo.add(str(name), _entry(str(name), raw, str(path)))
    return zoo


def known_simulators(path: str | Path | None = None) -> list[str]:
    """The names in a zoo file, sorted."""
    return load_zoo(path).names()


def simulator_class(kind: str) -> type:
    """The class registered for a kind, importing the modules that register kinds first."""
    for module in KIND_MODULES:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    return SIMULATOR_KINDS.get(kind)


def load_simulator(name: str, zoo_path: str | Path | None = None, *, engine_override: str | None = None,
                   seed: int = 0, engine_loader: EngineLoader | None = None) -> UserSimulator:
    """Build the zoo's simulator `name` (see the module docstring).

    engine_override: an engine spec used instead of every entry's own
    engine_loader:   builds an engine from (spec, **engine_options); default
                     engines.spec.load_chat_engine
    """
    zoo = load_zoo(zoo_path)
    if engine_loader is None:
        from engines.spec import load_chat_engine as engine_loader
    return _build(zoo, name, engine_override, seed, engine_loader, ())


def cap_max_tokens(simulator: UserSimulator, max_tokens: int | None, *,
                   option_name: str = "simulator.max_tokens") -> None:
    """Cap the tokens per user turn of a built simulator (and of a mixture's members) that holds
    `sampling` settings; None leaves it as built. A simulator with nothing to cap is an error that
    names `option_name` (the config field that asked for the cap)."""
    if max_tokens is None:
        return
    if max_tokens < 1:
        raise ZooError(f"{option_name} must be >= 1, got {max_tokens}")
    members = getattr(simulator, "members", {})
    targets = [simulator, *(members.values() if isinstance(members, dict) else members)]
    capped = 0
    for sim in targets:
        if isinstance(getattr(sim, "sampling", None), Sampling):
            sim.sampling = sim.sampling.with_(max_tokens=max_tokens)
            capped += 1
    if not capped:
        raise ZooError(f"{option_name}: simulator {simulator.name!r} has no sampling settings to "
                       "cap; leave it unset and set max_tokens in the zoo entry")


def _options_for(override: str, entry: ZooEntry) -> dict[str, Any]:
    """The entry's engine options that the overriding engine's backend accepts (a CPU entry's
    dtype and quantize settings mean nothing to a served model)."""
    from engines.spec import BACKEND_OPTIONS, parse_spec

    accepted = BACKEND_OPTIONS[parse_spec(override).backend]
    return {k: v for k, v in entry.engine_options.items() if k in accepted}


def _build(zoo: Registry[ZooEntry], name: str, override: str | None, seed: int,
           loader: EngineLoader, parents: tuple[str, ...]) -> UserSimulator:
    if name in parents:
        raise ZooError(f"simulator zoo: {' -> '.join(parents + (name,))} is a cycle")
    entry = zoo.get(name)
    if override and entry.engine:
        entry = replace(entry, engine=override, engine_options=_options_for(override, entry))
    cls = simulator_class(entry.kind)
    if hasattr(cls, "from_zoo"):
        def load(member: str) -> UserSimulator:
            return _build(zoo, member, override, seed, loader, parents + (name,))

        return cls.from_zoo(entry, load, seed)
    if not entry.engine:
        raise ZooError(f"zoo entry {name!r} (kind {entry.kind}) names no engine; add engine: <spec>")
    engine = loader(entry.engine, **entry.engine_options)
    try:
        return cls(engine, name=name, sampling=entry.sampling_settings(), seed=seed, **entry.options)
    except TypeError as err:
        raise ZooError(f"zoo entry {name!r}: bad options for kind {entry.kind!r}: {err}") from None
