"""Job configs: dataclasses with a help string on every field, YAML presets, command-line overrides.

Every job (`train_rl.py`, `train_simulator.py`, `wildsim eval …`) describes its settings as a
dataclass whose fields are declared with `option(default, help=…)`. `parse_config` builds the
command line from that dataclass: `--config file.yaml` loads a preset, then any field can be
overridden as `--section.field value` (values are read as YAML, so `--lora.r 16`,
`--simulators '[a, b]'` and `--bf16 true` all work). Precedence: defaults < YAML < flags.
Unknown keys are errors that name the key and suggest close ones. `save_config` writes the
effective config beside a run's outputs; configs never hold secrets (API keys are named by the
environment variable that holds them, and read from the environment only).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, Sequence, TypeVar

import yaml

C = TypeVar("C")
_MISSING = dataclasses.MISSING


class ConfigError(ValueError):
    """A config value or key that cannot be used; the message names it and says how to fix it."""


def option(default: Any = _MISSING, *, help: str, default_factory: Any = _MISSING) -> Any:
    """Declare a config field with its help string (shown by --help and checked by the tests)."""
    if not help or not help.strip():
        raise ValueError("every config field needs a help string")
    kwargs: dict[str, Any] = {"metadata": {"help": help}}
    if default_factory is not _MISSING:
        kwargs["default_factory"] = default_factory
    elif isinstance(default, (list, dict, set)):
        kwargs["default_factory"] = lambda d=default: type(d)(d)
    elif default is not _MISSING:
        kwargs["default"] = default
    return dataclasses.field(**kwargs)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _nested_dataclass(tp: Any) -> type | None:
    """The dataclass type a field holds, if it holds one (also through `X | None`)."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg):
                return arg
    return None


#: A number in exponent notation without a dot ("1e-4"), which YAML 1.1 loaders read as a string.
SCIENTIFIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check a YAML value against a field's annotation, converting the harmless cases (int→float)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if origin in (list, tuple, Sequence):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and SCIENTIFIC.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
    if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if tp in (int, float, str, bool) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected int, got {value!r}")
    return value


def from_dict(cls: type[C], data: dict[str, Any] | None, where: str = "") -> C:
    """Build config `cls` from a (possibly partial, possibly nested) mapping, checking every key."""
    data = dict(data or {})
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=2)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise ConfigError(f"unknown config key {where + key!r}.{hint} "
                              f"Known keys here: {', '.join(names)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value, tp = data[f.name], hints[f.name]
        nested = _nested_dataclass(tp)
        if nested is not None and isinstance(value, dict):
            kwargs[f.name] = from_dict(nested, value, f"{where}{f.name}.")
        else:
            kwargs[f.name] = _coerce(value, tp, where + f.name)
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field with no value
        raise ConfigError(f"{where or cls.__name__}: {err}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain YAML-able data (tuples become lists)."""
    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(cfg)


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write the effective config as YAML (it holds no secrets: keys live in the environment)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return path


def iter_fields(cls: type, prefix: str = ""):
    """Yield (dotted name, field, type) for every leaf field of a config class, nested included."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        nested = _nested_dataclass(hints[f.name])
        if nested is not None:
            yield from iter_fields(nested, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f, hints[f.name]


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--{dotted}: {p!r} is not a section")
    node[leaf] = value


def _read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of keys to values")
    return data


def build_parser(cls: type, prog: str | None = None, description: str | None = None
                 ) -> argparse.ArgumentParser:
    """An argument parser with --config plus one --dotted.flag per config field, with its help."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML preset; flags below override its values")
    for name, f, _tp in iter_fields(cls):
        default = f.default if f.default is not _MISSING else (
            f.default_factory() if f.default_factory is not _MISSING else "required")
        parser.add_argument(f"--{name}", dest=name, default=argparse.SUPPRESS, metavar="V",
                            help=f"{f.metadata.get('help', '')} (default: {default!r})")
    return parser


def parse_config(cls: type[C], argv: Sequence[str] | None = None, prog: str | None = None,
                 description: str | None = None) -> C:
    """Parse argv into config `cls`: defaults < --config YAML < --field flags. Exits with a clear
    message (status 2) on a bad key or value."""
    parser = build_parser(cls, prog, description)
    args = vars(parser.parse_args(argv))
    try:
        data = _read_yaml(args.pop("config")) if args.get("config") else {}
        args.pop("config", None)
        for dotted, raw in args.items():
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError:
                value = raw
            _set_dotted(data, dotted, value)
        return from_dict(cls, data)
    except (ConfigError, ValueError) as err:
        parser.error(str(err))
        raise  # unreachable: parser.error exits
