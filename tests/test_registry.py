"""The plug-in registry is loud: duplicates refused, unknown names answered with suggestions."""

import pytest

from foundation.registry import Registry, UnknownNameError


def test_register_get_and_names():
    reg = Registry("simulator")

    @reg.register("roleplay")
    class A:
        pass

    assert reg.get("roleplay") is A and "roleplay" in reg and reg.names() == ["roleplay"]


def test_duplicate_name_is_refused():
    reg = Registry("reward")
    reg.add("judge", object())
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("judge", object())


def test_unknown_name_suggests_and_lists():
    reg = Registry("simulator")
    reg.add("roleplay", 1)
    reg.add("mixture", 2)
    with pytest.raises(UnknownNameError) as exc:
        reg.get("rolplay")
    assert "Did you mean 'roleplay'" in str(exc.value) and "Known: mixture, roleplay" in str(exc.value)
