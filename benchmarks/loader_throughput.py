"""Images per second the kit's `TwoStreamLoader` delivers vs images per second a CrossMatch step consumes, CPU.

The loader is the one `Trainer.loader` builds for a CrossMatch run on the default shapes data (tiny model, batch 8
labeled + 8 unlabeled), built the same way here with each worker count and checked to deliver the trainer's first
batch: each labeled image's weak view, each unlabeled image's weak and strong views (Table 5's strong augmentation:
colour jitter, grayscale, blur, three noise cutouts), every sample read from its PNG file. It is timed with
`num_workers` 0, 1 and 2 per stream (two `DataLoader`s: 2 workers per stream are 4 processes): for each setting a fresh
iterator, `--warmup` batch pairs untimed (worker start-up, their first prefetched batches), then the time of the next
`--batches` batch pairs with nothing else to do; 16 images (8 + 8) per batch pair. The settings are measured
interleaved (one measurement of each in turn, `--repeats` rounds), the median reported.

A CrossMatch step's consumption is 16 images / the median wall time of `Trainer.step` past burn-in on one of those
batches, with `--threads` torch threads (the loader's main process uses the same number): `--warmup` steps first, then
`--steps` steps after each round of loader measurements (so interleaved with them too), `--repeats` × `--steps` in
all. Loader / step ≥ 5 means the loader needs at most a fifth of the step's time (goal: ≥ 5× with every worker
setting). Workers and the step compete for the same cores in a real run; this measures each alone.

    python benchmarks/loader_throughput.py [--workers 0 1 2] [--batches 24] [--repeats 3] [--steps 3] [--warmup 2] [--threads 2]
"""
import argparse, statistics, tempfile, time
from pathlib import Path

import torch

from crossmatch.data.augment import WeakStrong, paper_resize
from crossmatch.data.loader import TwoStreamLoader
from crossmatch.model.detector import detector_config
from crossmatch.training.trainer import Trainer
from kit import check_threads, past_burn_in, run_config
from machine import header


def run_loader(trainer: Trainer, workers: int) -> TwoStreamLoader:
    """The loader `Trainer.loader` builds for `trainer`'s run, with `workers` per stream (built here through the kit's
    API, since the trainer fixes its worker count when it is made)."""
    t, sizes = trainer.config.train, detector_config(trainer.config.model)
    augment = WeakStrong(resize=paper_resize(sizes.train_min_sizes, sizes.max_size) if sizes.train_min_sizes else None)
    return TwoStreamLoader(trainer.data.train.labeled, trainer.data.train.unlabeled, augment, t.batch_labeled,
                           t.batch_unlabeled, seed=t.seed, start_iteration=trainer.iteration, num_workers=workers,
                           labeled_views=t.labeled_views)


def same_batches(a, b) -> bool:
    "Whether two (labeled, unlabeled) batches hold the same images."
    flat = lambda batch: batch[0][0] + batch[1][0] + batch[1][1]
    return all(torch.equal(x, y) for x, y in zip(flat(a), flat(b))) and len(flat(a)) == len(flat(b))


def loader_rate(trainer: Trainer, workers: int, batches: int, warmup: int) -> float:
    "Images per second over `batches` batch pairs after `warmup`, from a fresh iterator with `workers` per stream."
    t = trainer.config.train
    iterator = iter(run_loader(trainer, workers))
    for _ in range(warmup): next(iterator)
    started = time.perf_counter()
    images = 0
    for _ in range(batches):
        (labeled, _), (weak, strong, _) = next(iterator)
        images += len(labeled) + len(weak)
    elapsed = time.perf_counter() - started
    del iterator  # shuts the workers down
    if images != batches * (t.batch_labeled + t.batch_unlabeled): raise RuntimeError(f"unexpected batch sizes: {images} images")
    return images / elapsed


def main(workers, batches: int, repeats: int, warmup: int, threads: int, step_repeats: int = 3):
    with tempfile.TemporaryDirectory() as scratch:
        config = run_config('crossmatch', Path(scratch) / 'crossmatch', 'tiny', threads=threads, batch=(8, 8),
                            shapes='default')
        trainer = past_burn_in(Trainer(config, progress=False))
        labeled, unlabeled = next(iter(trainer.loader()))
        if not same_batches((labeled, unlabeled), next(iter(run_loader(trainer, 1)))):
            raise RuntimeError("the benchmark's loader does not deliver Trainer.loader's batches")
        for _ in range(warmup): trainer.step(labeled, unlabeled)
        rates, steps = {w: [] for w in workers}, []
        for _ in range(repeats):  # each round: every worker setting, then a few steps, so a change of load hits all
            for w in workers:
                rates[w].append(loader_rate(trainer, w, batches, warmup))
            for _ in range(step_repeats):
                started = time.perf_counter()
                check_threads(threads)
                trainer.step(labeled, unlabeled)
                check_threads(threads)
                steps.append(time.perf_counter() - started)
    step = statistics.median(steps)
    per_step = len(labeled[0]) + len(unlabeled[0])
    consumed = per_step / step
    print(header(threads=threads))
    print(f"TwoStreamLoader, CrossMatch on default shapes (128 px), batch 8 labeled (weak) + 8 unlabeled (weak + strong), "
          f"{torch.get_num_threads()} threads in the main process; median of {repeats} rounds of {batches} batch pairs "
          f"after {warmup} warm-up, interleaved")
    print(f"CrossMatch step (tiny model, past burn-in), median of {len(steps)}: {step:.3f} s (min {min(steps):.3f}, max {max(steps):.3f}) "
          f"→ consumes {consumed:.1f} images/s ({per_step} per step)")
    print(f"{'workers per stream':<20}{'images/s':>10}{'min':>8}{'max':>8}{'× step':>9}")
    for w in workers:
        rate = statistics.median(rates[w])
        print(f"{w:<20}{rate:>10.1f}{min(rates[w]):>8.1f}{max(rates[w]):>8.1f}{rate / consumed:>9.1f}")
    worst = min(statistics.median(r) for r in rates.values()) / consumed
    print(f"loader / step, worst setting: {worst:.1f}× (goal ≥ 5×: {'met' if worst >= 5 else 'NOT met'})")


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeats', type=int, default=3,
                        help="measurements per worker setting (default: %(default)s)")
    parser.add_argument('--warmup', type=int, default=2, help="untimed batch pairs, and steps, first (default: %(default)s)")
    parser.add_argument('--threads', type=int, default=2, help="torch CPU threads (default: %(default)s)")
    parser.add_argument('--workers', nargs='+', type=int, default=[0, 1, 2], help="num_workers settings (default: %(default)s)")
    parser.add_argument('--steps', type=int, default=3, help="timed CrossMatch steps per round (default: %(default)s)")
    parser.add_argument('--batches', type=int, default=24, help="timed batch pairs per measurement (default: %(default)s)")
    args = parser.parse_args()
    main(args.workers, args.batches, args.repeats, args.warmup, args.threads, args.steps)
