"""The soft branch's open choices (issue 11, point 3): each switch reaches both values, and the two named method
settings are valid configs."""
import math
from pathlib import Path
from dataclasses import fields
import pytest
import torch
from torch.distributions import Categorical, kl_divergence
from crossmatch.training.config import Config, check_config
from crossmatch.method.losses import KL_DIRECTIONS, LEVEL_REDUCTIONS, soft_kl_per_roi
from crossmatch.method.config import METHOD_SETTINGS, MethodConfig
from crossmatch.method.ohem import OHEM_RAMPS, OHEM_SCOPES, OHEMPlan, ohem_k_at, ohem_plan, ohem_select
from crossmatch.method.step import WEIGHT_SCHEDULES, consistency_weights, total_loss


def test_kl_equals_torch_in_both_directions():
    g = torch.Generator().manual_seed(0)
    student = torch.randn(4, 30, 6, generator=g)
    teacher = torch.randn(30, 6, generator=g).softmax(-1)
    ps, pt = Categorical(logits=student), Categorical(probs=teacher.expand(4, 30, 6))
    torch.testing.assert_close(soft_kl_per_roi(student, teacher, 'student||teacher'), kl_divergence(ps, pt))
    torch.testing.assert_close(soft_kl_per_roi(student, teacher, 'teacher||student'), kl_divergence(pt, ps))


@pytest.mark.parametrize('shape', OHEM_RAMPS)
@pytest.mark.parametrize('start', [0, 2000])
def test_ramps_hit_both_ends(shape, start):
    assert ohem_k_at(start, 256, 1000, 3000, shape, start) == 1000  # every RoI at the start
    assert ohem_k_at(start + 3000, 256, 1000, 3000, shape, start) == 256  # K at the end
    assert ohem_k_at(start + 1500, 256, 1000, 3000, shape, start) == 628  # midpoint (N + K) / 2
    if start: assert ohem_k_at(start - 1, 256, 1000, 3000, shape, start) == 1000
    ks = [ohem_k_at(t, 256, 1000, 3000, shape, start) for t in range(0, start + 3100, 50)]
    assert all(a >= b for a, b in zip(ks, ks[1:]))


def test_cosine_ramp_quarter_point():
    expected = round(256 + 744 * (1 + math.cos(math.pi / 4)) / 2)
    assert ohem_k_at(2750, 256, 1000, 3000, 'cosine', 2000) == expected == 891


def test_per_batch_top_k_keeps_exactly_k_per_level():
    g = torch.Generator().manual_seed(1)
    losses = torch.cat([torch.rand(4, 50, generator=g) + 1, torch.rand(4, 20, generator=g)], dim=1)
    per_batch = ohem_select(losses, 16)
    assert per_batch.kept_per_level == [16] * 4
    for level in range(4):
        assert losses[level][per_batch.mask[level]].min() > losses[level][~per_batch.mask[level]].max()
    assert ohem_select(losses, 16, rois_per_image=[50, 20]).kept_per_level == [32] * 4  # per image: K each


@pytest.mark.parametrize('scope, n_rois, blocks', [('image', 50, [50, 20]), ('batch', 70, [70])])
def test_ohem_plan_ramps_from_the_scopes_n(scope, n_rois, blocks):
    "N is the largest image's RoIs per image, the batch's per batch; K = 0 turns OHEM off and keeps every RoI."
    method = MethodConfig(ohem_k=16, ohem_ramp_iters=10, ohem_scope=scope)
    assert ohem_plan([50, 20], 0, method) == OHEMPlan(n_rois, blocks)
    assert ohem_plan([50, 20], 10, method) == OHEMPlan(16, blocks)
    off = ohem_plan([50, 20], 0, MethodConfig(ohem_k=0, ohem_scope=scope))
    assert off == OHEMPlan(0, blocks) and off.select(torch.rand(4, 70)).kept_per_level == [70] * 4


