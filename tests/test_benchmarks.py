"""The benchmarks' ``--smoke`` runs: each script runs end to end and prints its figures.

Every benchmark takes ``--smoke`` for a tiny run (project rule); these tests run it and check
the exit status and the named result lines (``name: number``, ``ratio:`` last). Most run their
``main`` in this process, on the session's Ray instance (``local_ray`` joins it), which saves a
Ray start and the imports per script; ``trial_overhead``, which patches Ray's internals and
the environment for its measurements (``SUBPROCESS``), runs in a subprocess, as a user would,
with its own Ray. A benchmark that gains ``--smoke`` is picked up here by itself.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
NUMBER = r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|nan|inf)"
#: The named figures each benchmark's smoke run must print (others: ``ratio`` only).
FIGURES = {
    "trial_overhead.py": ("per_trial_s", "fixed_s", "ratio"),
    "gpu_packing.py": ("ratio",),
    "supernet_ranking.py": ("ratio[uniform]", "ratio[uniform,seed=0]", "top1_match[uniform]",
                            "top1_regret[uniform]", "top1_regret[uniform,seed=0]",
                            "ratio_sampled[uniform]", "ratio[darts]", "derived_rank[darts]",
                            "top1_match[darts]", "top1_regret[darts]", "ratio"),
    "transferability.py": ("fixed_weighted_tau", "size_weighted_tau", "learned_weighted_tau",
                           "best_weighted_tau", "best_vs_fixed", "best_vs_size", "ratio"),
    "warm_start_table.py": ("area[cold]", "area[default]", "area[warmstart]", "area[pmf]",
                            "area[zero_shot]", "area[bounding_box]", "speedup[warmstart]",
                            "pmf_vs_warmstart", "ratio"),
    "darts_warm_start.py": ("epochs_to_final[cold]", "epochs_to_final[warm]",
                            "val_acc_epoch1[cold]", "val_acc_epoch1[warm]", "same_final", "ratio"),
    "autotune_lr.py": ("test_acc[autotune]", "test_acc[search]", "test_acc[search_equal]",
                       "seconds[autotune]", "seconds[search]", "trial_s[search_equal]",
                       "autotune_s[autotune]", "ratio_same_preset", "ratio"),
    "load.py": ("wall_per_trial_first_s", "driver_cpu_per_trial_first_s",
                "driver_cpu_per_trial_last_s", "model_cpu_per_trial_last_s", "platform_ratio",
                "main_thread_ratio",
                "rss_mb_peak", "show_s", "report_s",
                "store_show_s", "warm_start_read_s", "warm_start_plan_s", "ratio"),
    "warm_start.py": ("ray_start_s", "cold_s_to_goal", "default_s_to_goal", "warm_s_to_goal",
                      "default_test_acc", "warm_not_worse", "speedup[warm]",
                      "speedup_with_ray_start[default]", "ratio"),
}
#: Benchmarks whose ``ratio`` is a rank correlation in [-1, 1] rather than a positive ratio.
CORRELATIONS = {"transferability.py"}
SMOKE_SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py") if "--smoke" in p.read_text())
# A few sweeps of a few trials, each paying Ray's actor start-up (torch imports): about a minute
# on a quiet 2-core machine; the margin is for a machine shared with other test runs.
TIMEOUT_S = 300


#: Benchmarks that patch Ray Tune or the environment while they measure: own process, own Ray.
SUBPROCESS = {"trial_overhead.py"}


#: Benchmarks that keep their runs in ``--storage`` and can read them back (``--report``).
REPORTS = {"warm_start.py"}


def run_in_process(script: str, capsys, args: tuple[str, ...] = ("--smoke",)) -> str:
    """``main(args)`` of ``script`` in this process; what a benchmark may change for the
    process (environment, torch's threads, the global random generators) is restored after."""
    import random

    import numpy as np
    import torch

    env, threads = dict(os.environ), torch.get_num_threads()
    states = torch.get_rng_state(), np.random.get_state(), random.getstate()
    spec = importlib.util.spec_from_file_location(Path(script).stem, BENCHMARKS / script)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        code = module.main(list(args))
    finally:
        os.environ.clear()
        os.environ.update(env)
        torch.set_num_threads(threads)
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])
    assert code in (None, 0) or isinstance(code, float), f"{script} --smoke returned {code}"
    return capsys.readouterr().out


