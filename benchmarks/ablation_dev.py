"""Evaluate every finished run of shapes ablations on a development set: a fresh draw of the shapes generator, so that
settings are chosen on images that are neither the training images nor the held-out validation set the tables report.

    python benchmarks/ablation_dev.py runs/table3 runs/snapshot [...] --out runs/dev.csv

The issue behind it (Table 3 on a laptop) asks that defaults be chosen on a split of their own, never on the
evaluation split. The shapes generator is a function of (seed, split, image index), so its validation split under
another seed (`--dev-seed`, default 1000; the kit's data use seed 0) is a new sample of the same distribution: 600
images by default, twice the validation set, to halve the variance of the choice. Each run is read back from its
folder's newest checkpoint (the last iteration for a finished run), the teacher for a semi-supervised method and the
student for supervised, exactly as `ablation.csv` reports them. Writes one CSV row per (ablation, method, variant,
seed) with the validation AP of `ablation.csv` beside the dev AP, and prints per (method, variant) the mean ± std over
seeds of both, and the dev AP's paired difference to the first variant of the same method with its 95 % interval.
"""
from __future__ import annotations
import argparse, math, sys, time
from pathlib import Path

import pandas as pd
import torch

from crossmatch.training.ablation import paired_difference
from crossmatch.training.checkpoint import load_detectors
from crossmatch.data.coco import CocoDetection
from crossmatch.training.evaluate import evaluate_detector
from crossmatch.training.inference import run_category_map
from crossmatch.data.shapes import ShapesPreset, generate_shapes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import header  # noqa: E402


def dev_set(root: str, seed: int, images: int) -> tuple[Path, Path]:
    "Images folder and COCO JSON of the dev draw (the validation split of a one-training-image shapes set)."
    paths = generate_shapes(ShapesPreset('dev', n_train=1, n_val=images), root, seed=seed)
    return paths.val_images, paths.val_json


def dev_metrics(run_dir: str, model: str, images: Path, annotations: Path) -> dict[str, float]:
    "COCO AP of the run's newest checkpoint's `model` ('teacher' or 'student') on the dev set."
    detectors = load_detectors(run_dir)
    if detectors.config.data.protocol != 'shapes':
        raise ValueError(f"{run_dir}: the dev set is a shapes draw, but the run trained on {detectors.config.data.protocol!r}")
    dataset = CocoDetection(images, annotations, category_map=run_category_map(detectors.config.data, detectors.num_classes))
    return evaluate_detector(getattr(detectors, model), dataset, torch.device('cpu'))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('ablations', nargs='+', help="ablation folders (each holds ablation.csv)")
    parser.add_argument('--out', required=True, help="CSV to write, one row per run")
    parser.add_argument('--dev-seed', type=int, default=1000, help="shapes generator seed of the dev set (default: %(default)s)")
    parser.add_argument('--images', type=int, default=600, help="dev images (default: %(default)s)")
    parser.add_argument('--root', default='data', help="where generated data are cached (default: %(default)s)")
    parser.add_argument('--threads', type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    print(header(threads=torch.get_num_threads()))
    images, annotations = dev_set(args.root, args.dev_seed, args.images)
    rows, cache = [], {}
    for folder in args.ablations:
        table = pd.read_csv(Path(folder) / 'ablation.csv')
        for run in table.itertuples():
            key = (run.run_dir, run.model)
            if key not in cache:
                started = time.perf_counter()
                cache[key] = dev_metrics(run.run_dir, run.model, images, annotations)
                print(f"{run.run_dir} ({run.model}): dev AP {cache[key]['AP']:.2f}, val AP {run.AP:.2f} "
                      f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
            rows.append(dict(ablation=folder, method=run.method, variant=run.variant, seed=run.seed, model=run.model,
                             val_AP=run.AP, val_AP50=run.AP50, dev_AP=cache[key]['AP'], dev_AP50=cache[key]['AP50'],
                             run_dir=run.run_dir))
    frame = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"dev set: shapes seed {args.dev_seed}, {args.images} images ({images})\n")
    print("| ablation | method | variant | seeds | val AP | dev AP | Δ dev AP vs the method's first variant [95 % CI] |")
    print("|---|---|---|---|---|---|---|")
    for (folder, method), group in frame.groupby(['ablation', 'method'], sort=False):
        first = group.variant.iloc[0]
        reference = group[group.variant == first].set_index('seed').dev_AP
        for variant, rows_ in group.groupby('variant', sort=False):
            dev = rows_.set_index('seed').dev_AP
            mean, half, n = paired_difference(dev, reference)
            delta = '—' if variant == first else (
                f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]" if not math.isnan(half) else f"{mean:+.2f}")
            print(f"| {folder} | {method} | {variant} | {len(rows_)} | {rows_.val_AP.mean():.2f} ± {rows_.val_AP.std():.2f} "
                  f"| {dev.mean():.2f} ± {dev.std():.2f} | {delta} |")
    print(f"\nrows: {Path(args.out).resolve()}")


if __name__ == '__main__':
    main()
