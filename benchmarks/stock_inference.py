"""Inference wall time of a kit (CrossMatch) detector vs torchvision's stock Faster R-CNN, same weights, same images, CPU.

CrossMatch changes training only: its multi-scale predictions, soft branch and OHEM live in the training step, and the
teacher or student a run leaves is a torchvision `FasterRCNN` whose one difference from the stock detector is its RoI
pooler (the kit's `LevelRoIAlign`: torchvision's `MultiScaleRoIAlign` on the kit's `roialign.roi_align`, which takes
`grid_sample` on the CPU only where a gradient is computed, torchvision's kernel in inference). A trained model is the
same network as an untrained one, so the script needs no training: it times the kit's model as
`build_model` makes it (random weights) against a plain torchvision `FasterRCNN` of the same architecture built with
torchvision's API and holding the same weights, with torchvision's own pooler.

Two measurements per model, each interleaved (one call of each variant in turn, so a change in the machine's load hits
them alike; which variant goes first rotates from one repeat to the next), median of `--repeats` calls after `--warmup`:
- `model(images)`: the network alone in eval mode under `torch.no_grad()`, on a batch of float images loaded beforehand
  (the kit's inference path, `evaluate.predict`, calls exactly this);
- `evaluate.predict`: the kit's inference path end to end (reading the validation images, uint8 → float, the forward,
  detections to the CPU) over `--images` quick-shapes validation images (16 tiny, 4 paper), batch 8 (tiny) or 2 (paper), given either model.
The detections of the two models are compared as a check (their pooled features agree to float rounding). Goal:
kit / stock = 1.00 within noise.

Models: `tiny` (128 px), `paper` (ResNet-50-FPN from scratch at `--size`, default 320 px); see benchmarks/kit.py.

    python benchmarks/stock_inference.py [--models tiny paper] [--size N] [--images N] [--repeats 15] [--warmup 2] [--threads 2]
"""
import argparse, statistics, time
from pathlib import Path

import torch

from crossmatch.data.coco import float_image
from crossmatch.data.datasets import build_data
from crossmatch.training.evaluate import predict
from crossmatch.model.detector import build_model
from kit import check_threads, describe, run_config, stock_twin
from machine import header

VARIANTS = ('kit', 'stock', 'stock+kit-pooler')
BATCH = {'tiny': 8, 'paper': 2}  # images per model(images) call
IMAGES = {'tiny': 16, 'paper': 4}  # images per evaluate.predict call


def detection_gap(a: list[dict], b: list[dict]) -> str:
    "How far two models' detections on the same images are apart: box counts, then boxes and scores where counts agree."
    counts = [(len(x['boxes']), len(y['boxes'])) for x, y in zip(a, b)]
    if any(m != n for m, n in counts): return f"box counts differ per image: {counts}"
    boxes = max((float((x['boxes'] - y['boxes']).abs().max()) for x, y in zip(a, b) if len(x['boxes'])), default=0.)
    scores = max((float((x['scores'] - y['scores']).abs().max()) for x, y in zip(a, b) if len(x['scores'])), default=0.)
    labels = all(bool((x['labels'] == y['labels']).all()) for x, y in zip(a, b))
    return (f"{sum(m for m, _ in counts)} detections, same counts per image, labels {'equal' if labels else 'differ'}, "
            f"largest |Δbox| {boxes:.1e} px, |Δscore| {scores:.1e}")


def timed(fn, threads: int) -> tuple[float, object]:
    check_threads(threads)
    started = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - started
    check_threads(threads)
    return elapsed, out


def compare(model: str, size: int | None, images: int, repeats: int, warmup: int, threads: int) -> dict[str, float]:
    config = run_config('crossmatch', Path('unused'), model, size, threads)  # no Trainer: nothing is written
    torch.manual_seed(config.train.seed)
    data = build_data(config.data)
    num_classes = data.category_map.num_classes + 1
    kit = build_model(config.model, num_classes).eval()
    models = {'kit': kit, 'stock': stock_twin(kit, config, num_classes, 'stock').eval(),
              'stock+kit-pooler': stock_twin(kit, config, num_classes, 'kit').eval()}
    batch = [float_image(data.val[i][0]) for i in range(BATCH[model])]
    forward, end_to_end, outputs = ({v: [] for v in VARIANTS} for _ in range(3))
    with torch.no_grad():
        for repeat in range(warmup + repeats):
            order = VARIANTS[repeat % len(VARIANTS):] + VARIANTS[:repeat % len(VARIANTS)]  # each goes first in turn
            for v in order:
                elapsed, out = timed(lambda: models[v](batch), threads)
                if repeat >= warmup: forward[v].append(elapsed)
                outputs[v] = out
            for v in order:
                elapsed, _ = timed(lambda: predict(models[v], data.val, torch.device('cpu'), BATCH[model], images), threads)
                if repeat >= warmup: end_to_end[v].append(elapsed)
    h, w = batch[0].shape[-2:]
    print(f"\ninference, {describe(model, size)} (quick-shapes validation images {h}×{w}, resized by the model to short side "
          f"{models['kit'].transform.min_size[0]}), {torch.get_num_threads()} threads, median of {repeats} after "
          f"{warmup} warm-up, interleaved")
    names = {'kit': 'kit model', 'stock': 'stock torchvision', 'stock+kit-pooler': "stock + kit's LevelRoIAlign"}
    print(f"{'what':<34}{'variant':<30}{'median s':>10}{'min s':>8}{'max s':>8}{'× stock':>9}")
    for what, times in ((f"model(images), {len(batch)} images", forward),
                        (f"evaluate.predict, {images} images", end_to_end)):
        medians = {v: statistics.median(t) for v, t in times.items()}
        for v in VARIANTS:
            print(f"{what:<34}{names[v]:<30}{medians[v]:>10.3f}{min(times[v]):>8.3f}{max(times[v]):>8.3f}"
                  f"{medians[v] / medians['stock']:>9.2f}")
        print(f"{what}: kit / stock {medians['kit'] / medians['stock']:.2f} (goal 1.00 within noise; "
              f"min / min {min(times['kit']) / min(times['stock']):.2f})")
    print(f"check, kit vs stock detections on the batch: {detection_gap(outputs['kit'], outputs['stock'])}")
    return medians


def main(models, size: int | None, images: int, repeats: int, warmup: int, threads: int):
    torch.set_num_threads(threads)
    print(header(threads=threads))
    for model in models:
        compare(model, size if model == 'paper' else None, images or IMAGES[model], repeats, warmup, threads)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeats', type=int, default=15, help="timed calls per variant (default: %(default)s)")
    parser.add_argument('--warmup', type=int, default=2, help="untimed calls per variant first (default: %(default)s)")
    parser.add_argument('--threads', type=int, default=2, help="torch CPU threads (default: %(default)s)")
    parser.add_argument('--models', nargs='+', choices=('tiny', 'paper'), default=['tiny', 'paper'],
                        help="detectors, each its own table (default: %(default)s)")
    parser.add_argument('--size', type=int, default=320, help="the paper model's short side in px (default: %(default)s)")
    parser.add_argument('--images', type=int, default=None,
                        help="validation images per evaluate.predict call (default: 16 tiny, 4 paper)")
    args = parser.parse_args()
    main(args.models, args.size, args.images, args.repeats, args.warmup, args.threads)
