"""``report``: one self-contained HTML page for result folders, to open offline or send.

Each folder's kind is told by its files (:func:`folder_kind`): a sweep (``trials.csv``,
``summary.json``), a run of given configurations (``run_trials``: its ``summary.json`` counts
jobs), a portfolio (``manifest.json``), a supernet run (``table.csv``, ``history.csv``,
``summary.json`` in it or in its samplers' folders), a similarity table (``similarity-*.csv``) or
a benchmark's figures (``*.png``). Images are embedded as base64 PNG and the page loads nothing
from elsewhere. Several sweeps get one more figure: their best accuracy against wall time,
overlaid (e.g. warm against cold).
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from automl_chars import uris
from automl_chars.errors import ExperimentStateError
from automl_chars.layout import (
    HISTORY_FILE,
    SETTINGS_FILE,
    SUMMARY_FILE,
    TRIALS_FILE,
    WARM_START_FILE,
    read_csv,
    read_json,
    run_folder,
)
from automl_chars.reporting import sweep as sweep_plots
from automl_chars.reporting.plots import learning_curves, save_figure
from automl_chars.reporting.tables import readable_table, results_table, seeded_trials, top_trials
from automl_chars.runner.result import SweepResult

#: The page :func:`report` writes into the (first) folder unless told otherwise.
PAGE_FILE = "report.html"
#: What a folder must hold, by kind (the wording of :func:`folder_kind`'s error).
EXPECTED = ("a sweep (trials.csv and summary.json), a run of given configurations (trials.csv "
            "and a summary.json counting n_jobs), a portfolio (manifest.json), a supernet run "
            "(table.csv, history.csv and summary.json in it or in its samplers' folders), a "
            "similarity table (similarity-*.csv) or a benchmark's figures (*.png)")
#: Files of a supernet sampler's folder (:class:`~automl_chars.supernet.result.SupernetResult`).
SUPERNET_FILES = ("table.csv", HISTORY_FILE, SUMMARY_FILE)
#: Hyperparameters drawn on the parallel coordinates (the most important first).
MAX_AXES = 10
#: Trials table columns beyond :func:`~automl_chars.reporting.tables.top_trials`'s.
MORE_TRIAL_COLUMNS = ("val_loss", "time_total_s", "error")


@dataclass
class Section:
    """One part of the page: a heading, then HTML fragments (figures, tables, notes)."""

    title: str
    parts: list[str] = field(default_factory=list)
    anchor: str = ""


# -- telling folders apart ---------------------------------------------------------------------
def folder_kind(folder: Path) -> str:
    """``sweep``, ``jobs``, ``portfolio``, ``supernet``, ``similarity`` or ``figures``, from the
    files in ``folder``; anything else raises :class:`ExperimentStateError` naming the folder
    and what a result folder holds."""
    if not folder.is_dir():
        where = "is not a folder" if folder.exists() else "does not exist"
        raise ExperimentStateError(f"{uris.shown(folder)} {where}: pass a result folder, i.e. "
                                   f"{EXPECTED}.")
    has = {p.name for p in folder.iterdir()}
    if TRIALS_FILE in has and SUMMARY_FILE in has and "n_jobs" in _json(folder / SUMMARY_FILE):
        return "jobs"
    if TRIALS_FILE in has or SETTINGS_FILE in has:
        return "sweep"  # SweepResult.load says what an unfinished one lacks
    if "manifest.json" in has:
        return "portfolio"
    if _supernet_folders(folder):
        return "supernet"
    if any(n.startswith("similarity-") and n.endswith(".csv") for n in has):
        return "similarity"
    if any(n.endswith(".png") for n in has):
        return "figures"
    raise ExperimentStateError(f"{uris.shown(folder)} is not a result folder: expected "
                               f"{EXPECTED}.")


def _json(path: Path) -> dict:
    return read_json(path, f"Run the job that wrote {path.parent} again with resume=True.")


def _supernet_folders(folder: Path) -> list[Path]:
    """``folder`` if it is a supernet sampler's folder, else its samplers' folders (sorted)."""
    def is_one(p: Path) -> bool:
        return all((p / f).is_file() for f in SUPERNET_FILES)

    if is_one(folder):
        return [folder]
    return sorted(p for p in folder.iterdir() if p.is_dir() and is_one(p))


# -- the page ----------------------------------------------------------------------------------
def report(folders: str | os.PathLike | Sequence[str | os.PathLike],
           out: str | os.PathLike | None = None, title: str | None = None) -> Path:
    """Writes one self-contained HTML page about ``folders`` (result folders of any kind, see
    the module's doc; paths or storage URIs, downloaded first) to ``out`` (default
    ``report.html`` in the first folder; at a storage URI, uploaded there too); returns its
    (local) path.

    Every folder is checked before anything is drawn: one that is not a result raises
    :class:`~automl_chars.errors.ExperimentStateError` naming it and what was expected.
    """
    if isinstance(folders, (str, os.PathLike)):
        folders = [folders]
    if not folders:
        raise ExperimentStateError("report needs at least one result folder.")
    out = uris.local_path(out, "out") if out else None  # a bad URI fails before any download
    paths = [run_folder(f, "folders", recursive=True) for f in folders]
    kinds = [folder_kind(p) for p in paths]
    sweeps = {p: SweepResult.load(p) for p, k in zip(paths, kinds) if k == "sweep"}
    out = out or paths[0] / PAGE_FILE
    if out.is_dir():
        raise ExperimentStateError(f"{uris.shown(out)} is a folder: pass the HTML file to "
                                   f"write (e.g. {uris.shown(out / PAGE_FILE)}).")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="automl_chars_report_") as tmp:
        figures = _Figures(Path(tmp))
        sections = []
        if len(sweeps) > 1:
            sections.append(compared_sweeps(list(sweeps.values()), figures))
        for path, kind in zip(paths, kinds):
            build = SECTIONS[kind]
            sections.append(build(sweeps[path], figures) if kind == "sweep" else
                            build(path, figures))
    title = title or ("Report: " + ", ".join(p.name for p in paths))
    text = page_html(title, sections, paths)
    tmp_out = out.with_name(out.name + ".tmp")
    tmp_out.write_text(text, encoding="utf-8")
    os.replace(tmp_out, out)
    uris.push(out)
    return out


class _Figures:
    """Draws plots into a scratch folder and returns them as ``<figure>`` HTML (base64 PNG)."""

    def __init__(self, folder: Path):
        self.folder, self.count = folder, 0

    def __call__(self, draw: Callable[[Path], Path], caption: str) -> str:
        self.count += 1
        return figure_html((draw(self.folder / f"figure{self.count}.png")).read_bytes(), caption)


def figure_html(png: bytes, caption: str) -> str:
    """A ``<figure>`` holding ``png`` as a data URI, with its caption."""
    data = base64.b64encode(png).decode("ascii")
    text = html.escape(caption)
    return (f'<figure><img alt="{text}" src="data:image/png;base64,{data}">'
            f"<figcaption>{text}</figcaption></figure>")


def table_html(frame: pd.DataFrame, caption: str | None = None, index: bool = False) -> str:
    """``frame`` as an HTML table (values escaped, fractions to four significant digits)."""
    table = frame.to_html(index=index, na_rep="", border=0, classes="data",
                          float_format=_number)
    head = f"<h3>{html.escape(caption)}</h3>" if caption else ""
    return f'{head}<div class="scroll">{table}</div>'


def _number(v: float) -> str:
    """Whole numbers as such (parameter counts), others to four significant digits."""
    return f"{v:.0f}" if float(v).is_integer() and abs(v) < 1e15 else f"{v:.4g}"


def note_html(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def page_html(title: str, sections: list[Section], folders: list[Path]) -> str:
    """The whole page: a heading, the folders, a table of contents and the sections."""
    for i, s in enumerate(sections):
        s.anchor = s.anchor or f"s{i}"
    toc = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections)
    body = "".join(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>{"".join(s.parts)}'
                   f"</section>" for s in sections)
    listed = "".join(f"<li><code>{html.escape(uris.shown(f))}</code></li>" for f in folders)
    made = time.strftime("%Y-%m-%d %H:%M")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p class=\"note\">Made by automl-chars report on "
            f"{made} from:</p><ul>{listed}</ul><nav><ol>{toc}</ol></nav>{body}</body></html>\n")


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; }
.scroll { overflow-x: auto; max-height: 32em; overflow-y: auto; }
table.data { border-collapse: collapse; font-size: 0.85em; }
table.data th, table.data td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
table.data th { background: #f3f3f3; position: sticky; top: 0; }
.note { color: #555; } pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; }
"""


