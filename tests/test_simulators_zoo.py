"""The simulator zoo: entries of configs/simulators.yaml, lookups, engine loading and overrides."""

from __future__ import annotations

import pytest

from simulators.finetuned import FinetunedSimulator
from simulators.mixture import MixtureSimulator
from simulators.roleplay import RolePlaySimulator
from simulators.base import SIMULATOR_KINDS
from simulators.zoo import (ZooError, cap_max_tokens, known_simulators, load_simulator, load_zoo,
                            simulator_class)
from foundation.registry import UnknownNameError

PUBLISHED = ["roleplay1", "roleplay2", "roleplay3", "sftuser", "mixture"]


class FakeEngine:
    def __init__(self, spec, **options):
        self.spec, self.options = spec, options

    def chat(self, conversations, sampling):
        return ['{"thought": "", "response": "hi"}' for _ in conversations]


def test_the_published_five_and_cpu_variants_are_defined():
    names = known_simulators()
    assert set(PUBLISHED) <= set(names)
    zoo = load_zoo()
    for name in PUBLISHED[:4]:
        assert zoo.get(f"{name}-cpu").engine.startswith(("builtin:", "hf:"))
    # the GPU entries talk to vLLM servers whose address one environment variable sets
    assert zoo.get("roleplay1").engine == \
        "openai:${WILDSIM_SIMULATOR_URL:-http://localhost:8003/v1}#Qwen/Qwen2.5-14B-Instruct"
    assert zoo.get("sftuser").engine == "openai:${WILDSIM_SFTUSER_URL:-http://localhost:8004/v1}#sftuser"
    # its user turns are token ids built with the tokenizer of the folder `wildsim serve` serves
    assert zoo.get("sftuser").options["tokenizer"] == \
        "${WILDSIM_SFTUSER_TOKENIZER:-runs/simulators/qwen14b/merged}"


@pytest.mark.parametrize("name", [n for n in known_simulators() if not n.startswith(("sftuser", "mixture"))])
def test_every_prompted_entry_builds(name):
    sim = load_simulator(name, engine_loader=FakeEngine, seed=3)
    assert sim.name == name and sim.seed == 3


def test_entries_get_their_kind_options_and_sampling():
    rp1 = load_simulator("roleplay1", engine_loader=FakeEngine)
    rp3 = load_simulator("roleplay3", engine_loader=FakeEngine)
    assert isinstance(rp1, RolePlaySimulator) and rp1.opening == "self" and rp1.bank is None
    assert rp3.opening == "real" and [p.name for p in rp3.bank] == [
        "default", "impatient", "typos", "side_questions"]
    assert (rp1.sampling.temperature, rp1.sampling.top_p, rp1.sampling.max_tokens) == (0.7, 0.9, 1024)
    assert rp1.engine.spec == "openai:${WILDSIM_SIMULATOR_URL:-http://localhost:8003/v1}#Qwen/Qwen2.5-14B-Instruct"


def test_finetuned_kind_is_found_lazily():
    assert simulator_class("finetuned") is FinetunedSimulator
    assert load_zoo().get("sftuser").kind == "finetuned"


MIXED_ZOO = """
simulators:
  rp: {kind: roleplay, engine: "hf:/models/a", options: {opening: real}}
  rp-self: {kind: roleplay, engine: "hf:/models/b", options: {opening: self}}
  recorder: {kind: test-recorder, engine: "hf:/models/c"}
  mix:
    kind: mixture
    options: {members: [{simulator: rp, weight: 3}, {simulator: rp-self, weight: 1}]}
"""


@SIMULATOR_KINDS.register("test-recorder")
class Recorder:
    """A kind that builds itself from its zoo entry (like the fine-tuned simulator does)."""

    def __init__(self, entry):
        self.name, self.entry = entry.name, entry

    @classmethod
    def from_zoo(cls, entry, load, seed):
        return cls(entry)


def test_mixture_loads_its_members_and_the_override_reaches_them(tmp_path):
    path = write_zoo(tmp_path, MIXED_ZOO)
    mix = load_simulator("mix", path, engine_loader=FakeEngine)
    assert isinstance(mix, MixtureSimulator) and mix.weights == {"rp": 3.0, "rp-self": 1.0}
    assert {m.engine.spec for m in mix.members.values()} == {"hf:/models/a", "hf:/models/b"}
    mix = load_simulator("mix", path, engine_loader=FakeEngine, engine_override="builtin:smollm2-135m-instruct")
    assert {m.engine.spec for m in mix.members.values()} == {"builtin:smollm2-135m-instruct"}
    assert load_simulator("recorder", path, engine_override="hf:/x").entry.engine == "hf:/x"


