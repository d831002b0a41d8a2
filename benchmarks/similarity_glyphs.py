"""Which glyph domain resembles which? Every similarity measure on the built-in glyph domains.

Trains a small CNN on each ``glyphs-*`` domain (the portfolio), then takes a fresh sample of each
domain (another generator seed) as the target and compares it with every source by every
measure. Prints, per measure, how often a domain's own source ranks first ("self-recognition",
a sanity check: a measure that cannot recognise the domain itself will not rank other sources
well either) and the seconds per target; writes a heatmap per measure (targets x sources) and
the full table of one target. The figures of docs/similarity.md come from the default run
(CPU, a few minutes)::

    python benchmarks/similarity_glyphs.py [--out docs/img] [--steps 600] [--smoke]

The last line, ``ratio:``, is the mean self-recognition over the measures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from automl_chars import data
from automl_chars.models import CNNSpec, ConvLayerSpec, FCLayerSpec, build_model
from automl_chars.similarity import MEASURES, Context, SourceView, plot_heatmap, similarity
from automl_chars.training.loop import pixel_mean_std

DOMAINS = ("glyphs-digits", "glyphs-latin-upper", "glyphs-latin-lower", "glyphs-greek",
           "glyphs-cyrillic", "glyphs-armenian", "glyphs-georgian", "glyphs-hebrew")
SPEC = CNNSpec(conv=(ConvLayerSpec(16, 3, 1, 1, True, 0.0, 2), ConvLayerSpec(32, 3, 1, 1, True, 0.0, 2)),
               fc=(FCLayerSpec(64, False, 0.0),))


def train(ds: data.Dataset, steps: int, seed: int = 0) -> tuple[torch.nn.Module, float]:
    """A small CNN trained with Adam on normalised images; returns it and its test accuracy."""
    torch.manual_seed(seed)
    model = build_model("cnn", SPEC, ds.num_classes)
    mean, std = pixel_mean_std(ds.x_train)
    x, y = (ds.x_train.float() / 255 - mean) / std, ds.y_train
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(y), (64,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model((ds.x_test.float() / 255 - mean) / std).argmax(1) == ds.y_test).float().mean()
    return model, float(acc)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None,
                   help="folder for the PNGs and CSVs (default ./similarity_glyphs; with --smoke a "
                        "temporary folder)")
    p.add_argument("--samples-per-class", type=int, default=60)
    p.add_argument("--steps", type=int, default=600, help="training steps per source model")
    p.add_argument("--sample-size", type=int, default=300)
    p.add_argument("--bootstrap", type=int, default=0)
    p.add_argument("--reference", default="glyphs-cyrillic",
                   help="domain whose model is the reference network (most classes by default)")
    p.add_argument("--root", default=None, help="data root (default $AUTOML_CHARS_DATA)")
    p.add_argument("--smoke", action="store_true", help="three domains, tiny models (tests)")
    args = p.parse_args(argv)
    domains = DOMAINS
    if args.reference not in domains:
        p.error(f"--reference must be one of {', '.join(domains)}")
    if args.smoke:
        domains = ("glyphs-digits", "glyphs-greek", "glyphs-cyrillic")
        args.reference = "glyphs-cyrillic"
        args.samples_per_class, args.steps, args.sample_size = 6, 40, 48
        torch.set_num_threads(1)  # tiny tensors: a second thread only adds contention
    if args.out is None:
        args.out = tempfile.mkdtemp(prefix="similarity_glyphs_") if args.smoke else "similarity_glyphs"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    views, accuracy = [], {}
    for name in domains:
        ds = data.load(name, root=args.root, samples_per_class=args.samples_per_class)
        start = time.perf_counter()
        model, accuracy[name] = train(ds, args.steps)
        print(f"trained {name}: test accuracy {accuracy[name]:.3f} "
              f"({time.perf_counter() - start:.1f} s)", flush=True)
        views.append(SourceView.from_dataset(name, ds, model, args.sample_size, seed=0))

    measures = MEASURES.names()
    rows = {m: {} for m in measures}
    seconds = {m: [] for m in measures}
    tables = {}
    # one context for all targets: the sources' network outputs and states are computed once
    context = Context(next(v for v in views if v.name == args.reference), seed=1)
    for name in domains:
        # fresh images of the same domain: another generator seed
        target = data.load(name, root=args.root, samples_per_class=args.samples_per_class, seed=1)
        table = similarity(target, views, "all", sample_size=args.sample_size, seed=1,
                           bootstrap=args.bootstrap, context=context)
        tables[name] = table
        for m in measures:
            rows[m][name] = table[m]
            seconds[m].append(float(table[f"{m}_seconds"].sum()))

    print(f"\nreference network: {args.reference}; sample {args.sample_size} images per target")
    summary = []
    for m in measures:
        matrix = pd.DataFrame(rows[m]).T
        matrix.index.name, matrix.columns.name = "target", "source"
        higher = MEASURES.get(m).higher_is_more_similar
        matrix.attrs.update(measure=m, higher_is_more_similar=higher)
        best = matrix.idxmax(axis=1) if higher else matrix.idxmin(axis=1)
        self_rate = float(np.mean([best[t] == t for t in matrix.index]))
        summary.append({"measure": m, "self_recognition": self_rate,
                        "seconds_per_target": float(np.mean(seconds[m]))})
        matrix.to_csv(out / f"similarity_glyphs_{m}.csv")
        plot_heatmap(matrix, out / f"similarity_glyphs_{m}.png",
                     title=f"{m} on glyph domains ({'higher' if higher else 'lower'} = more similar)")
    first = domains[0]
    plot_heatmap(tables[first], out / "similarity_glyphs_table.png")
    tables[first].to_csv(out / "similarity_glyphs_table.csv")
    frame = pd.DataFrame(summary).set_index("measure")
    print(frame.round(3).to_string())
    print(f"\ntable for target {first}:")
    print(tables[first][measures + ["sen_label_l1", "sen_labels_only"]].round(3).to_string())
    for m, row in frame.iterrows():
        print(f"{m}_self_recognition: {row['self_recognition']:.3f}")
    print(f"ratio: {frame['self_recognition'].mean():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