# -- sweeps ------------------------------------------------------------------------------------
def _label(result: SweepResult, others: Sequence[SweepResult]) -> str:
    """A sweep's name on a shared plot: its folder, with its parent where two share a name."""
    same = sum(r.path.name == result.path.name for r in others)
    return result.path.name if same < 2 else f"{result.path.parent.name}/{result.path.name}"


def _trace(result: SweepResult, curves: pd.DataFrame) -> tuple[pd.DataFrame, float | None]:
    """A sweep's best-so-far trace and the seconds of its last result."""
    started = result.settings.get("started_at")
    trace = sweep_plots.incumbent_trace(curves, started)
    if "timestamp" not in curves or curves["timestamp"].isna().all():
        return trace, None
    start = started if started is not None else curves["timestamp"].min()
    return trace, float(curves["timestamp"].max() - start)


def compared_sweeps(results: list[SweepResult], figures: _Figures) -> Section:
    """The sweeps side by side: their best accuracy against wall time and seed 001's table."""
    traces, ends = {}, {}
    for r in results:
        label = _label(r, results)
        traces[label], ends[label] = _trace(r, learning_curves(r.path))
    section = Section("Sweeps compared")
    section.parts.append(figures(lambda out: sweep_plots.plot_incumbents(traces, out, ends),
                                 "Best validation accuracy so far against wall time, per sweep"))
    table = readable_table(results_table(results))
    table.insert(0, "sweep", [_label(r, results) for r in results])
    section.parts.append(table_html(table, "Results (seed 001's table)"))
    return section


