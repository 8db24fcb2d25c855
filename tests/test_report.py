"""`crossmatch report` on a finished run, on one interrupted mid-way (as a kill leaves it), and on folders that are not runs."""
from pathlib import Path
import re
import pytest
from crossmatch.cli import main
from crossmatch.training.config import config_from_args
from crossmatch.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
QUICK = ['data.shapes_preset=quick', 'data.percent=10', f'data.root={REPO / "data"}', 'data.num_workers=0',
         'method.ohem_k=16', 'method.ohem_ramp_iters=4', 'method.delta=0.2', 'train.device=cpu', 'train.threads=1',
         'train.iterations=12', 'train.burn_in=4', 'train.warmup_iters=2', 'train.log_every=1', 'train.eval_every=4',
         'train.checkpoint_every=4', 'train.batch_labeled=2', 'train.batch_unlabeled=2', 'train.max_eval_images=4']


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    "A finished 12-iteration run and one stopped after 8 iterations (checkpoint at 8, no later row)."
    root = tmp_path_factory.mktemp('report')
    Trainer(config_from_args('shapes', overrides=QUICK, output=str(root / 'finished')), progress=False).fit()
    Trainer(config_from_args('shapes', overrides=QUICK, output=str(root / 'stopped')), progress=False).fit(stop_at=8)
    return root


def report(run: Path, capsys, *extra: str) -> tuple[int, str, str]:
    code = main(['report', str(run), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def embedded_images(page: Path) -> int:
    return len(re.findall(r'<img alt="[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]{100,}">', page.read_text()))


def test_report_of_a_finished_run(runs, capsys):
    code, out, err = report(runs / 'finished', capsys)
    page = runs / 'finished' / 'report.html'
    assert (code, err) == (0, ''), err
    assert str(page.resolve()) in out
    text = page.read_text()
    assert 'finished: 12 of 12 iterations' in text and 'the teacher of iter_0000012.pt' in text
    assert embedded_images(page) == 2  # the curves and the validation images
    assert 'method:' in text and 'delta: 0.2' in text  # the config


def test_report_of_an_interrupted_run(runs, capsys, tmp_path):
    out_file = tmp_path / 'stopped.html'
    code, _, err = report(runs / 'stopped', capsys, '--out', str(out_file), '--images', '1')
    assert (code, err) == (0, ''), err
    text = out_file.read_text()
    assert 'not finished (running, or stopped): 8 of 12 iterations' in text
    assert 'the teacher of iter_0000008.pt (iteration 8)' in text
    assert embedded_images(out_file) == 2


@pytest.mark.parametrize('folder', ['empty', 'missing', 'checkpoints-only'])
def test_report_of_a_folder_that_is_not_a_run(tmp_path, capsys, folder):
    path = tmp_path / folder
    if folder != 'missing': path.mkdir()
    if folder == 'checkpoints-only': (path / 'checkpoints').mkdir()
    code, out, err = report(path, capsys)
    assert code == 2 and out == ''
    assert err.strip() == f"crossmatch report: error: {path} is not a run folder: it has no config.yaml (the trainer writes one when a run starts)"
