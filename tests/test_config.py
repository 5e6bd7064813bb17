"""Config plumbing: precedence, checking of keys and values, saving, and help on every field."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import pytest
import yaml

from foundation.config import ConfigError, from_dict, iter_fields, option, parse_config, save_config


@dataclasses.dataclass
class Inner:
    r: int = option(8, help="rank")
    targets: list[str] = option(["q_proj"], help="modules")


@dataclasses.dataclass
class Job:
    lr: float = option(1e-5, help="learning rate")
    name: str = option("x", help="run name")
    use_lora: bool = option(True, help="LoRA or full")
    lora: Inner = option(default_factory=Inner, help="LoRA settings")
    note: str | None = option(None, help="free text")


def test_defaults_then_yaml_then_flags(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("lr: 2\nlora: {r: 4}\nname: from-yaml\n")
    cfg = parse_config(Job, ["--config", str(preset), "--lora.r", "16", "--use_lora", "false"])
    assert cfg.lr == 2.0 and isinstance(cfg.lr, float)  # int in YAML accepted for a float field
    assert cfg.lora.r == 16 and cfg.lora.targets == ["q_proj"]
    assert cfg.name == "from-yaml" and cfg.use_lora is False


def test_list_override_and_optional():
    cfg = parse_config(Job, ["--lora.targets", "[a, b]", "--note", "hi"])
    assert cfg.lora.targets == ["a", "b"] and cfg.note == "hi"


def test_unknown_key_suggests_close_name():
    with pytest.raises(ConfigError, match=r"unknown config key 'lora.rr'.*Did you mean r\?"):
        from_dict(Job, {"lora": {"rr": 3}})


def test_wrong_type_names_the_field():
    with pytest.raises(ConfigError, match=r"lora.r: expected int"):
        from_dict(Job, {"lora": {"r": "big"}})


def test_bad_flag_exits_with_message(capsys):
    with pytest.raises(SystemExit) as exc:
        parse_config(Job, ["--lr", "fast"])
    assert exc.value.code == 2
    assert "lr: expected float" in capsys.readouterr().err


def test_missing_config_file_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_config(Job, ["--config", str(tmp_path / "nope.yaml")])
    assert "cannot read config" in capsys.readouterr().err


def test_saved_config_round_trips(tmp_path):
    cfg = from_dict(Job, {"lr": 3e-4, "lora": {"r": 2}})
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert from_dict(Job, yaml.safe_load(path.read_text())) == cfg


def test_option_requires_help():
    with pytest.raises(ValueError):
        option(1, help="  ")


def _project_config_classes():
    """Every dataclass in the project whose fields are declared with option() (any help metadata)."""
    found = []
    for package in ("wildsim", "corpora", "engines", "simulators", "rewards", "trainers", "eval"):
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(pkg.__path__, package + "."):
            if info.name in ("wildsim.__main__", "wildsim.demo"):
                continue
            module = importlib.import_module(info.name)
            for obj in vars(module).values():
                if (isinstance(obj, type) and dataclasses.is_dataclass(obj)
                        and obj.__module__ == module.__name__ and obj.__name__.endswith("Config")):
                    found.append(obj)
    return found


def test_every_config_field_has_help():
    classes = _project_config_classes()
    missing = [f"{cls.__module__}.{cls.__name__}.{name}" for cls in classes
               for name, f, _ in iter_fields(cls) if not f.metadata.get("help")]
    assert not missing, f"config fields without help: {missing}"


def test_exponent_without_a_dot_is_a_float():
    # YAML 1.1 reads 1e-4 as the string "1e-4"; a float field takes it as the number
    assert parse_config(Job, ["--lr", "1e-4"]).lr == 1e-4
    assert from_dict(Job, {"lr": "-2E+3"}).lr == -2000.0
    assert from_dict(Job, {"lr": "1.5e-3"}).lr == 1.5e-3
    with pytest.raises(ConfigError, match=r"lr: expected float, got 'e-4'"):
        from_dict(Job, {"lr": "e-4"})