def sweep_section(result: SweepResult, figures: _Figures) -> Section:
    """What one sweep found, how fast, and which hyperparameters mattered."""
    s = result.settings
    section = Section(f"Sweep {result.path.name}")
    trials = result.trials
    counts = trials["status"].value_counts().to_dict()
    section.parts.append(
        f"<p>{len(trials)} trials of {html.escape(str(s.get('trainable', 'cnn')))} on "
        f"<b>{html.escape(str(s.get('dataset')))}</b>, preset "
        f"{html.escape(str(s.get('preset')))} ({result.n_model_based} proposed by BOHB's model); "
        f"status: {html.escape(', '.join(f'{k} {v}' for k, v in counts.items()))}. Incumbent "
        f"{html.escape(result.incumbent_trial_id)}: test accuracy "
        f"<b>{100 * result.test_accuracy:.2f}%</b>.</p>")
    section.parts.append(table_html(readable_table(result.table), "Result (seed 001's table)"))
    curves = learning_curves(result.path)
    if curves.empty:
        section.parts.append(note_html("No trial folder holds a progress.csv: no curves to draw."))
    else:
        trace, end = _trace(result, curves)
        label = result.path.name
        section.parts.append(figures(
            lambda out: sweep_plots.plot_incumbents({label: trace}, out, {label: end}),
            "Best validation accuracy so far (any trial, any budget) against wall time"))
        section.parts.append(figures(lambda out: sweep_plots.plot_budget_curves(curves, out),
                                     "Every trial's learning curve, coloured by the budget "
                                     "it reached"))
    names = sweep_plots.hyperparameter_columns(trials)
    try:
        importance = sweep_plots.hyperparameter_importance(trials)
    except ValueError as err:
        importance = None
        section.parts.append(note_html(f"Hyperparameter importance: {err}"))
    if importance is not None:
        section.parts.append(figures(lambda out: sweep_plots.plot_importance(importance, out),
                                     "Hyperparameter importance: a random forest fitted to "
                                     "every trial's last validation accuracy (budget included)"))
        names = [n for n in importance["hyperparameter"] if n != "budget"]
    if names and trials["val_acc"].notna().sum() > 1:
        shown = names[:MAX_AXES]
        section.parts.append(figures(
            lambda out: sweep_plots.plot_parallel_coordinates(trials, out, shown),
            f"Parallel coordinates: budget, the {len(shown)} most important hyperparameters and "
            f"validation accuracy, one line per trial"))
    if importance is not None:
        section.parts.append(table_html(importance, "Hyperparameter importance"))
    section.parts.append(table_html(pd.DataFrame(
        {"hyperparameter": list(result.incumbent), "value": [str(v) for v in
                                                              result.incumbent.values()]}),
        f"Incumbent configuration ({result.incumbent_trial_id})"))
    if (result.path / WARM_START_FILE).exists():
        section.parts.extend(warm_start_parts(result))
    best = top_trials(result, len(trials))  # results only; failed and infeasible ones after
    rest = trials.loc[~trials.index.isin(best.index), [c for c in best.columns if c in trials]]
    more = [c for c in MORE_TRIAL_COLUMNS if c in trials and trials[c].notna().any()]
    shown = pd.concat([best, rest]).join(trials[more])
    section.parts.append(table_html(shown, f"Trials ({len(trials)}, best first)"))
    return section