def test_cap_max_tokens_reaches_a_simulator_and_a_mixtures_members(tmp_path):
    path = write_zoo(tmp_path, MIXED_ZOO)
    rp = load_simulator("rp", path, engine_loader=FakeEngine)
    cap_max_tokens(rp, None)                        # None: as built
    assert rp.sampling.max_tokens == 1024
    cap_max_tokens(rp, 40)
    assert rp.sampling.max_tokens == 40 and rp.sampling.temperature == 0.7
    mix = load_simulator("mix", path, engine_loader=FakeEngine)
    cap_max_tokens(mix, 24)
    assert [m.sampling.max_tokens for m in mix.members.values()] == [24, 24]
    with pytest.raises(ZooError, match="sim_max_tokens: simulator 'recorder' has no sampling"):
        cap_max_tokens(load_simulator("recorder", path), 8, option_name="sim_max_tokens")
    with pytest.raises(ZooError, match="simulator.max_tokens must be >= 1, got 0"):
        cap_max_tokens(rp, 0)


def test_published_mixture_names_zoo_members():
    members = load_zoo().get("mixture").options["members"]
    assert {m["simulator"] for m in members} <= set(known_simulators())


def test_unknown_name_lists_the_known_simulators():
    with pytest.raises(UnknownNameError) as err:
        load_simulator("roleplay_1", engine_loader=FakeEngine)
    message = str(err.value)
    assert "Did you mean 'roleplay1'" in message
    assert all(name in message for name in PUBLISHED)


def write_zoo(tmp_path, text):
    path = tmp_path / "zoo.yaml"
    path.write_text(text)
    return path


def test_bad_entries_are_explained(tmp_path):
    bad_key = write_zoo(tmp_path, "simulators:\n  a: {kind: roleplay, engine: x, temprature: 1}\n")
    with pytest.raises(ZooError, match="entry 'a' has unknown key.*temprature"):
        load_zoo(bad_key)
    bad_sampling = write_zoo(tmp_path, "simulators:\n  a: {kind: roleplay, engine: x, sampling: {seed: 1}}\n")
    with pytest.raises(ZooError, match="unknown sampling key.*seed"):
        load_zoo(bad_sampling)
    no_engine = write_zoo(tmp_path, "simulators:\n  a: {kind: roleplay}\n")
    with pytest.raises(ZooError, match="names no engine"):
        load_simulator("a", no_engine, engine_loader=FakeEngine)
    bad_option = write_zoo(tmp_path, "simulators:\n  a: {kind: roleplay, engine: x, options: {colour: red}}\n")
    with pytest.raises(ZooError, match="bad options for kind 'roleplay'.*colour"):
        load_simulator("a", bad_option, engine_loader=FakeEngine)
    unknown_kind = write_zoo(tmp_path, "simulators:\n  a: {kind: rolepaly, engine: x}\n")
    with pytest.raises(UnknownNameError, match="Did you mean 'roleplay'"):
        load_simulator("a", unknown_kind, engine_loader=FakeEngine)


def test_mixture_cycles_are_refused(tmp_path):
    path = write_zoo(tmp_path, """
simulators:
  m1: {kind: mixture, options: {members: [{simulator: m2, weight: 1}]}}
  m2: {kind: mixture, options: {members: [{simulator: m1, weight: 1}]}}
""")
    with pytest.raises(ZooError, match="m1 -> m2 -> m1 is a cycle"):
        load_simulator("m1", path, engine_loader=FakeEngine)


def test_engine_options_reach_the_loader(tmp_path):
    path = write_zoo(tmp_path, "simulators:\n  a: {kind: roleplay, engine: x, engine_options: {batch_size: 4}}\n")
    assert load_simulator("a", path, engine_loader=FakeEngine).engine.options == {"batch_size": 4}


def test_an_engine_override_keeps_only_the_options_its_backend_takes():
    from simulators.zoo import load_simulator

    seen = []

    def loader(spec, **options):
        seen.append((spec, options))
        return object()

    load_simulator("roleplay2-cpu", engine_loader=loader)
    load_simulator("roleplay2-cpu", engine_override="openai:http://127.0.0.1:9/v1#m", engine_loader=loader)
    load_simulator("roleplay2-cpu", engine_override="hf:/models/x", engine_loader=loader)
    assert seen == [("builtin:smollm2-135m-instruct", {"dtype": "float32", "quantize": "int8"}),
                    ("openai:http://127.0.0.1:9/v1#m", {}),
                    ("hf:/models/x", {"dtype": "float32", "quantize": "int8"})]
