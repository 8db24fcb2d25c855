"""Wall time of one training step: CrossMatch vs hard-only (Unbiased Teacher) vs supervised, tiny model, CPU.

Every method trains on the same batch (8 labeled + 8 unlabeled quick-shapes images) in one process with
`--threads` torch threads. A step is what `Trainer.step` does after burn-in: teacher pass on the weak views (semi-supervised
methods), the student's forward with every loss term, backward, SGD and the EMA update. The methods are timed
interleaved (one step of each in turn) so that a change in the machine's load hits all of them alike; the
median of `--repeats` steps after `--warmup` steps is reported. The model is untrained: the soft branch's cost
(every teacher proposal, every level) does not depend on that, the hard branch's pseudo-boxes are few. Steps are
timed after OHEM's ramp (K = the preset's `ohem_k` RoIs per level and image); `soft-hard` is CrossMatch without
multi-scale, so crossmatch / soft-hard is the multi-scale overhead.

    python benchmarks/step_timing.py [--repeats 10] [--warmup 2] [--threads 2]
"""
import argparse, os, statistics, tempfile, time
from pathlib import Path

import torch

from crossmatch.config import config_from_args
from crossmatch.trainer import Trainer

METHODS = ('crossmatch', 'soft-hard', 'unbiased-teacher', 'supervised')  # soft-hard: CrossMatch without multi-scale
REPO = Path(__file__).resolve().parents[1]


def trainers(run_root: Path, threads: int) -> dict[str, Trainer]:
    "One trainer per method, past burn-in, sharing the data and the initial weights (same seed)."
    overrides = ['data.shapes_preset=quick', 'data.percent=20', f'data.root={REPO / "data"}', 'data.num_workers=0',
                 'train.device=cpu', f'train.threads={threads}', 'train.batch_labeled=8', 'train.batch_unlabeled=8',
                 'train.burn_in=0', 'train.log_every=1000000']  # no hidden-ground-truth diagnostics inside the timed steps
    out, data = {}, None
    for method in METHODS:
        config = config_from_args('shapes', overrides=overrides, method=method, output=str(run_root / method))
        out[method] = trainer = Trainer(config, progress=False, data=data)
        data = trainer.data
        trainer.teacher.copy_from(trainer.model)
        # after burn-in (past the teacher ← student copy) and past OHEM's ramp: K RoIs per level, the steady state
        trainer.iteration = config.method.ohem_ramp_iters + 1
    return out


def main(repeats: int, warmup: int, threads: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        runs = trainers(Path(scratch), threads)  # the trainers set torch's thread count from train.threads
        labeled, unlabeled = next(iter(runs['crossmatch'].loader()))
        times = {method: [] for method in METHODS}
        for repeat in range(warmup + repeats):
            for method, trainer in runs.items():
                started = time.perf_counter()
                trainer.step(labeled, unlabeled)
                if repeat >= warmup: times[method].append(time.perf_counter() - started)
    medians = {method: statistics.median(t) for method, t in times.items()}
    print(f"one step, tiny model, 8 labeled + 8 unlabeled quick-shapes images, {torch.get_num_threads()} threads, "
          f"median of {repeats} after {warmup} warm-up (load average {os.getloadavg()[0]:.2f})")
    print(f"{'method':<18}{'median s':>10}{'min s':>8}{'max s':>8}{'× supervised':>14}{'× hard-only':>13}")
    for method in METHODS:
        print(f"{method:<18}{medians[method]:>10.3f}{min(times[method]):>8.3f}{max(times[method]):>8.3f}"
              f"{medians[method] / medians['supervised']:>14.2f}{medians[method] / medians['unbiased-teacher']:>13.2f}")
    return medians


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeats', type=int, default=10, help="timed steps per method (default: %(default)s)")
    parser.add_argument('--warmup', type=int, default=2, help="untimed steps per method first (default: %(default)s)")
    parser.add_argument('--threads', type=int, default=2, help="torch CPU threads (default: %(default)s)")
    args = parser.parse_args()
    main(args.repeats, args.warmup, args.threads)
