"The pretrained tiny backbone: made once and reused (counted), loaded by `model.weights=pretrained`, and its CLI."
import subprocess, sys
from unittest import mock

import pytest
import torch

from crossmatch.model import pretrain
from crossmatch.cli import main
from crossmatch.model.detector import ModelConfig, build_model
from crossmatch.model.pretrain import PretrainConfig, pretrained_backbone, pretrained_backbone_path, train_backbone

TINY = dict(steps=2, batch_size=4, warmup_steps=1)


@pytest.fixture(autouse=True)
def few_held_out_images(monkeypatch):
    monkeypatch.setattr(pretrain, 'HELD_OUT_IMAGES', 8)  # the score's size does not matter here, its time does


def test_made_once_then_reused_and_remade_when_a_field_changes(tmp_path):
    with mock.patch.object(pretrain, 'train_backbone', wraps=train_backbone) as trained:
        first = pretrained_backbone(PretrainConfig(**TINY), tmp_path, workers=0, progress=False)
        again = pretrained_backbone(PretrainConfig(**TINY), tmp_path, workers=0, progress=False)
        assert trained.call_count == 1 and first == again
        other = pretrained_backbone(PretrainConfig(**TINY, task='scenes'), tmp_path, workers=0, progress=False)
        forced = pretrained_backbone(PretrainConfig(**TINY), tmp_path, force=True, workers=0, progress=False)
    assert trained.call_count == 3 and other != first and forced == first
    weights = torch.load(first, weights_only=True)
    assert weights and all(k.startswith('backbone.body.') for k in weights)


def test_the_detector_loads_the_cached_backbone_and_trains_nothing(tmp_path):
    weights, _ = train_backbone(PretrainConfig(**TINY), workers=0, progress=False)
    path = pretrained_backbone_path(PretrainConfig(), tmp_path)  # where model.weights=pretrained looks
    path.parent.mkdir(parents=True)
    torch.save(weights, path)
    with mock.patch.object(pretrain, 'train_backbone') as trained:
        model = build_model(ModelConfig(weights='pretrained', norm='frozen', frozen_stages=1), 9, cache_root=tmp_path)
    assert trained.call_count == 0
    state = model.state_dict()
    for name, value in weights.items():
        if not name.endswith('num_batches_tracked'): assert torch.equal(state[name], value), name
    scratch = build_model(ModelConfig(), 9, cache_root=tmp_path)
    assert not torch.equal(scratch.state_dict()['backbone.body.c4.conv1.weight'], weights['backbone.body.c4.conv1.weight'])


def test_cli_pretrain_reuses_the_cache(tmp_path, capsys):
    argv = ['pretrain', '--steps', '2', '--batch-size', '4', '--workers', '0', '--no-progress', '--root', str(tmp_path)]
    with mock.patch.object(pretrain, 'train_backbone', wraps=train_backbone) as trained:
        assert main(argv) == 0 and main(argv) == 0
    assert trained.call_count == 1
    out = capsys.readouterr().out
    assert out.count('made ') == 1 and out.count('reused ') == 1


def test_cli_pretrain_help_and_bad_values():
    done = subprocess.run([sys.executable, '-m', 'crossmatch.cli', 'pretrain', '--help'], capture_output=True, text=True)
    assert done.returncode == 0 and '--task' in done.stdout
    bad = subprocess.run([sys.executable, '-m', 'crossmatch.cli', 'pretrain', '--steps', '0'], capture_output=True, text=True)
    assert bad.returncode == 2 and 'PretrainConfig.steps' in bad.stderr and 'Traceback' not in bad.stderr
