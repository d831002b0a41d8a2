"""The report page: its figures' data as pure functions, telling folders apart, and the page of
every kind of result rendered in a real browser (headless Chromium, where one is installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl_chars.cli.main import main
from automl_chars.reporting.page import folder_kind
from automl_chars.reporting.sweep import (
    axis_for,
    encode_trials,
    hyperparameter_columns,
    hyperparameter_importance,
    incumbent_trace,
)

DOCS_IMG = Path(__file__).parents[2] / "docs" / "img"
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)
needs_browser = pytest.mark.skipif(CHROMIUM is None,
                                   reason="no Chromium installed (apt-get install chromium)")


# -- figures' data -----------------------------------------------------------------------------
def test_incumbent_trace_keeps_each_improvement_and_skips_failed_results():
    curves = pd.DataFrame({"trial_id": list("aabbc"), "budget": [1, 2, 1, 2, 1],
                           "val_acc": [0.2, 0.5, 0.4, np.nan, 0.45],
                           "timestamp": [102, 104, 103, 105, 106]})
    trace = incumbent_trace(curves, started_at=100)
    assert trace["seconds"].tolist() == [2, 3, 4] and trace["best"].tolist() == [0.2, 0.4, 0.5]
    assert incumbent_trace(curves)["seconds"].tolist() == [0, 1, 2]  # from the first result
    assert incumbent_trace(curves.drop(columns="timestamp")).empty


def test_axes_put_numbers_on_a_log_or_linear_scale_and_categories_evenly():
    lr = axis_for("learning_rate", pd.Series([1e-4, 1e-3, 1e-1]))
    assert lr.log and lr.encode(pd.Series([1e-4, 1e-2, 1e-1])).tolist() == pytest.approx(
        [0, 2 / 3, 1])
    assert lr.tick(0) == "0.0001" and lr.tick(1) == "0.1"
    units = axis_for("units", pd.Series([10.0, 30.0, np.nan]))
    assert not units.log and np.isnan(units.encode(pd.Series([np.nan]))[0])
    opt = axis_for("optimizer", pd.Series(["sgd", "adam", None]))
    assert opt.categories == ("adam", "sgd")
    assert axis_for("augment", pd.Series([True, False])).categories == ("False", "True")
    trials = pd.DataFrame({"budget": [1, 3], "config/lr": [0.1, 0.1], "config/units": [8, 16],
                           "config/suggested_by": ["random", "model"]})
    assert hyperparameter_columns(trials) == ["units"]  # lr never varies
    encoded, axes = encode_trials(trials)
    assert list(encoded.columns) == ["budget", "units"] and encoded.loc[1, "units"] == 1.0


def _trials(n=40, seed=0):
    """Trials whose accuracy follows the learning rate alone; the rest is noise."""
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-4, -1, n)
    return pd.DataFrame({
        "trial_id": [f"t{i}" for i in range(n)], "budget": rng.choice([1, 3, 9], n),
        "config/learning_rate": lr, "config/batch_size": rng.integers(16, 256, n),
        "config/optimizer": rng.choice(["adam", "sgd"], n),
        "config/momentum": np.where(rng.random(n) < 0.5, rng.uniform(0, 1, n), np.nan),
        "val_acc": (np.log10(lr) + 4) / 3 + rng.normal(0, 0.02, n)})


def test_importance_finds_the_hyperparameter_that_drives_accuracy():
    importance = hyperparameter_importance(_trials())
    assert importance["hyperparameter"].iloc[0] == "learning_rate"
    assert importance["importance"].iloc[0] > 0.8
    assert importance["importance"].sum() == pytest.approx(1.0)
    assert set(importance["hyperparameter"]) == {"budget", "learning_rate", "batch_size",
                                                 "optimizer", "momentum"}
    with pytest.raises(ValueError, match="too few"):
        hyperparameter_importance(_trials(4))


# -- folders -----------------------------------------------------------------------------------
def _finished_sweep(folder: Path) -> Path:
    """A finished sweep's two files, as ``show`` reads them (no trial folders)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trials.csv").write_text(
        "trial_id,status,suggested_by,budget,val_acc,train_acc,num_params,timestamp\n"
        "a1,TERMINATED,random,3,0.9,0.95,100,20.0\n")
    (folder / "summary.json").write_text(json.dumps({
        "incumbent": {"learning_rate": 0.01}, "incumbent_trial_id": "a1", "test_accuracy": 0.85,
        "settings": {"dataset": "glyphs-digits", "preset": "3_1_3_1", "started_at": 10.0}}))
    return folder


