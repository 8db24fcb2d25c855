"Analysis, widgets and curves driven through their controls on a short trainer run and on a freshly built model: the data behind each figure follows."
from pathlib import Path
import pandas as pd
import pytest
import torch
from crossmatch.data.coco import float_image
from crossmatch.training.config import apply_overrides, get_preset
from crossmatch.method.config import MethodConfig
from crossmatch.method.ema import MeanTeacher
from crossmatch.model.detector import ModelConfig, build_model
from crossmatch.model.multiscale import teacher_forward
from crossmatch.method.pseudo import pseudo_labels
from crossmatch.training.trainer import Trainer
from crossmatch.views.analysis import load_run, training_batch
from crossmatch.views.widgets import LevelPredictionViewer, OHEMViewer, PseudoLabelExplorer, SampledRoIViewer
from crossmatch.views.curves import SamplingCurves, TrainingCurves

DATA_ROOT = Path(__file__).resolve().parents[1] / 'data'


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: extra threads only contend on a shared CPU
    run_dir = tmp_path_factory.mktemp('widgets') / 'run'
    config = apply_overrides(get_preset('shapes'), [
        'data.shapes_preset=quick', 'data.percent=10', 'data.num_workers=0', f'data.root={DATA_ROOT}',
        'method.ohem_k=16', 'method.ohem_ramp_iters=4', 'method.delta=0.3', 'train.iterations=8', 'train.burn_in=4',
        'train.warmup_iters=2', 'train.log_every=2', 'train.eval_every=4', 'train.checkpoint_every=4',
        'train.batch_labeled=2', 'train.batch_unlabeled=2', 'train.max_eval_images=4', f'train.output_dir={run_dir}'])
    Trainer(config, progress=False).fit()
    yield load_run(run_dir)
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def fresh(run):
    torch.manual_seed(1)
    student = build_model(ModelConfig(arch='tiny'), run.data.category_map.num_classes + 1).eval()
    return student, MeanTeacher(student).model


def test_load_run_picks_checkpoints(run):
    run_dir = run.checkpoint.parent.parent
    assert run.iteration == 8 and run.checkpoint.name == 'iter_0000008.pt'
    earlier = load_run(run_dir, checkpoint=4, data=False)
    assert earlier.iteration == 4 and earlier.data is None and len(earlier.class_names) == 9
    assert not torch.equal(earlier.student.state_dict()['roi_heads.box_predictor.cls_score.weight'],
                           run.student.state_dict()['roi_heads.box_predictor.cls_score.weight'])
    with pytest.raises(FileNotFoundError, match='iter_0000005.pt'):
        load_run(run_dir, checkpoint=5)


def test_pseudo_label_slider_matches_pseudo_labels_and_never_grows(run, fresh):
    for teacher in (run.teacher, fresh[1]):
        explorer = PseudoLabelExplorer(teacher, run.data.train.unlabeled, run.data.train.hidden_ground_truth, delta=0.0)
        detections = teacher_forward(teacher, [float_image(explorer.image)]).detections
        previous = explorer.counts['pseudo']
        assert previous == len(pseudo_labels(detections, 0.0)[0]['boxes']) > 0
        for delta in torch.linspace(0.05, 1.0, 12).tolist():
            explorer.controls['delta'].value = delta
            assert torch.equal(explorer.pseudo['boxes'], pseudo_labels(detections, delta)[0]['boxes'])
            assert explorer.counts['pseudo'] <= previous
            previous = explorer.counts['pseudo']
        assert previous == 0  # nothing scores above 1


def test_level_viewer_bars_follow_the_selected_roi(fresh, run):
    viewer = LevelPredictionViewer(*fresh, run.data.train.unlabeled, run.class_names, max_rois=5)
    for roi in reversed(viewer.choices):
        viewer.controls['roi'].value = roi
        assert torch.equal(viewer.bars['teacher'], viewer.inspection.teacher_probs[roi])
        for level, name in enumerate(viewer.inspection.level_names):
            assert torch.equal(viewer.bars[name], viewer.inspection.student_probs[level, roi])
        assert viewer.level == int(viewer.inspection.levels[roi])


def test_ohem_slider_keeps_min_ohem_k_n_per_level(fresh, run):
    viewer = OHEMViewer(*fresh, run.data.train.unlabeled, ohem_k=3)
    n = len(viewer.inspection.rois)
    for ohem_k in (1, 3, 64, n):
        viewer.controls['ohem_k'].value = ohem_k
        assert [len(kept) for kept in viewer.kept.values()] == [min(ohem_k, n)] * 4
        for level, kept in enumerate(viewer.kept.values()):
            dropped = torch.ones(n, dtype=torch.bool); dropped[kept] = False
            if dropped.any(): assert viewer.inspection.kl[level, kept].min() >= viewer.inspection.kl[level, dropped].max()


def test_sampled_rois_average_to_the_step_diagnostics(run, fresh, tmp_path):
    labeled, unlabeled, hidden = training_batch(run.data.train, seed=3)
    method = MethodConfig(delta=0.1, ohem_k=8, ohem_ramp_iters=0)
    for student, teacher in ((run.student, run.teacher), fresh):
        torch.manual_seed(0)
        viewer = SampledRoIViewer(student, teacher, labeled, unlabeled, method, hidden)
        d = viewer.diagnostics
        assert viewer.counts.true_positive.mean() == pytest.approx(d['hard_true_positive'])
        assert viewer.counts.false_negative.mean() == pytest.approx(d['hard_false_negative'])
        assert viewer.counts.soft_only.mean() == pytest.approx(d['soft_only_rois'])
        viewer.controls['image'].value = 1
        assert viewer.shown is viewer.per_image[1]
    assert viewer.save(tmp_path / 'sampled.png').read_bytes()[:4] == b'\x89PNG'


def test_curves_read_the_metrics_of_the_run(run):
    run_dir = run.checkpoint.parent.parent
    logged = pd.read_csv(run_dir / 'metrics.csv')
    curves = SamplingCurves(run_dir)
    fig1a = curves.series['Fig. 1a: boxes per image']
    semi = logged[(logged.kind == 'train') & (logged.phase == 'semi')]
    assert fig1a.pseudo_boxes_per_image.tolist() == semi.pseudo_boxes_per_image.tolist()
    training = TrainingCurves(run_dir, terms=['loss'])
    assert training.losses.loss.tolist() == logged[logged.kind == 'train'].loss.tolist()
    training.controls['metric'].value = 'AP75'
    student = logged[(logged.kind == 'eval') & (logged.model == 'student')]
    drawn = {line.get_label(): list(line.get_ydata()) for line in training.figure.axes[1].lines}
    assert drawn['this run (student)'] == student.AP75.tolist()
    with pytest.raises(KeyError, match='not logged'):
        TrainingCurves(run_dir, metric='mAP')
