"""The CUDA path: a short CrossMatch run on the GPU with mixed precision. Skipped where there is no GPU (CI here);
run it on a machine with one (`pytest tests/test_gpu.py`)."""
from pathlib import Path

import pytest
import torch

from crossmatch.training.checkpoint import load_checkpoint, latest_checkpoint
from crossmatch.training.config import config_from_args
from crossmatch.training.trainer import Trainer
from conftest import paper_run_config, record_rpn_sizes

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')


def test_crossmatch_trains_on_cuda_with_amp(tmp_path):
    config = config_from_args('shapes', overrides=[
        'data.shapes_preset=quick', f'data.root={REPO / "data"}', 'data.num_workers=0', 'train.device=cuda',
        'train.amp=true', 'train.iterations=6', 'train.burn_in=3', 'train.log_every=1', 'train.eval_every=6',
        'train.checkpoint_every=6', 'train.max_eval_images=8'], method='crossmatch', output=str(tmp_path / 'run'))
    trainer = Trainer(config, progress=False)
    assert trainer.device.type == 'cuda' and trainer.amp
    assert next(trainer.model.parameters()).is_cuda and next(trainer.teacher.model.parameters()).is_cuda
    metrics = trainer.fit()
    train = metrics[metrics.kind == 'train']
    assert train.loss.notna().all() and (train.skipped == 0).all()
    assert train[train.phase == 'semi'].soft_kl.notna().all()
    assert set(metrics[metrics.kind == 'eval'].model) == {'student', 'teacher'}
    state = load_checkpoint(latest_checkpoint(tmp_path / 'run'))  # saved from CUDA, loads on the CPU
    assert state['iteration'] == 6 and all(not v.is_cuda for v in state['student'].values())


def test_paper_detector_trains_on_cuda_at_the_jittered_sizes(tmp_path):
    "The paper's detector from scratch under AMP, both labeled views and the focal loss: training at the loader's sizes."
    config = paper_run_config(tmp_path / 'paper', [320, 384, 448], 400, 667, 'train.device=cuda', 'train.amp=true',
                              'train.iterations=6', 'train.burn_in=2', 'train.log_every=1', 'train.eval_every=6',
                              'train.checkpoint_every=6', 'train.max_eval_images=4')
    trainer = Trainer(config, progress=False)
    seen = record_rpn_sizes(trainer.model, with_mode=True)
    metrics = trainer.fit()
    train = metrics[metrics.kind == 'train']
    assert train.loss.notna().all() and (train.skipped == 0).all()
    training = {size for is_training, sizes in seen if is_training for size in sizes}
    assert training <= {(320, 320), (384, 384), (448, 448)} and len(training) >= 2  # shapes are square: short side = side
    assert {size for is_training, sizes in seen if not is_training for size in sizes} == {(400, 400)}
