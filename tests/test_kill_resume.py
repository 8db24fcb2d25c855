"""A `crossmatch train` process killed with SIGKILL and restarted with `--resume` ends as if it had never stopped.

The kill comes after the first checkpoint (the end of burn-in, iteration 4) once at least one later row is in
metrics.csv, so the resume has rows to move to metrics.discarded.csv. On the CPU the resumed run reproduces the
uninterrupted one exactly (model, teacher, optimiser, RNG and loader position are restored), so the rows are
compared for equality. A newest checkpoint that cannot be loaded (cut short, or a foreign pickle) is skipped with
a warning naming it, and the run resumes from the newest one that loads; if none loads, one line says so.
"""
import os, shutil, signal, subprocess, sys, time
from pathlib import Path

import pandas as pd
import pytest
import torch

from crossmatch.training.checkpoint import checkpoint_path, latest_checkpoint, load_checkpoint
from crossmatch.training.metrics import MetricsLog

REPO = Path(__file__).resolve().parents[1]
QUICK = ['data.shapes_preset=quick', 'data.percent=10', f'data.root={REPO / "data"}', 'data.num_workers=0',
         'method.ohem_k=16', 'method.ohem_ramp_iters=4', 'method.delta=0.3', 'train.device=cpu',
         'train.iterations=16', 'train.burn_in=4', 'train.warmup_iters=2', 'train.lr_steps=[12]', 'train.log_every=1',
         'train.eval_every=8', 'train.checkpoint_every=4', 'train.batch_labeled=2', 'train.batch_unlabeled=2',
         'train.max_eval_images=4']
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
COMPARED = ['iteration', 'kind', 'model', 'loss', 'sup_rpn_cls', 'sup_rpn_reg', 'sup_roi_cls', 'sup_roi_reg',
            'hard_rpn_cls', 'hard_roi_cls', 'soft_kl', 'pseudo_boxes_per_image', 'AP', 'AP50']


def command(output: Path, *extra: str) -> list[str]:
    return [sys.executable, '-m', 'crossmatch.cli', 'train', '--no-progress', '--output', str(output), *extra,
            '--set', *QUICK]