def test_a_folder_that_is_no_result_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    for folder in ("empty", "notes", "missing"):
        assert main(["report", str(tmp_path / folder)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {tmp_path / folder} ") and "Traceback" not in err
        assert "expected a sweep (trials.csv and summary.json)" in err or "does not exist" in err
    # checked before anything is drawn: a good folder first still writes nothing
    sweep = _finished_sweep(tmp_path / "sweep")
    assert main(["report", str(sweep), str(tmp_path / "empty")]) == 2
    assert not (sweep / "report.html").exists()
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "automl_chars.json").write_text("{}")
    assert main(["report", str(unfinished)]) == 2
    assert "an unfinished sweep" in capsys.readouterr().err


def test_a_sweep_report_imports_neither_ray_nor_torch(tmp_path):
    """``report`` on a sweep runs where neither is installed, like ``show``; a sweep without its
    trial folders still gets a page that says what is missing."""
    sweep = _finished_sweep(tmp_path / "sweep")
    code = ("import sys; from automl_chars.cli.main import main; rc = main(['report', sys.argv[1]]);"
            "print('MODULES', 'ray' in sys.modules, 'torch' in sys.modules); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(sweep)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "MODULES False False" in out.stdout and f"Report: {sweep / 'report.html'}" in out.stdout
    page = (sweep / "report.html").read_text()
    assert "85.00%" in page and "No trial folder holds a progress.csv" in page and "too few to estimate" in page


def _portfolio(folder: Path) -> Path:
    from automl_chars.portfolio.entry import PortfolioEntry, write_manifest

    folder.mkdir()
    entries = [PortfolioEntry(
        name=n, dataset=n, fingerprint="f", classes=("a", "b"), image_shape=(1, 28, 28),
        model="cnn", arch={}, trainable="cnn", config={}, val_acc=v, test_acc=v - 0.05,
        epochs=3, train_seconds=10.0, device="cpu", created_at=time.time(), mean=0.5, std=0.2,
        num_train=100, sample_size=50) for n, v in (("glyphs-greek", 0.9), ("kmnist", 0.8))]
    write_manifest(folder, entries)
    return folder


def _supernet(folder: Path) -> Path:
    from automl_chars.supernet.result import SupernetResult

    for k, sampler in enumerate(("uniform", "thompson")):
        acc = np.array([0.5, 0.7, 0.6])
        table = pd.DataFrame({"subnet": ["1-1", "1-2", "2-2"], "supernet_acc": acc - 0.1 * k,
                              "standalone_acc": acc, "supernet_rank": [3, 1, 2],
                              "standalone_rank": [3, 1, 2], "finetuned_acc": [np.nan, 0.72, 0.61],
                              "sampled": [10, 12, 8]})
        history = pd.DataFrame({"round": np.repeat(np.arange(5), 3), "subnet": ["1-1", "1-2",
                                                                                 "2-2"] * 5,
                                "running_acc": np.linspace(0.1, 0.7, 15)})
        summary = {"sampler": sampler, "kendall_tau": 1.0, "spearman": 1.0,
                   "supernet_top1": "1-2", "standalone_top1": "1-2", "top1_match": True,
                   "costs": {"unit": "CPU-seconds", "supernet": 10.0, "standalone": 30.0,
                             "finetune": 5.0, "ratio": 1 / 3}, "finetune": {}}
        SupernetResult(table, history, summary, folder / sampler).save()
    return folder


def _similarity(folder: Path) -> Path:
    folder.mkdir()
    frame = pd.DataFrame({"frechet": [1.5, 3.0], "frechet_low": [1.2, 2.5],
                          "frechet_high": [1.8, 3.5], "frechet_seconds": [0.4, 0.5],
                          "leep": [-0.5, -1.2], "leep_low": [-0.6, -1.4],
                          "leep_high": [-0.4, -1.0], "leep_seconds": [0.1, 0.1]},
                         index=pd.Index(["glyphs-greek", "kmnist"], name="source"))
    frame.to_csv(folder / "similarity-glyphs-digits.csv")  # as automl-chars similarity does
    return folder


def test_folder_kinds_are_told_by_their_files(tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    shutil.copy(DOCS_IMG / "glyphs.png", figures)
    supernet = _supernet(tmp_path / "supernet")
    kinds = {folder_kind(p) for p in (_finished_sweep(tmp_path / "sweep"), figures, supernet,
                                      supernet / "uniform", _portfolio(tmp_path / "portfolio"),
                                      _similarity(tmp_path / "similarity"))}
    assert kinds == {"sweep", "figures", "supernet", "portfolio", "similarity"}


# -- the page in a browser ---------------------------------------------------------------------
#: Appended to a copy of the page: marks, once everything has loaded, how many images decoded
#: whole (drawn on a canvas, every pixel opaque: the plots have no transparent parts, and a
#: truncated PNG leaves the rows it lacks transparent, though its header gives it a size) and how
#: many tables have rows and take room on the screen.
CHECK_SCRIPT = """<script>
function whole(img) {
  if (!img.complete || img.naturalWidth === 0) return false;
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  const px = g.getImageData(0, 0, c.width, c.height).data;
  let opaque = 0;
  for (let i = 3; i < px.length; i += 4) opaque += px[i] === 255;
  return opaque === c.width * c.height;
}
window.addEventListener("load", () => {  // synchronous: the DOM is dumped right after
  const images = [...document.images], tables = [...document.querySelectorAll("table")];
  const b = document.body.dataset;
  b.images = images.length;
  b.decoded = images.filter(whole).length;
  b.tables = tables.length;
  b.shown = tables.filter(t => t.rows.length > 1 && t.getBoundingClientRect().height > 0).length;
  b.checked = "yes";
});
</script>"""


def browse(page: Path, profile: Path, *flags: str) -> subprocess.CompletedProcess:
    """Headless Chromium on ``page``: no network, no first-run or background work."""
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=10000",
         *flags, page.as_uri()], capture_output=True, text=True, timeout=180)


@pytest.mark.slow
@needs_browser
def test_every_image_and_table_of_the_page_renders_in_chromium(finished_sweeps, tmp_path,
                                                                capsys):
    figures = tmp_path / "benchmark"
    figures.mkdir()
    for png in ("learning_curves.png", "glyphs.png"):
        shutil.copy(DOCS_IMG / png, figures)
    folders = [finished_sweeps["cold"], finished_sweeps["warm"], _portfolio(tmp_path / "pf"),
               _supernet(tmp_path / "supernet"), _similarity(tmp_path / "similarity"), figures]
    page = tmp_path / "page" / "report.html"
    assert main(["report", *map(str, folders), "--out", str(page)]) == 0
    assert f"Report: {page}" in capsys.readouterr().out
    text = page.read_text()
    # self-contained: nothing is loaded from elsewhere
    assert not re.findall(r'(?:src|href)="(?!data:image/png;base64,|#)', text)
    for heading in ("Sweeps compared", "Sweep cold", "Sweep warm", "Warm-start plan",
                    "Hyperparameter importance", "Portfolio pf", "Supernet supernet",
                    "Sampler thompson", "Similarity similarity", "Figures benchmark"):
        assert f">{heading}<" in text, heading
    n_images = text.count("<img ")
    # compared (1), per sweep: best so far, curves, importance, parallel coordinates (8),
    # portfolio (1), supernet: dynamics, counts, two scatters (4), similarity (1), figures (2)
    assert n_images == 17

    checked = tmp_path / "checked.html"
    # A control the check must catch: one image that cannot decode, one table with no rows.
    control = '<img alt="broken" src="data:image/png;base64,AAAA"><table></table>'
    checked.write_text(text.replace("</body>", control + CHECK_SCRIPT + "</body>"))
    dom = browse(checked, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout).group(1)
    marks = {k: int(v) if v.isdigit() else v for k, v in re.findall(r'data-(\w+)="(\w+)"', body)}
    assert marks.get("checked") == "yes", dom.stdout[:500]
    assert marks["images"] == n_images + 1 and marks["decoded"] == n_images
    assert marks["tables"] == text.count("<table") + 1 >= 16
    assert marks["shown"] == marks["tables"] - 1

    shot = tmp_path / "shot.png"
    run = browse(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,1600",
                 "--hide-scrollbars")
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1200, 1600)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200  # text, tables and a plot, not a blank page


