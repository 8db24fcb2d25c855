"""Wall time of the kit's supervised training step vs torchvision's stock Faster R-CNN training step, on the CPU.

The kit's step is `Trainer.step` during burn-in (a CrossMatch run before teacher ← student): `supervised_losses`, the
backward pass, the SGD step (and the scheduler's step and the logged floats). The stock step is torchvision's own
training loop body on a plain `torchvision.models.detection.FasterRCNN` built with torchvision's API:
`loss = sum(model(images, targets).values()); optimizer.zero_grad(); loss.backward(); optimizer.step()`, SGD with
the kit's learning rate, momentum and weight decay. Both detectors have the same architecture and the same weights
(the stock one loads the kit's state dict) and train on the same batch from the kit's loader (uint8 → float [0, 1]
inside the timed step for both). The third row is the stock model given the kit's RoI pooler (`LevelRoIAlign`:
torchvision's `MultiScaleRoIAlign` on the kit's `roialign.roi_align`, `grid_sample` on the CPU where it pays) instead of
torchvision's: stock+kit-pooler / stock is what the pooler accounts for, kit / stock+kit-pooler what the rest of the
kit's step does.

Before every timed step each model gets the initial weights back and the same RNG seed (untimed), so every step of
every variant computes the same thing (the tiny model's losses agree across variants, printed as a check; the paper
model's stock transform draws its one training size from the RNG, so its RoI samples differ). The variants are timed
interleaved (one step of each in turn, the first one rotating) so that a change in the machine's load hits them
alike; the table gives the median of `--repeats` steps after `--warmup` steps, wall time and the process's CPU time
(both threads). Goal: kit / stock ≤ 1.05.

Models: `tiny` (8 quick-shapes images at 128 px), `paper` (ResNet-50-FPN from scratch, 2 quick-shapes images resized to
`--size`, default 320 px); see benchmarks/kit.py.

    python benchmarks/stock_training.py [--models tiny paper] [--size N] [--repeats 7] [--warmup 2] [--threads 2]
"""
import argparse, statistics, tempfile, time
from pathlib import Path

import torch

from crossmatch.training.trainer import Trainer
from kit import check_threads, describe, in_burn_in, run_config, stock_twin
from machine import header

VARIANTS = ('kit', 'stock', 'stock+kit-pooler')


def stock_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: list, targets: list) -> float:
    "torchvision's training-loop body: the summed loss dict, backward, SGD step; the loss."
    images = [image.as_subclass(torch.Tensor).float().div_(255) for image in images]
    targets = [{'boxes': t['boxes'].as_subclass(torch.Tensor).float().reshape(-1, 4),
                'labels': t['labels'].as_subclass(torch.Tensor).long()} for t in targets]
    loss = sum(model(images, targets).values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def compare(model: str, size: int | None, repeats: int, warmup: int, threads: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        config = run_config('crossmatch', Path(scratch) / 'kit', model, size, threads)
        trainer = in_burn_in(Trainer(config, progress=False))
        num_classes = trainer.data.category_map.num_classes + 1
        (images, targets), _ = next(iter(trainer.loader()))
        t = config.train
        models = {'kit': trainer.model}
        optimizers = {'kit': trainer.optimizer}
        for variant, pooler in (('stock', 'stock'), ('stock+kit-pooler', 'kit')):
            models[variant] = stock_twin(trainer.model, config, num_classes, pooler)
            optimizers[variant] = torch.optim.SGD([p for p in models[variant].parameters() if p.requires_grad],
                                                  lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
        initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        wall, cpu, losses = ({v: [] for v in VARIANTS} for _ in range(3))
        for repeat in range(warmup + repeats):
            for variant in VARIANTS[repeat % len(VARIANTS):] + VARIANTS[:repeat % len(VARIANTS)]:  # each first in turn
                models[variant].load_state_dict(initial)
                torch.manual_seed(repeat)
                started, started_cpu = time.perf_counter(), time.process_time()
                check_threads(threads)
                if variant == 'kit': loss = trainer.step((images, targets), None)['loss']
                else: loss = stock_step(models[variant], optimizers[variant], images, targets)
                check_threads(threads)
                if repeat >= warmup:
                    wall[variant].append(time.perf_counter() - started)
                    cpu[variant].append(time.process_time() - started_cpu)
                    losses[variant].append(loss)
        if trainer.iteration >= t.burn_in: raise RuntimeError("the kit's trainer left burn-in during the benchmark")
    medians = {v: statistics.median(w) for v, w in wall.items()}
    cpu_medians = {v: statistics.median(c) for v, c in cpu.items()}
    sizes = sorted({tuple(image.shape[-2:]) for image in images})
    print(f"\nsupervised training step, {describe(model, size)} (images {', '.join(f'{h}×{w}' for h, w in sizes)}), "
          f"{len(images)} labeled quick-shapes images, {torch.get_num_threads()} threads, median of {repeats} after "
          f"{warmup} warm-up, interleaved")
    print(f"{'variant':<34}{'median s':>10}{'min s':>8}{'max s':>8}{'cpu s':>8}{'× stock':>9}{'× stock cpu':>13}")
    names = {'kit': 'kit (Trainer.step in burn-in)', 'stock': 'stock torchvision',
             'stock+kit-pooler': "stock + kit's LevelRoIAlign"}
    for v in VARIANTS:
        print(f"{names[v]:<34}{medians[v]:>10.3f}{min(wall[v]):>8.3f}{max(wall[v]):>8.3f}{cpu_medians[v]:>8.3f}"
              f"{medians[v] / medians['stock']:>9.2f}{cpu_medians[v] / cpu_medians['stock']:>13.2f}")
    ratio = medians['kit'] / medians['stock']
    print(f"kit / stock: {ratio:.2f} (goal ≤ 1.05: {'met' if ratio <= 1.05 else 'NOT met'}); "
          f"stock+kit-pooler / stock (the pooler): {medians['stock+kit-pooler'] / medians['stock']:.2f}; "
          f"kit / stock+kit-pooler (the rest): {medians['kit'] / medians['stock+kit-pooler']:.2f}")
    gap = max(abs(a - b) for v in VARIANTS for a, b in zip(losses[v], losses['stock']))
    note = ("; the stock transform draws its training size from the RNG, so its sampled RoIs differ from the kit's"
            if model == 'paper' else '')
    print(f"check: largest |loss − stock loss| over the timed steps {gap:.2e} (first step's stock loss "
          f"{losses['stock'][0]:.4f}{note})")
    return medians


def main(models, size: int | None, repeats: int, warmup: int, threads: int):
    torch.set_num_threads(threads)
    print(header(threads=threads))
    for model in models: compare(model, size if model == 'paper' else None, repeats, warmup, threads)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeats', type=int, default=7, help="timed steps per variant (default: %(default)s)")
    parser.add_argument('--warmup', type=int, default=2, help="untimed steps per variant first (default: %(default)s)")
    parser.add_argument('--threads', type=int, default=2, help="torch CPU threads (default: %(default)s)")
    parser.add_argument('--models', nargs='+', choices=('tiny', 'paper'), default=['tiny', 'paper'],
                        help="detectors, each its own table (default: %(default)s)")
    parser.add_argument('--size', type=int, default=320, help="the paper model's short side in px (default: %(default)s)")
    args = parser.parse_args()
    main(args.models, args.size, args.repeats, args.warmup, args.threads)