def run(output: Path, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run(command(output, *extra), capture_output=True, text=True, timeout=300, cwd=REPO,
                            env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def rows_after(metrics_csv: Path, iteration: int) -> bool:
    try: return metrics_csv.exists() and (pd.read_csv(metrics_csv).iteration > iteration).any()
    except (pd.errors.ParserError, pd.errors.EmptyDataError): return False  # caught mid-rewrite of a new column


def kill_after_first_checkpoint(output: Path, timeout: float = 120) -> dict:
    "Start a run, SIGKILL it once the burn-in checkpoint exists and a later row is logged; what it left behind."
    process = subprocess.Popen(command(output), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO,
                               env=ENV)
    first = output / 'checkpoints' / 'iter_0000004.pt'
    deadline = time.monotonic() + timeout
    try:
        while not (first.exists() and rows_after(output / 'metrics.csv', 4)):
            assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "no checkpoint within the time limit"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30); process.stderr.close()
    assert process.returncode == -signal.SIGKILL, "the run finished before the kill reached it"
    return {'checkpoints': sorted((output / 'checkpoints').glob('iter_*.pt')),
            'metrics': pd.read_csv(output / 'metrics.csv')}


def frame(output: Path) -> pd.DataFrame:
    metrics = pd.read_csv(output / 'metrics.csv')
    return metrics[[c for c in COMPARED if c in metrics]].reset_index(drop=True)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('kill')
    killed = kill_after_first_checkpoint(root / 'killed')
    checkpoints = root / 'killed' / 'checkpoints'
    # a save interrupted by a kill leaves files.atomic_write's temporary file: a truncated checkpoint
    (checkpoints / '.iter_0000099.pt.interrupted.tmp').write_bytes(killed['checkpoints'][-1].read_bytes()[:1000])
    killed['latest'] = latest_checkpoint(root / 'killed')
    killed['reopened'] = MetricsLog(root / 'killed' / 'metrics.csv').frame()
    resumed = run(root / 'killed', '--resume')
    run(root / 'uninterrupted')
    return root, killed, resumed


def test_every_checkpoint_left_by_the_kill_loads(runs):
    _, killed, _ = runs
    assert killed['checkpoints'], "no checkpoint survived"
    for path in killed['checkpoints']:
        assert load_checkpoint(path)['iteration'] == int(path.stem.split('_')[1])
    assert killed['latest'] == killed['checkpoints'][-1]  # the truncated temporary file is not a checkpoint


def test_metrics_left_by_the_kill_parse(runs):
    _, killed, _ = runs
    assert len(killed['reopened']) == len(killed['metrics']) > 0
    assert killed['metrics'].iteration.is_monotonic_increasing


def test_resumed_run_equals_uninterrupted_run(runs):
    root, _, resumed = runs
    assert 'student: AP' in resumed.stdout
    resumed_rows, reference = frame(root / 'killed'), frame(root / 'uninterrupted')
    assert list(resumed_rows[resumed_rows.kind == 'train'].iteration) == list(range(1, 17))
    pd.testing.assert_frame_equal(resumed_rows, reference, check_exact=True)
    assert latest_checkpoint(root / 'killed').name == 'iter_0000016.pt'


def test_rows_after_the_checkpoint_are_discarded_not_lost(runs):
    root, killed, _ = runs
    resumed_from = load_checkpoint(killed['latest'])['iteration']
    later = killed['metrics'][killed['metrics'].iteration > resumed_from]
    assert len(later) > 0  # the kill waited for one
    discarded = pd.read_csv(root / 'killed' / 'metrics.discarded.csv')
    pd.testing.assert_frame_equal(discarded[later.columns].reset_index(drop=True), later.reset_index(drop=True))


def test_restart_without_resume_is_refused_and_changes_nothing(runs):
    root, _, _ = runs
    run_dir = root / 'uninterrupted'
    before = {p: p.read_bytes() for p in run_dir.rglob('*') if p.is_file()}
    result = subprocess.run(command(run_dir), capture_output=True, text=True, timeout=300, cwd=REPO, env=ENV)
    assert result.returncode == 2
    assert f"{run_dir} already holds a run" in result.stderr and '--resume' in result.stderr
    assert {p: p.read_bytes() for p in run_dir.rglob('*') if p.is_file()} == before


class Payload:
    "A pickle whose loading would create the folder `marker`: code that a checkpoint must never get to run."
    def __init__(self, marker: Path): self.marker = marker
    def __reduce__(self): return (os.mkdir, (str(self.marker),))


def test_resume_skips_a_cut_short_and_a_foreign_newest_checkpoint(runs, tmp_path):
    root, _, _ = runs
    run_dir = tmp_path / 'corrupt'
    shutil.copytree(root / 'uninterrupted', run_dir)
    newest = checkpoint_path(run_dir, 16)
    newest.write_bytes(newest.read_bytes()[:4096])  # a save cut short by a full disk
    torch.save({'iteration': 20, 'payload': Payload(tmp_path / 'executed')}, checkpoint_path(run_dir, 20))
    result = run(run_dir, '--resume')
    skipped = [line for line in result.stderr.splitlines() if 'skipping checkpoint' in line]
    assert len(skipped) == 2, result.stderr[-3000:]
    assert f"{checkpoint_path(run_dir, 20)} cannot be loaded: it refers to posix.mkdir, which weights-only" in skipped[0]
    assert f"{newest} cannot be loaded" in skipped[1]
    assert not (tmp_path / 'executed').exists()
    # resumed from 12, it redid 13..16 exactly as the uninterrupted run did them
    pd.testing.assert_frame_equal(frame(run_dir), frame(root / 'uninterrupted'), check_exact=True)
    assert list(pd.read_csv(run_dir / 'metrics.discarded.csv').iteration) == [13, 14, 15, 16, 16, 16]


def test_resume_refuses_in_one_line_when_no_checkpoint_loads(runs, tmp_path):
    root, _, _ = runs
    run_dir = tmp_path / 'all-corrupt'
    shutil.copytree(root / 'uninterrupted', run_dir)
    for path in (run_dir / 'checkpoints').glob('iter_*.pt'): path.write_bytes(path.read_bytes()[:100])
    result = subprocess.run(command(run_dir, '--resume'), capture_output=True, text=True, timeout=300, cwd=REPO, env=ENV)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith('crossmatch train: error:')]
    assert len(errors) == 1 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert f"no checkpoint in {run_dir / 'checkpoints'} loads" in errors[0]
    assert all(f'iter_{i:07d}.pt' in errors[0] for i in (4, 8, 12, 16))


def test_resume_without_a_checkpoint_starts_afresh_with_the_old_rows_set_aside(tmp_path):
    "Rows of an attempt that saved no checkpoint are moved to metrics.discarded.csv, not logged twice."
    from crossmatch.training.config import config_from_args
    from crossmatch.training.trainer import Trainer
    config = config_from_args('shapes', overrides=QUICK, method='crossmatch', output=str(tmp_path / 'run'))
    first = Trainer(config, progress=False)
    first.metrics.append(dict(iteration=1, kind='train', loss=2.5))
    resumed = Trainer(config, resume=True, progress=False)
    assert resumed.iteration == 0 and resumed.metrics.rows == []
    assert pd.read_csv(tmp_path / 'run' / 'metrics.discarded.csv')['loss'].tolist() == [2.5]


def test_a_branch_keeps_its_own_ema_rate(tmp_path):
    "A run branched from a burn-in with another α uses its own: the checkpoint's α once silently replaced it (issue 12)."
    from crossmatch.training.config import apply_overrides, config_from_args
    from crossmatch.training.trainer import Trainer
    burn_in = config_from_args('shapes', overrides=QUICK + ['train.iterations=4'], method='supervised',
                               output=str(tmp_path / 'burn-in'))
    Trainer(burn_in, progress=False).fit()
    branch = apply_overrides(burn_in, {'method': {'hard': True, 'ema_alpha': 0.5},
                                       'train': {'iterations': 16, 'output_dir': str(tmp_path / 'branch')}})
    trainer = Trainer(branch, progress=False)
    trainer.branch_from(tmp_path / 'burn-in', 4)
    assert load_checkpoint(checkpoint_path(tmp_path / 'burn-in', 4))['teacher']['alpha'] == 0.99
    assert trainer.teacher.alpha == 0.5
