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
from automl_chars.workflows.table import build_table, draw_configs

SCRIPT = Path(__file__).parents[2] / "scripts" / "build_glyph_table.py"
PROGRESS_DIR = SCRIPT.parent / "table-progress"


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
def test_the_build_script_goes_on_from_finished_slices_on_a_new_machine(
        ray_session, data_root, tmp_path, monkeypatch, capsys):
    """A build stopped after its first slice goes on from the slice's file alone (its Ray run
    gone, as on a new machine), joins the slices into the domain's part, and a finished part
    is read back; a slice's run that errored stops the build with exit status 1."""
    into, progress = tmp_path / "parts", tmp_path / "progress"
    argv = [str(SCRIPT), "--smoke", "--into", str(into), "--progress", str(progress),
            "--slice", "2", "--verbose", "0"]
    real = build_table
    calls = []

    def first_slice_only(datasets, *args, **kwargs):
        calls.append(kwargs["config_ids"])
        if kwargs["config_ids"] == [2]:
            raise SweepInterrupted(kwargs["out"], "SIGTERM", 143, "the same command")
        return real(datasets, *args, **kwargs)

    def run(storage, *, code):
        monkeypatch.setattr(sys, "argv", [*argv, "--storage", str(tmp_path / storage)])
        with pytest.raises(SystemExit) as exit_:
            runpy.run_path(str(SCRIPT), run_name="__main__")
        assert exit_.value.code == code
        return capsys.readouterr().out

    monkeypatch.setattr("automl_chars.workflows.table.build_table", first_slice_only)
    assert "run the same command again" in run("machine-1", code=143)
    assert [p.name for p in (progress / "glyphs-digits").iterdir()] == ["configs-000-001.parquet"]
    monkeypatch.setattr("automl_chars.workflows.table.build_table", real)
    assert "glyphs-digits: 3 configurations" in run("machine-2", code=0)
    runs = sorted(p.name for p in (tmp_path / "machine-2").iterdir())
    assert runs == ["table-smoke-glyphs-digits-2-2"], runs  # slice 0-1 came from its file
    assert shipped_domains(into) == ["glyphs-digits"] and not (progress / "glyphs-digits").exists()
    table = glyph_curves(root=into)
    assert sorted(table.configs) == [0, 1, 2] and table.configs == draw_configs(2, 0)
    assert len(table.frame) == 3 and (table.frame["status"] == "TERMINATED").all()
    assert "built before" in run("machine-3", code=0)  # no Ray run
    assert not (tmp_path / "machine-3").exists()
    # a part of another build in its place is named, not taken
    other = table.select([0, 1])
    other.save(into / "glyphs-digits.parquet")
    assert "holds another build" in run("machine-3", code=1)

    def errored(datasets, *args, **kwargs):
        raise TableError("1 trials of the table's build errored")

    (into / "glyphs-digits.parquet").unlink()
    monkeypatch.setattr("automl_chars.workflows.table.build_table", errored)
    assert "errored" in run("machine-4", code=1)
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--domains", "glyphs-nope"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert exit_.value.code == 2 and "--domains: unknown" in capsys.readouterr().err


def test_a_smoke_build_never_writes_into_the_shipped_table_nor_joins_a_real_run(monkeypatch,
                                                                                  tmp_path,
                                                                                  capsys):
    """``--smoke`` without ``--into`` builds into a temporary folder, under its own run name; a
    real build keeps its slices in the repository's folder and reads the shipped parts back."""
    seen, read_back = [], []

    def record(datasets, **kwargs):  # stands in for the Ray run: only where it would write
        if kwargs.get("config_ids") is None:
            read_back.append(Path(kwargs["out"]))  # a finished part read back
            return None
        seen.append(kwargs)
        raise SweepInterrupted(kwargs["out"], "SIGTERM", 143, "the same command")

    monkeypatch.setattr("automl_chars.workflows.table.build_table", record)
    for argv in (["--smoke"], ["--into", str(tmp_path / "parts")]):
        monkeypatch.setattr(sys, "argv", [str(SCRIPT), *argv])
        with pytest.raises(SystemExit) as exit_:
            runpy.run_path(str(SCRIPT), run_name="__main__")
        assert exit_.value.code == 143 and "run the same command again" in capsys.readouterr().out
    smoke, real = seen
    assert PROGRESS_DIR not in Path(smoke["out"]).parents
    assert smoke["name"] == "table-smoke-glyphs-digits-0-2"
    # the real build's first slice, in the repository's folder
    assert Path(real["out"]) == PROGRESS_DIR / list(DOMAINS)[0] / "configs-000-020.parquet"
    assert real["name"] == f"table-{list(DOMAINS)[0]}-0-20" and real["config_ids"] == list(range(21))
    # without --into, the shipped parts are the build's: each one there is read back, not built
    monkeypatch.setattr(sys, "argv", [str(SCRIPT)])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    shipped = shipped_domains()
    assert exit_.value.code == (0 if len(shipped) == len(DOMAINS) else 143)
    assert read_back == [part_path(d) for d in shipped]
