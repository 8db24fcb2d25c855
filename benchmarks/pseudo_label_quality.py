"""How good are a run's hard pseudo-labels as training goes on? Precision and recall of the teacher's pseudo-boxes
(score ≥ δ, class-wise NMS: `pseudo.pseudo_labels`) against the hidden ground truth of the run's own unlabeled images.

    python benchmarks/pseudo_label_quality.py runs/table3/seed1/base/unbiased-teacher runs/table3/seed1/base/crossmatch

For the ablation issue: on shapes the hard-only row falls below supervised, and its logs show the pseudo-boxes per image
growing past the objects there are. This reads each run's checkpoints (by default every one from the end of burn-in
on), runs the teacher over the first `--images` unlabeled images of the run's split (the weak view's geometry: shapes
images are not resized), and counts a pseudo-box as a true positive when it overlaps an unmatched ground-truth box of
its class at IoU ≥ 0.5 (greedy, best score first, as COCO matches). A false one is either on an object but of the wrong
class (it matches a box when classes are ignored: `wrong_class_per_image`) or on no object at all (background, an
unannotated distractor, or a box too loose). At the end of burn-in the student stands in for the teacher, which the
first semi-supervised step copies from it. `--delta` scores them at another threshold than
the run's own δ. The training logs count sampled RoIs; this counts the pseudo-boxes themselves.
"""
from __future__ import annotations
import argparse, sys
from pathlib import Path

import pandas as pd
import torch
from torchvision.ops import box_iou

from crossmatch.training.checkpoint import list_checkpoints, load_detectors
from crossmatch.data.coco import CocoDetection
from crossmatch.data.datasets import build_data
from crossmatch.training.evaluate import predict
from crossmatch.method.pseudo import pseudo_labels

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import header  # noqa: E402


def matched_count(boxes: torch.Tensor, labels: torch.Tensor | None, truth_boxes: torch.Tensor, truth_labels: torch.Tensor,
                  iou: float = 0.5) -> int:
    "Pseudo-boxes (best first) that match a ground-truth box not matched before at IoU ≥ `iou`: of their class, any if `labels` is None."
    if len(boxes) == 0 or len(truth_boxes) == 0: return 0
    overlaps = box_iou(boxes, truth_boxes)
    if labels is not None: overlaps = overlaps * (labels[:, None] == truth_labels[None, :])
    free, hits = torch.ones(len(truth_boxes), dtype=torch.bool), 0
    for row in overlaps:
        row = torch.where(free, row, torch.zeros_like(row))
        best = int(row.argmax())
        if row[best] >= iou: free[best], hits = False, hits + 1
    return hits


def quality(run_dir: Path, checkpoint: Path, images: int, delta: float | None, data_cache: dict) -> dict:
    "Pseudo-boxes and ground-truth boxes per image, precision and recall of one checkpoint's teacher."
    detectors = load_detectors(checkpoint)
    config = detectors.config
    key = repr(config.data)
    if key not in data_cache: data_cache[key] = build_data(config.data)
    data = data_cache[key]
    train_json = data.train.labeled.coco  # the training file: it holds the unlabeled images' boxes too
    unlabeled = CocoDetection(data.train.labeled.image_root, train_json, image_ids=data.train.split.unlabeled[:images],
                              category_map=data.train.category_map, check_images=False)
    threshold = config.method.delta if delta is None else delta
    # up to the end of burn-in the teacher is not yet made (the first semi-supervised step copies the student); a
    # supervised run never makes one, and its student is what a teacher branched from it would start as
    model = 'teacher' if config.method.semi_supervised and detectors.iteration > config.train.burn_in else 'student'
    ids, detections = predict(getattr(detectors, model), unlabeled, torch.device('cpu'))
    pseudo = pseudo_labels(detections, threshold, config.method.pseudo_nms_iou)
    n_pseudo = n_truth = hits = located = 0
    for i, target in zip(range(len(ids)), pseudo):
        _, truth = unlabeled[i]
        truth_boxes, truth_labels = truth['boxes'].as_subclass(torch.Tensor).float(), truth['labels'].as_subclass(torch.Tensor)
        n_pseudo, n_truth = n_pseudo + len(target['boxes']), n_truth + len(truth_boxes)
        hits += matched_count(target['boxes'], target['labels'], truth_boxes, truth_labels)
        located += matched_count(target['boxes'], None, truth_boxes, truth_labels)
    n = len(ids)
    return dict(run=str(run_dir), iteration=detectors.iteration, model=model, delta=threshold, images=n,
                pseudo_per_image=n_pseudo / n, truth_per_image=n_truth / n,
                precision=hits / n_pseudo if n_pseudo else float('nan'), recall=hits / n_truth if n_truth else float('nan'),
                false_per_image=(n_pseudo - hits) / n,
                wrong_class_per_image=(located - hits) / n)  # on an object, of another class: the rest of the false ones miss every object


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('runs', nargs='+', help="run folders (each with config.yaml and checkpoints/)")
    parser.add_argument('--images', type=int, default=300, help="unlabeled images per checkpoint (default: %(default)s)")
    parser.add_argument('--delta', type=float, help="score threshold (default: each run's own method.delta)")
    parser.add_argument('--from-iteration', type=int, default=None, help="first checkpoint iteration (default: the run's burn-in)")
    parser.add_argument('--out', help="CSV to write, one row per checkpoint")
    parser.add_argument('--threads', type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    print(header(threads=torch.get_num_threads()))
    rows, cache = [], {}
    for run in map(Path, args.runs):
        checkpoints = list_checkpoints(run)
        if not checkpoints: raise SystemExit(f"{run}: no checkpoints/iter_*.pt")
        first = args.from_iteration
        if first is None: first = load_detectors(checkpoints[-1]).config.train.burn_in
        for checkpoint in checkpoints:
            if int(checkpoint.stem.split('_')[-1]) < first: continue
            rows.append(quality(run, checkpoint, args.images, args.delta, cache))
            print(' '.join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()),
                  file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows)
    if args.out: frame.to_csv(args.out, index=False)
    print(frame.round(3).to_string(index=False))


if __name__ == '__main__':
    main()
