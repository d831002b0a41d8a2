"""Builds the shipped learning-curve table (automl_chars/tabular/data/glyph-curves/): the CNN
space's default and 200 drawn configurations, 9 epochs each, on every glyph domain at 100
training images per class, one domain (one resumable Ray run) at a time.

    python scripts/build_glyph_table.py        # CPU hours: stop it any time, run it again to go on
    python scripts/build_glyph_table.py --gpus-per-trial 0.25     # where there is a GPU
    python scripts/build_glyph_table.py --smoke --into /tmp/parts  # a tiny build (tested)

A finished domain's part is written into --into and never trained again; the domain in progress
continues from its Ray run in --storage (finished trials kept).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from automl_chars.cli.options import summary_of
from automl_chars.data.glyphs import DOMAINS
from automl_chars.errors import SweepInterrupted
from automl_chars.tabular.shipped import SHIPPED_BUILD, SHIPPED_DIR, part_path
from automl_chars.workflows.table import build_table

SMOKE_DOMAINS = ("glyphs-digits",)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=summary_of(__doc__))
    p.add_argument("--into", default=None, help="folder of the per-domain parts (default: the "
                   "package's shipped table; with --smoke a temporary folder)")
    p.add_argument("--storage", default=None,
                   help="results root of the Ray runs (default ~/automl_chars_results)")
    p.add_argument("--domains", default=",".join(DOMAINS), help="comma-separated glyph domains")
    p.add_argument("--gpus-per-trial", type=float, default=0.0)
    p.add_argument("--verbose", type=int, default=1)
    p.add_argument("--smoke", action="store_true",
                   help="one domain, 2 configurations, 1 epoch, 4 images per class")
    args = p.parse_args(argv)
    domains = SMOKE_DOMAINS if args.smoke else tuple(args.domains.split(","))
    unknown = [d for d in domains if d not in DOMAINS]
    if unknown:
        p.error(f"--domains: unknown glyph domains {unknown}; choose from {list(DOMAINS)}")
    # a smoke never writes into the shipped table, nor continues a real build's Ray run
    into = args.into or (tempfile.mkdtemp(prefix="glyph-table-smoke-") if args.smoke
                         else str(SHIPPED_DIR))
    prefix = "table-smoke" if args.smoke else "table"
    build = dict(n_configs=2, max_epochs=1, samples_per_class=4, seed=0) if args.smoke else \
        dict(n_configs=SHIPPED_BUILD.n_configs, max_epochs=SHIPPED_BUILD.max_epochs,
             samples_per_class=SHIPPED_BUILD.samples_per_class, seed=SHIPPED_BUILD.seed)
    start = time.perf_counter()
    for domain in domains:
        out = part_path(domain, into)
        try:
            table = build_table([domain], **build, storage_path=args.storage, resume=True,
                                gpus_per_trial=args.gpus_per_trial, out=out,
                                name=f"{prefix}-{domain}", verbose=args.verbose)
        except SweepInterrupted as stop:
            print(f"{stop}\nStopped in {domain}; run the same command again to go on.")
            return stop.exit_code
        best = table.best(domain)
        print(f"{domain}: {len(table.configs)} configurations, best val_acc "
              f"{best['val_acc']:.4f} (config {int(best['config_id'])}) -> {out}")
    print(f"seconds: {time.perf_counter() - start:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
