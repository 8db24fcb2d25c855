"""DDP on the CPU: `crossmatch train` under torchrun with 2 gloo processes trains like 1 process on the same global batch.

Same global batch: the loader gives rank r the items perm[r::W] of each epoch's permutation (the same on every
rank), so with a per-rank batch of 2 the two ranks' first batches are together the first 4 items, which is the
1-process first batch at batch_labeled=4 (seed 0: images 25, 62 on rank 0 and 31, 38 on rank 1, vs 25, 31, 62, 38).
The trainer logs each loss term averaged over the ranks.

What differs legitimately between the two runs' first-step losses: batch-norm statistics (the tiny backbone
normalises over 2 images per rank instead of 4), the RPN/RoI samplers' random draws (each rank draws from its own
generator, 1 process draws for 4 images in sequence), and the normalisation (a per-rank mean, averaged over ranks,
vs one mean over the global batch; DDP averages the gradients the same way).

Measured rank-mean vs 1-process differences of the first step (seeds 0, 1, 2):
  sup_rpn_reg 1.0 %, 0.3 %, 0.6 %   sup_rpn_cls 0.03 %, 0.08 %, 0.03 %   sup_roi_cls 0.4 %, 0.3 %, 0.9 %
sup_rpn_reg is the term that depends most on which images are in the batch: every ground-truth box's anchors
are sampled (fewer than 128 positives per image) and the normaliser (256 sampled anchors per image) is the same
per rank as globally, so only batch norm separates the two. Rank 0's value alone misses it by 16 %, 53 %, 13 %,
and both ranks on the same 2 images (broken sharding) by 58 %, 9 %, 39 %: the 5 % tolerance below separates them.
The classification terms are near log 2 and log 9 at initialisation whatever the images; their 2 % tolerance
catches a normalisation error (e.g. summing instead of averaging over ranks) rather than a data error.
sup_roi_reg is not compared: it is computed on proposals from a random RPN, which batch norm and the sampler move
(0.026 vs 0.042 at seed 0).
"""
import os, socket, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

from crossmatch.trainer import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
QUICK = ['data.shapes_preset=quick', 'data.percent=10', f'data.root={REPO / "data"}', 'data.num_workers=0',
         'method.ohem_k=16', 'method.ohem_ramp_iters=4', 'method.delta=0.3', 'train.device=cpu',
         'train.iterations=3', 'train.burn_in=2', 'train.warmup_iters=2', 'train.log_every=1', 'train.eval_every=3',
         'train.checkpoint_every=3', 'train.batch_unlabeled=2', 'train.max_eval_images=4']
RELATIVE_TOLERANCE = {'sup_rpn_reg': 0.05, 'sup_rpn_cls': 0.02, 'sup_roi_cls': 0.02, 'loss': 0.02}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def train(output: Path, processes: int, batch_labeled: int) -> subprocess.CompletedProcess:
    launcher = ['-m', 'torch.distributed.run', '--nproc_per_node', str(processes), '--master_port', str(free_port())]
    command = [sys.executable, *(launcher if processes > 1 else []), '-m', 'crossmatch.cli', 'train', '--no-progress',
               '--output', str(output), '--set', *QUICK, f'train.batch_labeled={batch_labeled}']
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'})


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('ddp')
    return {'ddp': (root / 'ddp', train(root / 'ddp', processes=2, batch_labeled=2)),
            'single': (root / 'single', train(root / 'single', processes=1, batch_labeled=4))}


def test_both_runs_finish(runs):
    for name, (_, result) in runs.items():
        assert result.returncode == 0, f"{name} run failed:\n{result.stderr[-3000:]}"


def test_rank_zero_alone_writes(runs):
    run_dir, result = runs['ddp']
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count('run folder:') == 1  # only rank 0 gets the metrics frame back and reports
    files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob('*') if p.is_file())
    assert files == ['checkpoints/iter_0000002.pt', 'checkpoints/iter_0000003.pt', 'config.yaml', 'metrics.csv']
    metrics = pd.read_csv(run_dir / 'metrics.csv')
    assert not metrics.duplicated(['iteration', 'kind', 'model']).any(), "a row was written by more than one rank"
    assert load_checkpoint(run_dir / 'checkpoints' / 'iter_0000003.pt')['iteration'] == 3


def test_ddp_trains_semi_supervised_and_evaluates(runs):
    metrics = pd.read_csv(runs['ddp'][0] / 'metrics.csv')
    train_rows = metrics[metrics.kind == 'train']
    assert list(train_rows.iteration) == [1, 2, 3]
    assert list(train_rows.phase) == ['burn-in', 'burn-in', 'semi']
    assert train_rows.soft_kl.iloc[-1] > 0 and train_rows.hard_roi_cls.notna().iloc[-1]
    evals = metrics[metrics.kind == 'eval']
    assert list(evals.model) == ['student', 'teacher'] and (evals.iteration == 3).all()
    assert evals.AP.between(0, 100).all()


def test_first_step_matches_one_process_on_the_global_batch(runs):
    first = {name: pd.read_csv(run_dir / 'metrics.csv').query("kind == 'train' and iteration == 1").iloc[0]
             for name, (run_dir, _) in runs.items()}
    for term, tolerance in RELATIVE_TOLERANCE.items():
        ddp, single = first['ddp'][term], first['single'][term]
        assert abs(ddp - single) <= tolerance * abs(single), f"{term}: 2-rank mean {ddp:.5f} vs 1 process {single:.5f}"
