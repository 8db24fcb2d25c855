"""A real dataset end to end: BCCD (VOC XML) → `crossmatch convert-voc` → `crossmatch train` → `crossmatch eval`.

The coco-standard preset on BCCD's train set (10 % labeled, the rest unlabeled), evaluated on its val set, with
the tiny model resized to a 320-pixel short side (640×480 cells become 427×320, so platelets of ~25 px stay
~17 px, within the tiny model's 8–128 px anchors; its default 128-px resize would shrink them to ~5 px).
The schedule is two iterations (one supervised, one CrossMatch) so the test stays short; it checks the wiring,
not the accuracy. BCCD is read from `../shared/data/bccd` or `$CROSSMATCH_SHARED_DATA/bccd`; the test skips without it.
"""
import json, os, re, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

from crossmatch.training.checkpoint import load_checkpoint
from crossmatch.training.config import config_from_args
from crossmatch.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('CROSSMATCH_SHARED_DATA', REPO.parent / 'shared' / 'data'))
BCCD = SHARED / 'bccd' / 'BCCD'
pytestmark = pytest.mark.skipif(not (BCCD / 'Annotations').is_dir(), reason=f'BCCD dataset not found at {BCCD}')


def crossmatch(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, '-m', 'crossmatch.cli', *args], capture_output=True, text=True,
                            timeout=300, cwd=REPO, env={**os.environ, 'OMP_NUM_THREADS': '2'})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def overrides(annotations: Path) -> list[str]:
    return [f'data.train_json={annotations / "train.json"}', f'data.train_images={BCCD / "JPEGImages"}',
            f'data.val_json={annotations / "val.json"}', f'data.val_images={BCCD / "JPEGImages"}',
            'data.percent=10', 'data.num_workers=0', 'model.arch=tiny', 'model.weights=', 'model.min_size=320',
            'model.max_size=427', 'method.ohem_k=64', 'method.ohem_ramp_iters=10', 'train.device=cpu',
            'train.iterations=2', 'train.burn_in=1', 'train.warmup_iters=1', 'train.log_every=1',
            'train.eval_every=2', 'train.checkpoint_every=2', 'train.batch_labeled=1', 'train.batch_unlabeled=1',
            'train.max_eval_images=4']


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp('bccd')
    converted = {s: crossmatch('convert-voc', str(BCCD), '--image-set', s, '--out', str(root / f'{s}.json'),
                               '--classes', 'RBC,WBC,Platelets').stdout for s in ('train', 'val')}
    trained = crossmatch('train', '--preset', 'coco-standard', '--method', 'crossmatch', '--no-progress',
                         '--output', str(root / 'run'), '--set', *overrides(root))
    evaluated = crossmatch('eval', str(root / 'run'))
    return root, converted, trained, evaluated


def test_convert_voc_writes_the_image_sets(run):
    root, converted, _, _ = run
    assert converted['train'].startswith(f"{root / 'train.json'}: 205 images")
    assert converted['val'].startswith(f"{root / 'val.json'}: 87 images")
    categories = json.loads((root / 'train.json').read_text())['categories']
    assert [c['name'] for c in categories] == ['RBC', 'WBC', 'Platelets']


def test_train_runs_both_phases_evaluates_and_checkpoints(run):
    root, _, trained, _ = run
    metrics = pd.read_csv(root / 'run' / 'metrics.csv')
    assert list(metrics[metrics.kind == 'train'].phase) == ['burn-in', 'semi']
    evals = metrics[metrics.kind == 'eval']
    assert list(evals.model) == ['student', 'teacher']
    # one AP per class under the converted names, and COCO's AP is their mean (classes without a detection count 0)
    per_class = ['AP-RBC', 'AP-WBC', 'AP-Platelets']
    assert sorted(c for c in metrics.columns if c.startswith('AP-')) == sorted(per_class)
    assert evals.AP.tolist() == pytest.approx(evals[per_class].mean(axis=1).tolist(), abs=1e-9)
    assert sorted(p.name for p in (root / 'run' / 'checkpoints').iterdir()) == ['iter_0000001.pt', 'iter_0000002.pt']
    assert load_checkpoint(root / 'run' / 'checkpoints' / 'iter_0000002.pt')['config']['model']['min_size'] == 320
    assert re.search(r'teacher: AP \d+\.\d\d', trained.stdout)


def test_eval_prints_the_runs_ap(run):
    root, _, _, evaluated = run
    assert 'iter_0000002.pt (teacher, iteration 2)' in evaluated.stdout
    metrics = json.loads(evaluated.stdout[evaluated.stdout.index('{'):])
    final = pd.read_csv(root / 'run' / 'metrics.csv').query("kind == 'eval' and model == 'teacher'").iloc[-1]
    assert metrics['AP'] == pytest.approx(final.AP, abs=1e-3)  # same weights, same images (rounded to 3 decimals)


def test_size_overrides_reach_the_detector(run, tmp_path):
    root = run[0]
    config = config_from_args('coco-standard', overrides=overrides(root), output=str(tmp_path / 'sizes'))
    transform = Trainer(config, progress=False).model.transform
    assert (transform.min_size, transform.max_size) == ((320,), 427)