def warm_start_parts(result: SweepResult) -> list[str]:
    """The warm start's plan (``warm_start.json``): seeds, priors, source ranking, nearest
    datasets, notes, and how the seeded trials did."""
    plan = _json(result.path / WARM_START_FILE)
    parts = ["<h3>Warm-start plan</h3>"]
    priors = plan.get("priors", {})
    parts.append(f"<p>{len(plan.get('seeds', []))} seeded trial(s); BOHB's model started from "
                 f"{priors.get('count', 0)} prior result(s) of "
                 f"{html.escape(', '.join(priors.get('datasets', [])) or 'no dataset')} at "
                 f"budgets {html.escape(', '.join(map(str, priors.get('budgets', []))) or '-')}"
                 f".</p>")
    seeds = pd.DataFrame([{"suggested_by": s.get("suggested_by"), "reason": s.get("reason")}
                          for s in plan.get("seeds", [])])
    if not seeds.empty:
        parts.append(table_html(seeds, "Seeds"))
        parts.append(table_html(seeded_trials(result.trials), "How the seeded trials did"))
    for key, caption in (("ranking", "Sources ranked by similarity"),
                         ("neighbours", "Nearest datasets (meta-features)")):
        if plan.get(key):
            parts.append(table_html(pd.DataFrame(plan[key]), caption))
    parts += [note_html(f"Note: {n}") for n in plan.get("notes", [])]
    return parts


# -- other results -----------------------------------------------------------------------------
def jobs_section(folder: Path, figures: _Figures) -> Section:
    """A run of given configurations (``run_trials``): its trials and their learning curves."""
    hint = f"Run the jobs that wrote {uris.shown(folder)} again with resume=True."
    trials = read_csv(folder / TRIALS_FILE, hint, dtype={"trial_id": str})
    section = Section(f"Runs {folder.name}")
    curves = learning_curves(folder)
    if not curves.empty:
        section.parts.append(figures(lambda out: sweep_plots.plot_budget_curves(curves, out),
                                     "Every run's learning curve"))
    section.parts.append(table_html(trials.drop(columns=[c for c in trials if "/" in c]),
                                    f"Runs ({len(trials)})"))
    return section


def portfolio_section(folder: Path, figures: _Figures) -> Section:
    """A portfolio's entries and their accuracies on their own source."""
    from automl_chars.portfolio import Portfolio

    entries = Portfolio.load(folder).entries
    section = Section(f"Portfolio {folder.name}")
    if entries.empty:
        section.parts.append(note_html("The portfolio has no entries yet."))
        return section
    section.parts.append(figures(lambda out: plot_accuracies(entries, out),
                                 "Each entry's accuracy on its source's validation and test "
                                 "splits"))
    section.parts.append(table_html(entries.drop(columns=["created_at", "fingerprint"]),
                                    f"Entries ({len(entries)})"))
    return section


