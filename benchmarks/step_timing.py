"""Wall time of one training step: CrossMatch vs hard-only (Unbiased Teacher) vs supervised, on the CPU.

Every method trains on the same batch in one process with `--threads` torch threads (the trainers set torch's thread
count from `train.threads`; the script checks it inside every timed step). A step is what `Trainer.step` does after
burn-in: teacher pass on the weak views (semi-supervised methods), the student's forward with every loss term,
backward, SGD and the EMA update. The methods are timed interleaved (one step of each in turn) so that a change in the
machine's load hits all of them alike; the median of `--repeats` steps after `--warmup` steps is reported. The models
are untrained: the soft branch's cost (every teacher proposal, every level) does not depend on that, the hard branch's
pseudo-boxes are few. Steps are timed after OHEM's ramp (K RoIs per level and image: the shapes preset's 64 on the tiny
model, the paper presets' 256 on the paper model); `soft-hard` is CrossMatch without multi-scale, so
crossmatch / soft-hard is the multi-scale overhead. Goal: crossmatch / hard-only ≤ 1.6 on the tiny model, ≤ 1.5 on
the paper model at 320 and 512 px. The `cpu s` column is the median CPU time of the process (all its threads) per
step: unlike wall time, it does not count time the process waited for a core.

`--model tiny`: the kit's tiny detector, 8 labeled + 8 unlabeled quick-shapes images at 128 px.
`--model paper --size N`: ResNet-50-FPN from scratch, 2 + 2 quick-shapes images resized by the loader to short side N
(see benchmarks/kit.py for the exact overrides).

    python benchmarks/step_timing.py [--model tiny|paper] [--size N] [--repeats 10] [--warmup 2] [--threads 2]
"""
import argparse, os, statistics, tempfile, time
from pathlib import Path

import torch

from crossmatch.training.trainer import Trainer
from kit import BATCH, check_threads, describe, past_burn_in, run_config
from machine import header

METHODS = ('crossmatch', 'soft-hard', 'unbiased-teacher', 'supervised')  # soft-hard: CrossMatch without multi-scale


def trainers(run_root: Path, threads: int, model: str, size: int | None, methods) -> dict[str, Trainer]:
    "One trainer per method, past burn-in and OHEM's ramp, sharing the data and the initial weights (same seed)."
    out, data = {}, None
    for method in methods:
        config = run_config(method, run_root / method, model, size, threads)
        out[method] = trainer = past_burn_in(Trainer(config, progress=False, data=data))
        data = trainer.data
    return out


def main(repeats: int, warmup: int, threads: int, model: str = 'tiny', size: int | None = None,
         methods=METHODS) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        runs = trainers(Path(scratch), threads, model, size, methods)
        first = next(iter(runs.values()))
        labeled, unlabeled = next(iter(first.loader()))
        k = first.config.method.ohem_k
        times, cpu = {method: [] for method in methods}, {method: [] for method in methods}
        for repeat in range(warmup + repeats):
            for method, trainer in runs.items():
                started, started_cpu = time.perf_counter(), time.process_time()
                check_threads(threads)
                trainer.step(labeled, unlabeled)
                check_threads(threads)
                if repeat >= warmup:
                    times[method].append(time.perf_counter() - started)
                    cpu[method].append(time.process_time() - started_cpu)
    medians = {method: statistics.median(t) for method, t in times.items()}
    cpu_medians = {method: statistics.median(t) for method, t in cpu.items()}
    bl, bu = BATCH[model]
    sizes = sorted({tuple(image.shape[-2:]) for image in labeled[0] + unlabeled[1]})
    print(header(threads=threads))
    print(f"one step, {describe(model, size)} (images {', '.join(f'{h}×{w}' for h, w in sizes)}), {bl} labeled + {bu} "
          f"unlabeled quick-shapes images, OHEM K {k}, {torch.get_num_threads()} threads, median of {repeats} after "
          f"{warmup} warm-up (load average at the end {os.getloadavg()[0]:.2f})")
    base = 'supervised' if 'supervised' in medians else None
    hard = 'unbiased-teacher' if 'unbiased-teacher' in medians else None
    print(f"{'method':<18}{'median s':>10}{'min s':>8}{'max s':>8}{'cpu s':>8}" + (f"{'× supervised':>14}" if base else '')
          + (f"{'× hard-only':>13}" if hard else ''))
    for method in methods:
        row = (f"{method:<18}{medians[method]:>10.3f}{min(times[method]):>8.3f}{max(times[method]):>8.3f}"
               f"{cpu_medians[method]:>8.3f}")
        if base: row += f"{medians[method] / medians[base]:>14.2f}"
        if hard: row += f"{medians[method] / medians[hard]:>13.2f}"
        print(row)
    if hard and 'crossmatch' in medians:
        goal = 1.6 if model == 'tiny' else 1.5
        ratio = medians['crossmatch'] / medians[hard]
        print(f"crossmatch / hard-only (unbiased-teacher): {ratio:.2f} (goal ≤ {goal}: {'met' if ratio <= goal else 'NOT met'}); "
              f"in CPU time {cpu_medians['crossmatch'] / cpu_medians[hard]:.2f}")
    return medians


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeats', type=int, default=10, help="timed steps per method (default: %(default)s)")
    parser.add_argument('--warmup', type=int, default=2, help="untimed steps per method first (default: %(default)s)")
    parser.add_argument('--threads', type=int, default=2, help="torch CPU threads (default: %(default)s)")
    parser.add_argument('--model', choices=('tiny', 'paper'), default='tiny', help="detector (default: %(default)s)")
    parser.add_argument('--size', type=int, default=None,
                        help="short side of the images in px (default: 128 for tiny, 320 for paper)")
    parser.add_argument('--methods', nargs='+', choices=METHODS, default=list(METHODS),
                        help="methods to time (default: all four)")
    args = parser.parse_args()
    main(args.repeats, args.warmup, args.threads, args.model, args.size, tuple(args.methods))