@pytest.mark.slow
def test_the_python_api_reports_a_sweep_into_its_folder(finished_sweeps, tmp_path):
    import automl_chars

    sweep = finished_sweeps["warm"]
    out = automl_chars.report(sweep, out=tmp_path / "warm.html", title="Warm sweep")
    text = out.read_text()
    assert "<title>Warm sweep</title>" in text and "How the seeded trials did" in text
    assert text.count("store:glyphs-") >= 2  # the seeds, by where they came from


def test_the_trials_table_lists_failed_trials_after_the_results(finished_sweeps, tmp_path):
    """Every trial is in the page's trials table: a failed one (no result) after the others,
    with its error."""
    import pandas as pd

    import automl_chars

    sweep = Path(shutil.copytree(finished_sweeps["cold"], tmp_path / "cold"))
    trials = pd.read_csv(sweep / "trials.csv", dtype={"trial_id": str, "error": object})
    lost = trials["trial_id"].iloc[0]
    trials.loc[0, ["status", "val_acc", "error"]] = ["FAILED", float("nan"), "diverged: loss nan"]
    trials.to_csv(sweep / "trials.csv", index=False)
    text = automl_chars.report(sweep, out=tmp_path / "page.html").read_text()
    table = text[text.index(f"Trials ({len(trials)}, best first)"):]
    assert table.count("<tr>") == len(trials)  # a row per trial (the header row is styled)
    assert lost in table and "diverged: loss nan" in table
