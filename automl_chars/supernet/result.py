"""``SupernetResult``: seed 002's table (each subnet's top-1 in the supernet and standalone), the
rank correlations, top-k fine-tuning and the costs, saved in the run's folder and read back.

Files in ``<storage>/<name>/<sampler>/`` (beside the ``supernet/`` and ``finetune/`` trial runs;
the standalone runs are in ``<storage>/<name>/standalone/``, shared by every sampler):

- ``table.csv``: :attr:`SupernetResult.table`;
- ``history.csv``: :attr:`SupernetResult.history` (each subnet's running accuracy over rounds);
- ``summary.json``: correlations, top-1, fine-tuning, costs, pruning, settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from automl_chars.errors import DamagedFileError, ExperimentStateError
from automl_chars.layout import read_csv, read_json, run_folder, write_csv, write_json

TABLE_FILE = "table.csv"
HISTORY_FILE = "history.csv"
SUMMARY_FILE = "summary.json"
#: What to do about a damaged file of a sampler's folder.
REWRITE_HINT = ("Run the same supernet run again with resume=True (command line: the same "
                "command with --resume): its finished parts are read back, without training, and "
                "the sampler's files written again.")


@dataclass
class SupernetResult:
    """What :func:`~automl_chars.supernet.run_supernet` measured for one sampler.

    Attributes:
        table: one row per subnet (:data:`~automl_chars.supernet.ranking.RANKING_COLUMNS`):
            test top-1 in the supernet (extracted, batch norm recalibrated) and standalone, their
            ranks, test top-1 after fine-tuning (top-k only) and rounds sampled; then its costs
            ``params``, ``flops``, ``latency_ms`` (see :mod:`automl_chars.supernet.select`).
        history: ``round``, ``subnet``, ``running_acc`` (the sampler's running validation top-1).
        summary: correlations, top-1 match, fine-tuning, costs, pruning and settings.
        path: the sampler's folder.
    """

    table: pd.DataFrame
    history: pd.DataFrame
    summary: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def sampler(self) -> str:
        return str(self.summary.get("sampler"))

    @property
    def kendall_tau(self) -> float:
        return float(self.summary["kendall_tau"])

    @property
    def spearman(self) -> float:
        return float(self.summary["spearman"])

    @property
    def top1_match(self) -> bool:
        """Whether the supernet's best subnet is the standalone best."""
        return bool(self.summary["top1_match"])

    @property
    def top1_regret(self) -> float:
        """Standalone top-1 of the best standalone-trained subnet minus that of the supernet's
        choice among them (DARTS: of its derived subnet); 0 when it chose right."""
        return float(self.summary["top1_regret"])

    @property
    def standalone_sample(self) -> dict | None:
        """The stratified sample trained standalone (``subnets``, ``strata``, ...; see
        :class:`~automl_chars.supernet.standalone.StandaloneSample`), None when all were."""
        return self.summary.get("standalone_sample")

    @property
    def costs(self) -> dict:
        """``unit`` (CPU- or GPU-seconds), ``supernet``, ``standalone`` (every subnet's; from a
        standalone sample estimated per stratum: ``standalone_estimated``),
        ``standalone_sampled`` (what the standalone-trained ones took), ``finetune``, ``ratio``
        (supernet / standalone) and ``ratio_sampled`` (supernet / standalone_sampled)."""
        return dict(self.summary["costs"])

    @property
    def cost_ratio(self) -> float:
        return float(self.summary["costs"]["ratio"])

    @property
    def finetune(self) -> dict:
        """``subnets`` fine-tuned (top-k by supernet validation top-1), ``chosen`` (best
        fine-tuned validation top-1), ``right_top1`` (chosen == standalone best), ordering
        ``errors_before``/``errors_after`` among them."""
        return dict(self.summary.get("finetune", {}))

    @property
    def darts(self) -> dict:
        """A DARTS run's answer (empty for a sampler): ``derived`` (the argmax architecture),
        ``derived_standalone_rank`` and ``derived_standalone_acc`` (its rank and test top-1
        trained standalone), ``epochs_to_final``, per-epoch ``history``,
        ``arch_prob_kendall_tau`` (subnets ranked by their probability against standalone),
        ``arch_weights`` (the saved file) and ``warm_start`` (the neighbour, or None)."""
        return dict(self.summary.get("darts") or {})

    def save(self) -> None:
        if self.path is None:
            raise ExperimentStateError("This SupernetResult has no folder to save to.")
        self.path.mkdir(parents=True, exist_ok=True)
        write_csv(self.path / TABLE_FILE, self.table)
        write_csv(self.path / HISTORY_FILE, self.history)
        write_json(self.path / SUMMARY_FILE, {**self.summary, "n_subnets": len(self.table),
                                                  "n_history": len(self.history)})

    @classmethod
    def load(cls, path: str | os.PathLike) -> SupernetResult:
        """Reads a finished run's sampler folder (as written by :meth:`save`; a path or a
        storage URI); a damaged file raises :class:`~automl_chars.errors.DamagedFileError`
        naming it and what to do."""
        path = run_folder(path)
        files = [path / f for f in (TABLE_FILE, HISTORY_FILE, SUMMARY_FILE)]
        if not all(f.exists() for f in files):
            raise ExperimentStateError(
                f"{path} is not a finished supernet run (no {TABLE_FILE}/{SUMMARY_FILE}); an "
                f"interrupted one continues with resume=True (CLI: --resume)."
            )
        summary = read_json(files[2], REWRITE_HINT)
        table = read_csv(files[0], REWRITE_HINT, ("subnet", "supernet_acc", "standalone_acc"),
                         dtype={"subnet": str})
        if summary.get("n_subnets") not in (None, len(table)):
            raise DamagedFileError(files[0], f"truncated: {len(table)} of the "
                                   f"{summary['n_subnets']} subnets {SUMMARY_FILE} counts",
                                   REWRITE_HINT)
        history = read_csv(files[1], REWRITE_HINT, ("round", "subnet", "running_acc"))
        if summary.get("n_history") not in (None, len(history)):
            raise DamagedFileError(files[1], f"truncated: {len(history)} of the "
                                   f"{summary['n_history']} rows {SUMMARY_FILE} counts",
                                   REWRITE_HINT)
        return cls(table, history, summary, path)

    def __repr__(self) -> str:
        return (f"SupernetResult({self.sampler}: {len(self.table)} subnets, kendall_tau="
                f"{self.kendall_tau:.3f}, spearman={self.spearman:.3f}, top1_match="
                f"{self.top1_match}, cost_ratio={self.cost_ratio:.3f}, path={str(self.path)!r})")


def format_table(result: SupernetResult, sampled_only: bool = False) -> str:
    """Seed 002's table with ranks, as text (``sampled_only``: the standalone-trained rows)."""
    t = result.table.copy()
    if sampled_only:
        t = t.dropna(subset=["standalone_acc"])
    for col in ("supernet_acc", "standalone_acc", "finetuned_acc"):
        t[col] = t[col].map(lambda v: "" if v != v else f"{v:.4f}")
    t = t.rename(columns={"subnet": "Subnet", "supernet_acc": "Top-1 in supernet",
                          "standalone_acc": "Top-1 standalone", "supernet_rank": "rank (supernet)",
                          "standalone_rank": "rank (standalone)", "finetuned_acc": "Top-1 fine-tuned",
                          "sampled": "rounds sampled"})
    return t.to_string(index=False)


def format_summary(result: SupernetResult) -> str:
    """The correlations, top-1, fine-tuning and costs in a few lines."""
    s, c, f = result.summary, result.costs, result.finetune
    sample = result.standalone_sample
    over = (f" over the {len(sample['subnets'])} of {sample['n_subnets']} subnets trained "
            f"standalone (a stratified sample)" if sample else "")
    regret = f", top-1 regret {s['top1_regret']:.4f}" if "top1_regret" in s else ""
    # the supernet's first among the standalone-trained subnets; DARTS's answer: its derived
    chosen = s["supernet_top1"] if result.darts else s.get("supernet_top1_sampled",
                                                               s["supernet_top1"])
    lines = [
        f"sampler {result.sampler}: Kendall tau {s['kendall_tau']:.3f}, Spearman "
        f"{s['spearman']:.3f}{over}; supernet top-1 {chosen} vs standalone top-1 "
        f"{s['standalone_top1']} "
        f"({'match' if s['top1_match'] else 'no match'}){regret}",
    ]
    if c.get("standalone_estimated"):
        lines.append(
            f"cost ({c['unit']}): supernet {c['supernet']:.1f}, all standalone (estimated) "
            f"{c['standalone']:.1f} (ratio {c['ratio']:.3f}), the {c['n_standalone']} sampled "
            f"{c['standalone_sampled']:.1f} (ratio {c['ratio_sampled']:.3f}), fine-tuning "
            f"{c['finetune']:.1f}")
    else:
        lines.append(f"cost ({c['unit']}): supernet {c['supernet']:.1f}, all standalone "
                     f"{c['standalone']:.1f} (ratio {c['ratio']:.3f}), fine-tuning "
                     f"{c['finetune']:.1f}")
    if f.get("subnets"):
        lines.append(
            f"top-{len(f['subnets'])} fine-tuning: chose {f['chosen']} "
            f"({'right' if f['right_top1'] else 'wrong'} top-1); ordering errors among them "
            f"{len(f['errors_before'])} before, {len(f['errors_after'])} after"
        )
    d = result.darts
    if d:
        warm = d.get("warm_start")
        lines.append(
            f"DARTS derived {d['derived']}: standalone rank {d['derived_standalone_rank']} of "
            f"{d['n_subnets']} (test top-1 {d['derived_standalone_acc']:.4f}), final from epoch "
            f"{d['epochs_to_final']}; "
            + (f"warm-started from {warm['dataset']} (portfolio rank {warm['rank']} by "
               f"{warm['measure']}, its derived {warm['derived']})" if warm else "cold start"))
    if s.get("pruned"):
        lines.append(f"pruned: {', '.join(p['subnet'] for p in s['pruned'])}")
    return "\n".join(lines)
