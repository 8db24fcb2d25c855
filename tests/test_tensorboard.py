"""`train.tensorboard=true` on short runs of the quick shapes set: TensorBoard's own reader finds every number of
metrics.csv under its column's name at its row's step (and nothing else), the images every N iterations, and,
after a resume that discarded CSV rows, each step once, as the CSV has it."""
import math
from pathlib import Path

import pandas as pd
import pytest

from crossmatch.training.config import apply_overrides, get_preset
from crossmatch.training.trainer import Trainer

event_accumulator = pytest.importorskip('tensorboard.backend.event_processing.event_accumulator',
                                        reason="the tensorboard extra: pip install 'crossmatch[tensorboard]'")

REPO = Path(__file__).resolve().parents[1]


def config(run_dir: Path, *overrides: str):
    return apply_overrides(get_preset('shapes'), [
        'data.shapes_preset=quick', f'data.root={REPO / "data"}', 'data.num_workers=0', 'train.threads=1',
        'train.iterations=8', 'train.burn_in=2', 'train.warmup_iters=1', 'train.log_every=2', 'train.eval_every=4',
        'train.checkpoint_every=4', 'train.batch_labeled=2', 'train.batch_unlabeled=2', 'train.max_eval_images=4',
        'method.delta=0.3', 'train.tensorboard=true', f'train.output_dir={run_dir}', *overrides])


def csv_scalars(run_dir: Path) -> dict[tuple[str, int], float]:
    "Every number of the run's metrics.csv as {(tag, iteration): value}: train/<column>, eval/<model>/<column>."
    frame, found = pd.read_csv(run_dir / 'metrics.csv'), {}
    for row in frame.to_dict('records'):
        prefix = f"eval/{row['model']}" if row['kind'] == 'eval' else row['kind']
        for column, value in row.items():
            if column in ('iteration', 'kind', 'phase', 'model') or isinstance(value, str) or math.isnan(value): continue
            found[f'{prefix}/{column}', int(row['iteration'])] = float(value)
    return found


def events(run_dir: Path):
    return event_accumulator.EventAccumulator(str(run_dir / 'tensorboard'), size_guidance={'images': 0}).Reload()


def event_scalars(accumulator) -> tuple[dict[tuple[str, int], float], int]:
    "{(tag, step): value} of every scalar event, and how many events there are (a step written twice counts twice)."
    pairs = [((tag, e.step), e.value) for tag in accumulator.Tags()['scalars'] for e in accumulator.Scalars(tag)]
    return dict(pairs), len(pairs)


def assert_same(csv: dict, board: dict):
    assert set(board) == set(csv), f"only in the events: {sorted(set(board) - set(csv))[:5]}, only in the CSV: {sorted(set(csv) - set(board))[:5]}"
    for key, value in csv.items():
        assert board[key] == pytest.approx(value, rel=1e-6, abs=1e-7), key  # event files hold float32


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp('tensorboard') / 'run'
    Trainer(config(folder, 'train.tensorboard_images_every=2'), progress=False).fit()
    return folder


def test_event_file_holds_every_number_of_the_csv(run):
    csv, (board, count) = csv_scalars(run), event_scalars(events(run))
    assert_same(csv, board)
    assert count == len(board)
    assert {('train/loss', 8), ('train/lr', 2), ('eval/student/AP', 8), ('eval/teacher/AP50', 8)} <= set(csv)


def test_images_every_n_iterations(run):
    accumulator = events(run)
    steps = {tag: [e.step for e in accumulator.Images(tag)] for tag in accumulator.Tags()['images']}
    assert steps == {'images/val_detections/student': [2, 4, 6, 8], 'images/val_detections/teacher': [4, 6, 8],
                     'images/unlabeled_pseudo_labels': [4, 6, 8]}
    image = accumulator.Images('images/val_detections/student')[-1]
    assert (image.width, image.height) == (128, 128)


def test_resume_hides_the_discarded_steps(tmp_path):
    folder = tmp_path / 'run'
    Trainer(config(folder), progress=False).fit(stop_at=6)  # rows at 2, 4, 6; the newest checkpoint is 4's
    Trainer(config(folder), resume=True, progress=False).fit()  # row 6 goes to metrics.discarded.csv, then 6 and 8
    assert len(list((folder / 'tensorboard').iterdir())) == 2
    assert pd.read_csv(folder / 'metrics.discarded.csv').iteration.tolist() == [6]
    csv, (board, count) = csv_scalars(folder), event_scalars(events(folder))
    assert_same(csv, board)
    assert count == len(board), "a step discarded from the CSV is still in TensorBoard"


def test_off_by_default(tmp_path):
    Trainer(config(tmp_path / 'plain', 'train.tensorboard=false', 'train.iterations=2'), progress=False).fit()
    assert (tmp_path / 'plain' / 'metrics.csv').exists() and not (tmp_path / 'plain' / 'tensorboard').exists()
