"""The shipped learning-curve table (one part per glyph domain) and the script that builds it."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from automl_chars.data.glyphs import DOMAINS
from automl_chars.errors import SweepInterrupted, TableError
from automl_chars.spaces import cnn_space
from automl_chars.tabular.shipped import (
    SHIPPED_BUILD,
    SHIPPED_DIR,
    glyph_curves,
    part_path,
    shipped_domains,
)
from automl_chars.workflows.table import draw_configs

SCRIPT = Path(__file__).parents[2] / "scripts" / "build_glyph_table.py"


def test_the_shipped_parts_are_one_build_over_the_current_space():
    domains = shipped_domains()
    assert domains, f"no part of the shipped table in {SHIPPED_DIR}"
    table = glyph_curves()
    table.check_space(cnn_space())  # a change to the space makes the shipped table stale
    m = table.manifest
    assert table.datasets == domains and table.epochs == SHIPPED_BUILD.max_epochs
    assert table.configs == draw_configs(SHIPPED_BUILD.n_configs, SHIPPED_BUILD.seed)
    assert m.samples_per_class == SHIPPED_BUILD.samples_per_class and m.seed == SHIPPED_BUILD.seed
    assert all(d["meta_features"] and d["fingerprint"] for d in m.datasets)
    size = sum(part_path(d).stat().st_size for d in DOMAINS if part_path(d).is_file())
    assert size < 5 * 2**20 * len(domains) / len(DOMAINS), size  # the whole table under 5 MB
    for domain in domains:  # the domains reach their usual accuracy: well above chance
        assert table.best(domain)["test_acc"] > 0.5, domain


def test_a_domain_not_shipped_is_named(tmp_path):
    with pytest.raises(TableError, match="no part for \\['glyphs-nope'\\].*build_glyph_table"):
        glyph_curves(["glyphs-nope"])
    with pytest.raises(TableError, match="any domain.*has none"):
        glyph_curves(root=tmp_path)


@pytest.mark.slow
def test_the_build_script_writes_a_part_per_domain_and_reads_finished_ones_back(
        ray_session, data_root, tmp_path, monkeypatch, capsys):
    into = tmp_path / "parts"
    argv = [str(SCRIPT), "--smoke", "--into", str(into), "--storage", str(tmp_path / "runs"),
            "--verbose", "0"]
    for _ in range(2):  # the second run reads the finished part back: no Ray run
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exit_:
            runpy.run_path(str(SCRIPT), run_name="__main__")
        assert exit_.value.code == 0
        assert "glyphs-digits: 3 configurations" in capsys.readouterr().out
    assert shipped_domains(into) == ["glyphs-digits"]
    assert len(glyph_curves(root=into).frame) == 3
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--domains", "glyphs-nope"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert exit_.value.code == 2 and "--domains: unknown" in capsys.readouterr().err


def test_a_smoke_build_never_writes_into_the_shipped_table_nor_joins_a_real_run(monkeypatch,
                                                                                  capsys):
    """``--smoke`` without ``--into`` builds into a temporary folder, under its own run name."""
    seen = []

    def record(datasets, **kwargs):  # stands in for the Ray run: only where it would write
        seen.append(kwargs)
        raise SweepInterrupted(kwargs["out"], "SIGTERM", 143, "the same command")

    monkeypatch.setattr("automl_chars.workflows.table.build_table", record)
    for argv in (["--smoke"], []):
        monkeypatch.setattr(sys, "argv", [str(SCRIPT), *argv])
        with pytest.raises(SystemExit) as exit_:
            runpy.run_path(str(SCRIPT), run_name="__main__")
        assert exit_.value.code == 143 and "run the same command again" in capsys.readouterr().out
    smoke, real = seen
    assert Path(smoke["out"]).parent != SHIPPED_DIR and smoke["name"] == "table-smoke-glyphs-digits"
    assert Path(real["out"]).parent == SHIPPED_DIR and real["name"] == "table-glyphs-digits"
