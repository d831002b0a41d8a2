import pytest

from automl_chars.errors import DuplicateNameError, UnknownNameError
from automl_chars.registry import Registry


def test_unknown_name_suggests_closest():
    reg = Registry("dataset")
    reg.add("kmnist", 1)
    reg.add("mnist", 2)
    with pytest.raises(UnknownNameError) as err:
        reg.get("kmnsit")
    assert "'kmnist'" in str(err.value) and err.value.suggestions[0] == "kmnist"


def test_duplicate_name_raises():
    reg = Registry("model")

    @reg.register("cnn")
    def build():
        return 1

    assert reg.get("cnn") is build
    with pytest.raises(DuplicateNameError):
        reg.add("cnn", 2)
    assert reg.names() == ["cnn"] and "cnn" in reg and len(reg) == 1