def test_weight_schedules_at_their_ends():
    assert consistency_weights(0, 100, 'off') == consistency_weights(100, 100, 'off') == (1.0, 1.0)
    assert consistency_weights(0, 100, 'cosine') == (1.0, 0.0)
    w, one_minus_w = consistency_weights(100, 100, 'cosine')
    assert math.isclose(w, 0.3) and math.isclose(one_minus_w, 0.7)
    assert math.isclose(consistency_weights(50, 100, 'cosine')[0], 0.65)
    with pytest.raises(ValueError, match='length'): consistency_weights(0, 0, 'cosine')


def test_total_loss_beta_on_and_off_the_soft_term():
    terms = {k: torch.tensor(v) for k, v in dict(sup_rpn_cls=1., sup_roi_cls=0.5, hard_rpn_cls=0.125,
                                                   hard_roi_cls=0.375, soft_kl=0.25).items()}
    assert float(total_loss(terms, 2., 3., 5.)) == 1.5 + 5 * (2 * 0.5 + 3 * 0.25)  # 10.25, β on both
    assert float(total_loss(terms, 2., 3., 5., beta_on_soft=False)) == 1.5 + 5 * 2 * 0.5 + 3 * 0.25  # 7.25
    assert float(total_loss(terms, 2., 3., 5., False, 0.5, 0.5)) == 1.5 + 5 * 2 * 0.5 * 0.5 + 3 * 0.5 * 0.25


def test_defaults_are_todays_behaviour():
    m = MethodConfig()
    assert (m.kl_direction, m.kl_reduction, m.ohem_scope, m.ohem_ramp_shape, m.ohem_ramp_start, m.beta_on_soft,
            m.soft_weight_schedule) == ('student||teacher', 'sum', 'image', 'linear', 0, True, 'off')


@pytest.mark.parametrize('name', sorted(METHOD_SETTINGS))
def test_named_settings_pass_config_checks(name):
    setting = METHOD_SETTINGS[name]
    assert set(setting) <= {f.name for f in fields(MethodConfig)}
    method = MethodConfig(**setting)
    assert method.kl_direction in KL_DIRECTIONS and method.kl_reduction in LEVEL_REDUCTIONS
    assert method.ohem_scope in OHEM_SCOPES and method.ohem_ramp_shape in OHEM_RAMPS
    assert method.soft_weight_schedule in WEIGHT_SCHEDULES and 0 <= method.soft_weight_end <= 1
    check_config(Config(method=method))


def test_settings_differ_where_the_issue_says():
    paper, snapshot = METHOD_SETTINGS['paper-text'], METHOD_SETTINGS['authors-snapshot']
    assert set(paper) == set(snapshot)
    assert {k for k in paper if paper[k] != snapshot[k]} == {
        'kl_direction', 'ohem_scope', 'ohem_ramp_shape', 'beta_on_soft', 'soft_weight_schedule'}
    assert (snapshot['delta'], snapshot['ema_alpha'], snapshot['kl_reduction']) == (0.7, 0.9996, 'mean')


def test_authors_snapshot_trains_through_the_cli(tmp_path):
    "The trainer hands the step the semi-supervised phase's length: w follows its cosine from 1, K is ranked per batch."
    import pandas as pd
    from crossmatch.cli import main
    data = Path(__file__).resolve().parents[1] / 'data'
    run = tmp_path / 'snapshot'
    assert main(['train', '--preset', 'shapes', '--method-setting', 'authors-snapshot', '--output', str(run),
                 '--no-progress', '--set', f'data.root={data}', 'data.shapes_preset=quick', 'train.iterations=8',
                 'train.burn_in=4', 'train.log_every=1', 'train.eval_every=8', 'train.max_eval_images=4',
                 'data.num_workers=0', 'train.batch_labeled=2', 'train.batch_unlabeled=2', 'method.ohem_k=16',
                 'method.ohem_ramp_iters=2']) == 0
    rows = pd.read_csv(run / 'metrics.csv').query("kind == 'train' and phase == 'semi'")
    w = rows.soft_weight.tolist()
    assert w[0] == 1.0 and all(a > b for a, b in zip(w, w[1:])) and w[-1] > 0.3
    assert math.isclose(w[2], 0.3 + 0.7 * (1 + math.cos(math.pi * 2 / 4)) / 2)  # iteration 2 of a 4-iteration phase
    assert rows.ohem_k.tolist()[-1] == 16
