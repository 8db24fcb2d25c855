"""The paper's configuration end to end (issue 11): the loader's scale jitter reaches the network in training, the
teacher's weak view and the student's strong view share one frame, evaluation runs at the test size, and the
presets' sizes, labeled views and RPN values reach the loader and the detector. The ResNet-50-FPN is built from
scratch (`weights=''`) and fed small images (short sides 64–128, test size 160 where said) so that it runs on a CPU."""
import copy
from types import SimpleNamespace

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from crossmatch.data.augment import WeakStrong, paper_resize
from crossmatch.data.loader import TwoStreamLoader
from crossmatch.training.config import config_from_args, get_preset
from crossmatch.method.config import MethodConfig
from crossmatch.model.detector import LoaderSizedTransform, ModelConfig, build_model
from crossmatch.method.step import StudentLosses, teacher_pass, train_step
from crossmatch.training.trainer import Trainer
from conftest import paper_run_config, record_rpn_sizes



class Photos(Dataset):
    "Random 90×120 uint8 images with two boxes each (boxes only when `labeled`), a pure function of the index."
    def __init__(self, n, labeled=True): self.n, self.labeled = n, labeled
    def __len__(self): return self.n
    def __getitem__(self, index):
        g = torch.Generator().manual_seed(index)
        image = tv_tensors.Image(torch.randint(0, 256, (3, 90, 120), generator=g, dtype=torch.uint8))
        target = {'image_id': index}
        if self.labeled:
            target['boxes'] = tv_tensors.BoundingBoxes([[10., 10., 50., 60.], [40., 20., 110., 80.]], format='XYXY',
                                                       canvas_size=(90, 120))
            target['labels'] = torch.tensor([1, 2])
        return image, target


def small_loader(**kw):
    augment = WeakStrong(resize=paper_resize((64, 96, 128), 200))
    return TwoStreamLoader(Photos(6), Photos(6, labeled=False), augment, batch_labeled=2, batch_unlabeled=2, seed=0, **kw)


def test_training_sizes_vary_teacher_and_student_share_a_frame():
    torch.manual_seed(0)
    student = build_model(ModelConfig(arch='paper'), num_classes=3)
    teacher = copy.deepcopy(student).eval()
    assert isinstance(student.transform, LoaderSizedTransform)
    student_sizes, teacher_sizes = record_rpn_sizes(student), record_rpn_sizes(teacher)
    method = MethodConfig(ohem_k=16, delta=0.0)  # every teacher detection a pseudo-box: both branches run
    batches = iter(small_loader(labeled_views='both'))
    view_sizes = []
    for _ in range(3):
        labeled, unlabeled = next(batches)
        view_sizes.append(([tuple(i.shape[-2:]) for i in labeled[0]], [tuple(i.shape[-2:]) for i in unlabeled[1]]))
        batch = teacher_pass(teacher, unlabeled, method)
        result = train_step(StudentLosses(student.train(), method), labeled, method, batch, keep_details=True)
        assert torch.isfinite(result.loss)
        # the teacher's frame is the student's strong views' frame: the soft branch pools its proposals there
        assert batch.teacher.image_sizes == result.sampled.image_sizes
    # per step the student saw the labeled batch (4 images: both views), then the strong views; the teacher the weak views
    labeled_seen, strong_seen = student_sizes[0::2], student_sizes[1::2]
    assert labeled_seen == [sizes for sizes, _ in view_sizes]  # the loader's sizes, not resized again
    assert strong_seen == [sizes for _, sizes in view_sizes] == teacher_sizes
    short_sides = {min(size) for sizes in labeled_seen + strong_seen for size in sizes}
    assert short_sides <= {64, 96, 128} and len(short_sides) >= 2, short_sides  # the jitter survives


def test_evaluation_runs_at_the_test_size():
    model = build_model(ModelConfig(arch='paper', min_size=160, max_size=267), num_classes=3).eval()
    seen = record_rpn_sizes(model)
    images = [torch.rand(3, 90, 120), torch.rand(3, 128, 64)]
    with torch.no_grad(): detections = model(images)
    assert seen == [[(160, 213), (267, 133)]]  # the test size (a small one here), whatever size came in
    assert all(d['boxes'].shape[-1] == 4 for d in detections)
    with torch.no_grad(): sizes = build_model(ModelConfig(arch='paper'), 3).eval().transform(images)[0].image_sizes
    assert sizes == [(800, 1066), (1333, 666)]  # the paper's own test size, 800 / 1333


def test_tiny_model_keeps_torchvisions_transform():
    assert type(build_model(ModelConfig(arch='tiny'), 4).transform) is GeneralizedRCNNTransform


def test_trainer_loader_takes_sizes_and_views_from_the_config():
    data = SimpleNamespace(train=SimpleNamespace(labeled=Photos(4), unlabeled=Photos(4, labeled=False)))
    for preset, sizes, views in (('voc', list(range(480, 801, 32)), 'both'),
                                 ('coco-standard', [640, 672, 704, 736, 768, 800], 'both')):
        loader = Trainer.loader(SimpleNamespace(config=get_preset(preset), data=data, iteration=0, workers=0))
        assert (loader.augment.resize.min_size, loader.augment.resize.max_size, loader.labeled_views) == (sizes, 1333, views)
    shapes = Trainer.loader(SimpleNamespace(config=get_preset('shapes'), data=data, iteration=0, workers=0))
    assert shapes.augment.resize is None and shapes.labeled_views == 'weak'  # the tiny detector resizes itself


def test_preset_rpn_values_reach_the_detector():
    config = config_from_args('coco-standard', overrides=["model.weights="])
    model = build_model(config.model, num_classes=81)
    assert model.rpn._post_nms_top_n['training'] == 1000 and model.rpn.fg_bg_sampler.positive_fraction == 0.25
    assert isinstance(model.transform, LoaderSizedTransform) and model.transform.min_size == (800,)
    voc = build_model(config_from_args('voc', overrides=["model.weights="]).model, num_classes=21)
    assert (voc.transform.min_size, voc.transform.max_size) == ((600,), 1333)


def test_a_short_paper_run_on_the_cpu(tmp_path):
    "Trainer end to end: the paper's detector from scratch, both labeled views, focal loss, jittered small sizes."
    config = paper_run_config(tmp_path / 'run', [96, 128], 112, 160, 'train.iterations=3', 'train.burn_in=1',
                              'train.log_every=1', 'train.eval_every=3', 'train.checkpoint_every=3',
                              'train.max_eval_images=2', 'train.batch_labeled=1', 'train.batch_unlabeled=1',
                              'method.ohem_k=8', 'train.threads=2')
    trainer = Trainer(config, progress=False)
    seen = record_rpn_sizes(trainer.model, with_mode=True)
    metrics = trainer.fit()
    train = metrics[metrics.kind == 'train']
    assert train.loss.notna().all() and list(train.phase) == ['burn-in', 'semi', 'semi']
    training = [sizes for is_training, sizes in seen if is_training]
    evaluation = [sizes for is_training, sizes in seen if not is_training]
    # burn-in: the labeled batch (both views: 2 images); semi: the labeled batch, then the strong view
    assert [len(sizes) for sizes in training] == [2, 2, 1, 2, 1]
    assert {size for sizes in training for size in sizes} <= {(96, 96), (128, 128)}  # the loader's sizes
    assert evaluation and all(size == (112, 112) for sizes in evaluation for size in sizes)  # the test size
    assert 'labeled ×2 views' in trainer.summary
