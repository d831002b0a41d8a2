"""Builds the shipped learning-curve table (automl_chars/tabular/data/glyph-curves/): the CNN
space's default and 200 drawn configurations, 9 epochs each, on every glyph domain at 100
training images per class, one domain at a time, a slice of configurations (one resumable Ray
run) at a time.

    python scripts/build_glyph_table.py        # CPU hours: stop it any time, run it again to go on
    python scripts/build_glyph_table.py --gpus-per-trial 0.25     # where there is a GPU
    python scripts/build_glyph_table.py --smoke --into /tmp/parts  # a tiny build (tested)

A finished domain's part is written into --into and never trained again. A finished slice's
table is written into --progress (commit it: a new machine goes on from the slices there, where
the Ray runs in --storage are gone); the slice in progress continues from its Ray run in
--storage (finished trials kept). A trial that errored (not a diverged configuration: a process
that died) stops the build with its name; run the command again to train it from scratch.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from automl_chars.cli.options import summary_of
from automl_chars.data.glyphs import DOMAINS
from automl_chars.errors import SweepInterrupted, TableError
from automl_chars.tabular import LearningCurveTable
from automl_chars.tabular.shipped import SHIPPED_BUILD, SHIPPED_DIR, part_path
from automl_chars.workflows.table import build_table

SMOKE_DOMAINS = ("glyphs-digits",)
#: Finished slices of the domains in progress, kept in the repository between machines.
PROGRESS_DIR = Path(__file__).resolve().parent / "table-progress"


def slices(n_ids: int, size: int) -> list[list[int]]:
    """Config ids 0..n_ids-1 in consecutive slices of ``size`` (the last may be shorter)."""
    return [list(range(a, min(a + size, n_ids))) for a in range(0, n_ids, size)]


def slice_path(progress: Path, domain: str, ids: list[int]) -> Path:
    """The file of a finished slice of ``domain``'s build."""
    return progress / domain / f"configs-{ids[0]:03d}-{ids[-1]:03d}.parquet"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=summary_of(__doc__))
    p.add_argument("--into", default=None, help="folder of the per-domain parts (default: the "
                   "package's shipped table; with --smoke a temporary folder)")
    p.add_argument("--storage", default=None,
                   help="results root of the Ray runs (default ~/automl_chars_results)")
    p.add_argument("--domains", default=",".join(DOMAINS), help="comma-separated glyph domains")
    p.add_argument("--progress", default=None, help="folder of finished slices (default: "
                   "scripts/table-progress; with --smoke a temporary folder)")
    p.add_argument("--slice", type=int, default=21, help="configurations per slice (one Ray "
                   "run each; default 21)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0)
    p.add_argument("--verbose", type=int, default=1)
    p.add_argument("--smoke", action="store_true",
                   help="one domain, 2 configurations, 1 epoch, 4 images per class")
    args = p.parse_args(argv)
    domains = SMOKE_DOMAINS if args.smoke else tuple(args.domains.split(","))
    unknown = [d for d in domains if d not in DOMAINS]
    if unknown:
        p.error(f"--domains: unknown glyph domains {unknown}; choose from {list(DOMAINS)}")
    if args.slice < 1:
        p.error(f"--slice: configurations per slice must be >= 1, got {args.slice}")
    # a smoke never writes into the shipped table, nor continues a real build's Ray run
    into = args.into or (tempfile.mkdtemp(prefix="glyph-table-smoke-") if args.smoke
                         else str(SHIPPED_DIR))
    progress = Path(args.progress or (tempfile.mkdtemp(prefix="glyph-table-progress-")
                                      if args.smoke else PROGRESS_DIR))
    prefix = "table-smoke" if args.smoke else "table"
    build = dict(n_configs=2, max_epochs=1, samples_per_class=4, seed=0) if args.smoke else \
        dict(n_configs=SHIPPED_BUILD.n_configs, max_epochs=SHIPPED_BUILD.max_epochs,
             samples_per_class=SHIPPED_BUILD.samples_per_class, seed=SHIPPED_BUILD.seed)
    start = time.perf_counter()
    for domain in domains:
        out = part_path(domain, into)
        if out.exists():  # read back, checked to be this build's part (no training)
            try:
                build_table([domain], **build, storage_path=args.storage, resume=True, out=out,
                            name=f"{prefix}-{domain}", verbose=args.verbose)
            except TableError as err:
                print(f"{err}\nStopped in {domain}.")
                return 1
            print(f"{domain}: built before -> {out}")
            continue
        parts = []
        for ids in slices(build["n_configs"] + 1, args.slice):
            into_slice = slice_path(progress, domain, ids)
            try:
                parts.append(build_table(
                    [domain], **build, storage_path=args.storage, resume=True,
                    gpus_per_trial=args.gpus_per_trial, out=into_slice, config_ids=ids,
                    name=f"{prefix}-{domain}-{ids[0]}-{ids[-1]}", verbose=args.verbose))
            except SweepInterrupted as stop:
                print(f"{stop}\nStopped in {domain}; run the same command again to go on.")
                return stop.exit_code
            except TableError as err:
                print(f"{err}\nStopped in {domain}.")
                return 1
            print(f"{domain}: configurations {ids[0]}..{ids[-1]} -> {into_slice}", flush=True)
        table = LearningCurveTable.join_configs(parts)
        table.save(out)
        shutil.rmtree(progress / domain)  # the part holds every slice now
        best = table.best(domain)
        print(f"{domain}: {len(table.configs)} configurations, best val_acc "
              f"{best['val_acc']:.4f} (config {int(best['config_id'])}) -> {out}")
    print(f"seconds: {time.perf_counter() - start:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
