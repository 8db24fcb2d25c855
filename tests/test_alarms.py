"""Each training warning provoked by a short run on the quick shapes set, and a run that must not warn.

δ 0.99 leaves the teacher no pseudo-label (pseudo-absent); δ 0.05 makes every detection a pseudo-box (pseudo-drift);
the learning rate ×100 after burn-in blows the loss up (spike), zeroes the hard RoI term (flat-term) and takes the
teacher's AP down with the student's (collapse); δ 0.15, a threshold that suits a 16-iteration teacher, warns of
nothing; a run without the hard branch at δ 0.99 is not warned of the hard pseudo-labels it does not train on. The windows
of flat-term and collapse are shortened to fit 24 semi-supervised iterations; the other warnings fire at their
defaults.
"""
from pathlib import Path
import pytest
from crossmatch.method.alarms import AlarmThresholds, read_warnings
from crossmatch.training.config import config_from_args
from crossmatch.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
QUICK = ['data.shapes_preset=quick', 'data.percent=10', f'data.root={REPO / "data"}', 'data.num_workers=0',
         'method.ohem_k=16', 'method.ohem_ramp_iters=4', 'train.device=cpu', 'train.threads=1',
         'train.iterations=40', 'train.burn_in=16', 'train.warmup_iters=4', 'train.log_every=4',
         'train.eval_every=8', 'train.checkpoint_every=40', 'train.batch_labeled=2', 'train.batch_unlabeled=2',
         'train.max_eval_images=16', 'train.max_nonfinite=1000']
SHORT = AlarmThresholds(flat_iters=10, collapse_evals=2)


def train(tmp_path: Path, *overrides: str, alarms: AlarmThresholds | None = None):
    "A 40-iteration run (burn-in 16, an evaluation every 8); its warnings.log."
    trainer = Trainer(config_from_args('shapes', overrides=QUICK + list(overrides), output=str(tmp_path / 'run')),
                      progress=False, alarms=alarms)
    trainer.fit()
    return read_warnings(trainer.run_dir)


def test_delta_099_pseudo_labels_absent(tmp_path, capfd):
    log = train(tmp_path, 'method.delta=0.99')
    assert list(log.name) == ['pseudo-absent']
    assert log.iteration[0] == 36  # 20 semi-supervised iterations after burn-in
    printed = [l for l in capfd.readouterr().err.splitlines() if l.startswith('crossmatch warning')]
    assert len(printed) == 1 and 'lower method.delta' in printed[0], printed


def test_delta_005_pseudo_label_drift(tmp_path):
    log = train(tmp_path, 'method.delta=0.05')
    assert 'pseudo-drift' in set(log.name), log
    assert 'raise method.delta' in log[log.name == 'pseudo-drift'].message.iloc[0]


def test_learning_rate_x100_after_burn_in_spikes_flattens_and_collapses(tmp_path):
    log = train(tmp_path, 'train.lr_steps=[24]', 'train.lr_gamma=100', alarms=SHORT)
    started = dict(zip(log.name, log.iteration))
    assert {'spike', 'flat-term', 'collapse'} <= set(started), log
    assert 24 < started['spike'] < started['flat-term']  # the spike comes first, before the losses go NaN


def test_a_sane_run_does_not_warn(tmp_path):
    log = train(tmp_path, 'method.delta=0.15', alarms=SHORT)
    assert log.empty, log.to_string()


def test_a_run_without_the_hard_branch_is_not_warned_of_hard_pseudo_labels(tmp_path):
    "δ 0.99 leaves soft multi-scale (`method.hard=false`) no hard pseudo-label, as it does CrossMatch, but it trains on none."
    log = train(tmp_path, 'method.delta=0.99', 'method.hard=false')
    assert not {'pseudo-absent', 'pseudo-drift'} & set(log.name), log.to_string()
