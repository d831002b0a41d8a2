import pytest

from automl_chars.errors import InvalidConfigError, UnknownNameError
from automl_chars.search import PRESETS, BOHBPreset, get_preset
from automl_chars.search.bohb import resolve_preset

SEED_001 = ("2_1_16_10", "3_1_9_20", "4_1_16_20", "2_1_10_14", "3_2_20_20", "3_1_9_10", "2_1_10_10")


def test_seed_001_presets_are_registered():
    assert set(SEED_001) <= set(PRESETS.names())
    p = get_preset("3_2_20_20")
    assert (p.eta, p.min_budget, p.max_budget, p.iterations) == (3, 2, 20, 20)


def test_iterations_map_to_hpbandster_brackets():
    p = BOHBPreset(3, 1, 9, 4)
    # s_max = 2: brackets of 9 (budget 1), 5 (budget 3), 3 (budget 9), then 9 again.
    assert p.s_max == 2
    assert p.bracket_sizes() == [(9, 1), (5, 3), (3, 9), (9, 1)]
    assert p.num_samples == 26
    # min_budget counts: 20 / 2 = 10 -> s_max = 2, first budget 2.
    assert BOHBPreset(3, 2, 20, 1).bracket_sizes() == [(9, 2)]


def test_any_well_formed_preset_parses():
    assert get_preset("2_1_4_3").num_samples == BOHBPreset(2, 1, 4, 3).num_samples


@pytest.mark.parametrize("bad,fragment", [
    ("3_1_9", "eta_min_max_iterations"),
    ("fast", "eta_min_max_iterations"),
    ("1_1_9_3", "eta must be >= 2"),
    ("3_9_1_3", "max_budget"),
    ("3_0_9_3", "min_budget"),
])
def test_invalid_presets_are_explained(bad, fragment):
    with pytest.raises(InvalidConfigError, match=fragment):
        get_preset(bad)


def test_unknown_preset_lists_known_ones():
    with pytest.raises(UnknownNameError):
        PRESETS.get("3_1_9_21")
    with pytest.raises(InvalidConfigError, match="3_1_9_20"):
        get_preset("three")


def test_preset_excludes_explicit_budgets():
    with pytest.raises(InvalidConfigError, match="not both"):
        resolve_preset("3_1_9_20", 3, None, None)
    full_round = resolve_preset(None, 2, 1, 4)
    assert full_round.iterations == full_round.s_max + 1 == 3
