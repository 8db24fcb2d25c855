"""`crossmatch export` on a 4-iteration run of the quick shapes set: the teacher as ONNX gives, under ONNX Runtime,
the detections PyTorch gives on validation images (same count, boxes within 1e-3 px); the file names its classes
and input size; the student as TorchScript matches too; bad input exits 2 with one line."""
import contextlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from crossmatch.training.checkpoint import load_detectors
from crossmatch.cli import main
from crossmatch.data.coco import float_image, load_rgb_image
from crossmatch.model.export import onnx_metadata
from crossmatch.training.inference import run_category_map
from crossmatch.data.shapes import generate_shapes

onnxruntime = pytest.importorskip('onnxruntime', reason="the export extra: pip install 'crossmatch[export]'")

REPO = Path(__file__).resolve().parents[1]
SHORT = ['data.shapes_preset=quick', f'data.root={REPO / "data"}', 'data.num_workers=0', 'train.iterations=4',
         'train.burn_in=2', 'train.warmup_iters=1', 'train.log_every=2', 'train.eval_every=4',
         'train.checkpoint_every=4', 'train.batch_labeled=2', 'train.batch_unlabeled=2', 'train.max_eval_images=8']
VALIDATION_IMAGES = 8


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "A 4-iteration CrossMatch run made through the CLI, with its detectors loaded back."
    folder = tmp_path_factory.mktemp('export') / 'run'
    assert main(['train', '--set', *SHORT, '--output', str(folder), '--no-progress']) == 0
    return folder, load_detectors(folder)


@pytest.fixture(scope='module')
def images():
    "The first validation images of the quick shapes set, as the float tensors a detector takes."
    files = sorted(generate_shapes('quick', REPO / 'data').val_images.iterdir())[:VALIDATION_IMAGES]
    return [float_image(load_rgb_image(path)) for path in files]


def export(*args: str) -> tuple[int, str, str]:
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        status = main(['export', *args])
    return status, out.getvalue(), err.getvalue()


def unmatched(boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray, reference: dict) -> list[int]:
    "Indices of `reference`'s detections with no detection of the same label, score within 1e-4 and box within 1e-3."
    # order-free: an untrained model gives near-equal scores, whose order float rounding may swap
    free = np.ones(len(boxes), dtype=bool)
    missing = []
    for i, (box, label, score) in enumerate(zip(reference['boxes'].numpy(), reference['labels'].numpy(),
                                                reference['scores'].numpy())):
        fits = free & (labels == label) & (np.abs(scores - score) <= 1e-4) & (np.abs(boxes - box).max(1) <= 1e-3)
        if fits.any(): free[np.flatnonzero(fits)[0]] = False
        else: missing.append(i)
    return missing


def test_onnx_teacher_matches_pytorch_on_validation_images(run, images, tmp_path):
    folder, detectors = run
    status, out, err = export(str(folder), '--out', str(tmp_path / 'teacher.onnx'))
    assert status == 0, err
    assert f"the teacher of iteration {detectors.iteration} as onnx, one 3x128x128 image in" in out
    session = onnxruntime.InferenceSession(tmp_path / 'teacher.onnx', providers=['CPUExecutionProvider'])
    counts = []
    for image in images:
        boxes, labels, scores = session.run(None, {'image': image.numpy()})
        with torch.no_grad(): reference = detectors.teacher([image])[0]
        assert len(boxes) == len(reference['boxes'])
        assert unmatched(boxes, labels, scores, reference) == [], "detections of PyTorch that ONNX Runtime does not give"
        counts.append(len(boxes))
    assert sum(counts) > 0, "no detections at all: the comparison would prove nothing"


def test_onnx_metadata_names_the_classes_and_the_input_size(run, tmp_path):
    folder, detectors = run
    assert export(str(folder), '--out', str(tmp_path / 'teacher.onnx'))[0] == 0
    meta = onnx_metadata(tmp_path / 'teacher.onnx')
    assert meta['class_names'] == run_category_map(detectors.config.data, detectors.num_classes).names[1:]
    assert len(meta['class_names']) == detectors.num_classes
    assert meta['input_size'] == (128, 128)
    session = onnxruntime.InferenceSession(tmp_path / 'teacher.onnx', providers=['CPUExecutionProvider'])
    assert session.get_modelmeta().custom_metadata_map['input_size'] == '128x128'


def test_torchscript_student_matches_pytorch(run, images, tmp_path):
    folder, detectors = run
    status, out, err = export(str(folder), '--model', 'student', '--format', 'torchscript', '--out', str(tmp_path / 'student.pt'))
    assert status == 0, err
    extra = {'class_names': '', 'input_size': ''}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        scripted = torch.jit.load(tmp_path / 'student.pt', _extra_files=extra)
        _, detections = scripted(images[:2])
    with torch.no_grad(): reference = detectors.student(images[:2])
    for ours, theirs in zip(detections, reference):
        assert len(ours['boxes']) == len(theirs['boxes'])
        torch.testing.assert_close(ours['boxes'], theirs['boxes'], atol=1e-3, rtol=0)
    assert extra['input_size'].decode() == '128x128' and len(json.loads(extra['class_names'])) == detectors.num_classes


def test_bad_input_exits_2_with_one_line(run, tmp_path):
    folder, _ = run
    status, _, err = export(str(tmp_path), '--out', str(tmp_path / 'x.onnx'))
    assert status == 2 and f"run folder {tmp_path} has no checkpoints" in err and len(err.splitlines()) == 1
    status, _, err = export(str(folder), '--size', '16', '16', '--out', str(tmp_path / 'x.onnx'))
    assert status == 2 and '--size 16 16' in err
    assert not (tmp_path / 'x.onnx').exists()