def run_smoke(script: str) -> str:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)  # the benchmark starts its own local Ray
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), "--smoke"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, (
        f"{script} --smoke exited with {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}"
        f"\n--- stderr\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def figure(out: str, name: str) -> float:
    """The number on the line ``<name>: <number>`` (the last one, if several)."""
    found = re.findall(rf"^{re.escape(name)}: {NUMBER}\s*$", out, re.MULTILINE)
    assert found, f"no '{name}: <number>' line in:\n{out}"
    return float(found[-1])


def test_the_benchmarks_with_smoke_runs():
    assert {"trial_overhead.py", "gpu_packing.py", "supernet_ranking.py"} <= set(SMOKE_SCRIPTS)


@pytest.mark.slow
@pytest.mark.parametrize("script", SMOKE_SCRIPTS)
def test_smoke_run(script, ray_session, capsys, tmp_path):
    stored = ("--storage", str(tmp_path)) if script in REPORTS else ()
    out = run_smoke(script) if script in SUBPROCESS else run_in_process(script, capsys,
                                                                        ("--smoke", *stored))
    for name in FIGURES.get(script, ("ratio",)):
        assert math.isfinite(figure(out, name)), out
    assert out.rstrip().splitlines()[-1].startswith("ratio: "), f"ratio must be the last line:\n{out}"
    if script in CORRELATIONS:
        assert -1 <= figure(out, "ratio") <= 1, out
    else:
        assert figure(out, "ratio") > 0, out
    if script in REPORTS:  # read back, nothing run: the same figures
        again = run_in_process(script, capsys, ("--smoke", "--report", *stored))
        assert figure(again, "ratio") == figure(out, "ratio"), again
        assert figure(again, "default_test_acc") == figure(out, "default_test_acc"), again
    if script == "gpu_packing.py":
        assert "trials/hour" in out, out
    if script == "supernet_ranking.py":  # the smoke trains a stratified sample standalone
        assert "a stratified sample of 2 of 4 subnets" in out, out
        assert figure(out, "top1_regret[uniform]") >= 0 and figure(out, "top1_regret[darts]") >= 0


def test_gpu_packing_without_gpu_skips(capsys):
    """Without --smoke and without CUDA, gpu_packing says so and exits 0 without starting Ray."""
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the benchmark would run")
    spec = importlib.util.spec_from_file_location("gpu_packing", BENCHMARKS / "gpu_packing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([]) is None
    assert capsys.readouterr().out.strip() == module.NO_GPU


def test_a_run_whose_clock_forced_a_release_is_known_for_a_rerun(tmp_path):
    """``warm_start_table.py --rerun-forced`` runs again the kept runs whose replay clock had
    to force a release (a starved driver: their order may be off); the others stay."""
    spec = importlib.util.spec_from_file_location("warm_start_table",
                                                  BENCHMARKS / "warm_start_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, forced in (("ok", [0, 0]), ("forced", [0, 2]), ("peer", None)):
        frame = pd.DataFrame({"sim_time": [1.0, 2.0]})
        if forced is not None:
            frame["forced"] = forced
        frame.to_csv(tmp_path / f"{name}.csv.gz", index=False)
    pd.DataFrame(columns=["sim_time", "forced"]).to_csv(tmp_path / "empty.csv.gz", index=False)
    assert [module.was_forced(tmp_path / f"{n}.csv.gz") for n in ("ok", "forced", "peer", "empty")] \
        == [False, True, False, False]


def test_the_warm_start_design_key_follows_the_plans_not_the_code_text(monkeypatch):
    """``warm_start_table.py`` keeps a warm start's runs per method and design: the key is the
    same for the same plan (a run is reused on any machine) and changes with it (here: another
    ``k``, a changed seed choice), so that a changed design never reuses the old design's runs,
    while the methods whose plans did not change keep theirs."""
    from automl_chars.search import warmstart
    from automl_chars.tabular.shipped import glyph_curves

    spec = importlib.util.spec_from_file_location("warm_start_table",
                                                  BENCHMARKS / "warm_start_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = glyph_curves(["glyphs-digits", "glyphs-greek", "glyphs-hebrew"])

    def keys(k: int = 2) -> dict:
        return {m: module.design_key(table, "glyphs-digits", m, k, 4, "3_1_9_3")
                for m in ("default", "default_rank", "pmf")}

    before = keys()
    assert keys() == before and len(set(before.values())) == 3
    assert all(a != b for a, b in zip(keys(1).values(), before.values()))
    picked = warmstart.anytime_portfolio
    monkeypatch.setattr(warmstart, "anytime_portfolio", lambda *a: picked(*a)[::-1])
    after = keys()  # only the anytime portfolio's method changed
    assert after["default"] != before["default"]
    assert {m: after[m] for m in ("default_rank", "pmf")} == \
        {m: before[m] for m in ("default_rank", "pmf")}


def test_autotune_lr_searches_the_rate_for_as_long_as_autotune_trained():
    """``autotune_lr.py``'s ``search_equal``: the fewest HyperBand iterations whose planned
    budget covers AutotuneLR's trial seconds over the searched sweep's (never fewer than the
    base preset's)."""
    spec = importlib.util.spec_from_file_location("autotune_lr", BENCHMARKS / "autotune_lr.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.equal_preset("3_1_9_3", 100.0, 100.0) == "3_1_9_3"
    assert module.equal_preset("3_1_9_3", 50.0, 100.0) == "3_1_9_3"
    # 75 units x 2.5 = 187.5: 7 iterations plan 171, 8 plan 198
    assert module.equal_preset("3_1_9_3", 250.0, 100.0) == "3_1_9_8"
    assert module.equal_preset("3_1_9_3", 250.0, 100.0, cap=2) == "3_1_9_6"  # said on stderr


def test_warm_start_report_needs_the_folder_of_a_previous_run(tmp_path, capsys):
    """``warm_start.py --report`` reads kept sweeps only: without ``--storage``, or with a folder
    that holds none, it says what to give and runs nothing."""
    spec = importlib.util.spec_from_file_location("warm_start", BENCHMARKS / "warm_start.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit):
        module.main(["--report"])
    assert "--report reads the sweeps of --storage" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--report: no target"):
        module.main(["--report", "--storage", str(tmp_path)])