def plot_accuracies(entries: pd.DataFrame, out: Path) -> Path:
    """Grouped bars: validation and test accuracy per portfolio entry."""
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(entries))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(entries) + 2), 3.8))
    ax.bar(x - 0.2, entries["val_acc"], 0.4, label="validation")
    ax.bar(x + 0.2, entries["test_acc"], 0.4, label="test")
    ax.set_xticks(x, entries["name"], rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="accuracy", ylim=(0, 1), title="Portfolio entries on their own source")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, out)


def similarity_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """Target -> the similarity table of each ``similarity-<target>.csv`` in ``folder`` (as
    ``automl-chars similarity`` writes it), with the orientation of each measure in its attrs
    (what :func:`~automl_chars.similarity.plot_heatmap` reads)."""
    from automl_chars.similarity import MEASURES

    out = {}
    for csv in sorted(folder.glob("similarity-*.csv")):
        frame = read_csv(csv, "Write it again with automl-chars similarity --csv.")
        frame = frame.set_index(frame.columns[0])
        measures = [m for m in frame if f"{m}_low" in frame and m in MEASURES]
        target = csv.stem[len("similarity-"):]
        frame.attrs.update(target=target, higher_is_more_similar={
            m: MEASURES.get(m).higher_is_more_similar for m in measures})
        out[target] = frame
    return out


def similarity_section(folder: Path, figures: _Figures) -> Section:
    """Each similarity table in the folder as a heatmap and its scores."""
    from automl_chars.similarity import plot_heatmap

    section = Section(f"Similarity {folder.name}")
    for target, frame in similarity_tables(folder).items():
        measures = list(frame.attrs["higher_is_more_similar"])
        if not measures:
            section.parts.append(note_html(f"similarity-{target}.csv names no known measure."))
            continue
        section.parts.append(figures(lambda out, f=frame: plot_heatmap(f, out),
                                     f"Similarity of each source to {target} (dark: most "
                                     f"similar by that measure)"))
        section.parts.append(table_html(frame[measures], f"Scores for target {target}",
                                        index=True))
    return section


def supernet_section(folder: Path, figures: _Figures) -> Section:
    """A supernet run: per sampler the scatter against standalone training and its table; the
    samplers' dynamics and sampling counts side by side."""
    from automl_chars.reporting.supernet import plot_counts, plot_dynamics, plot_scatter
    from automl_chars.supernet.result import SupernetResult, format_summary

    results = [SupernetResult.load(p) for p in _supernet_folders(folder)]
    section = Section(f"Supernet {folder.name}")
    section.parts.append(figures(lambda out: plot_dynamics(results, out),
                                 "Each subnet's running validation accuracy over training "
                                 "rounds, per sampler"))
    section.parts.append(figures(lambda out: plot_counts(results, out),
                                 "Rounds that trained each subnet, per sampler"))
    for r in results:
        section.parts.append(f"<h3>Sampler {html.escape(r.sampler)}</h3>"
                             f"<pre>{html.escape(format_summary(r))}</pre>")
        section.parts.append(figures(lambda out, r=r: plot_scatter(r, out),
                                     f"{r.sampler}: top-1 in the supernet against standalone"))
        section.parts.append(table_html(r.table, f"{r.sampler}: subnets"))
    return section


def figures_section(folder: Path, figures: _Figures) -> Section:
    """Every PNG in the folder (a benchmark's figures), by file name."""
    section = Section(f"Figures {folder.name}")
    for png in sorted(folder.glob("*.png")):
        section.parts.append(figure_html(png.read_bytes(), png.name))
    return section


#: Kind -> what draws its section (a sweep's from its loaded result, the others from the folder).
SECTIONS: dict[str, Callable] = {
    "sweep": sweep_section, "jobs": jobs_section, "portfolio": portfolio_section,
    "supernet": supernet_section, "similarity": similarity_section, "figures": figures_section,
}
