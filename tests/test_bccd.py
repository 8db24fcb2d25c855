"""The real BCCD dataset (VOC XML) through `voc_to_coco` and `CocoDetection`.

BCCD is read from the shared data folder beside the repository (`../shared/data/bccd`), or from
`$CROSSMATCH_SHARED_DATA/bccd`; it is never copied into the repository. The tests skip when it is absent.
"""
import os, warnings
from pathlib import Path

import pytest
import torch
from torchvision import tv_tensors

from crossmatch.data.convert import voc_to_coco
from crossmatch.data.coco import CocoDetection, load_coco

SHARED = Path(os.environ.get('CROSSMATCH_SHARED_DATA', Path(__file__).resolve().parents[1].parent / 'shared' / 'data'))
BCCD = SHARED / 'bccd' / 'BCCD'
pytestmark = pytest.mark.skipif(not (BCCD / 'Annotations').is_dir(), reason=f'BCCD dataset not found at {BCCD}')

CLASSES = ['RBC', 'WBC', 'Platelets']
# The shared README counts RBC 4,155 / WBC 372 / Platelets 361: those include the two degenerate RBC boxes
# (single points in BloodImage_00338.xml and BloodImage_00343.xml), which the conversion drops.
KEPT = {'RBC': 4153, 'WBC': 372, 'Platelets': 361}
SPLIT_SIZES = {'train': 205, 'val': 87, 'trainval': 292, 'test': 72}


def convert(image_set, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        coco = voc_to_coco(BCCD, image_set, classes=CLASSES, **kwargs)
    return coco, [str(w.message) for w in caught]


@pytest.fixture(scope='module')
def everything():
    "All 364 images: the union of trainval and test."
    ids = [l.strip() for s in ('trainval', 'test') for l in (BCCD / 'ImageSets/Main' / f'{s}.txt').read_text().splitlines() if l.strip()]
    return convert(ids)


def test_class_counts_without_degenerate_boxes(everything):
    coco, _ = everything
    names = {c['id']: c['name'] for c in coco['categories']}
    counts = {n: sum(names[a['category_id']] == n for a in coco['annotations']) for n in CLASSES}
    assert len(coco['images']) == 364
    assert counts == KEPT
    assert sum(counts.values()) + 2 == 4155 + 372 + 361  # the README's total, degenerate boxes included


def test_degenerate_boxes_reported_and_dropped(everything):
    coco, messages = everything
    dropped = coco['info']['dropped_boxes']
    assert sorted(d['file'] for d in dropped) == ['BloodImage_00338.xml', 'BloodImage_00343.xml']
    assert all(d['name'] == 'RBC' for d in dropped)
    assert any('dropped 2 degenerate boxes' in m and 'BloodImage_00338.xml' in m for m in messages)
    assert all(a['bbox'][2] > 0 and a['bbox'][3] > 0 for a in coco['annotations'])


def test_boxes_stay_inside_images_and_border_boxes_end_on_the_border(everything):
    coco, _ = everything
    sizes = {im['id']: (im['width'], im['height']) for im in coco['images']}
    on_border = 0
    for a in coco['annotations']:
        x, y, w, h = a['bbox']
        W, H = sizes[a['image_id']]
        assert x >= 0 and y >= 0 and x + w <= W and y + h <= H, a
        on_border += x == 0 or y == 0 or x + w == W or y + h == H
    assert 1000 < on_border < 1300  # the README: about 1,200 boxes touch the border


@pytest.mark.parametrize('image_set', sorted(SPLIT_SIZES))
def test_image_sets(image_set):
    coco, _ = convert(image_set)
    assert len(coco['images']) == SPLIT_SIZES[image_set]


def test_dataset_from_converted_json(tmp_path):
    out = tmp_path / 'bccd_test.json'
    coco, _ = convert('test', out_json=out)
    ds = CocoDetection(BCCD / 'JPEGImages', out)
    summary = ds.summary()
    assert (summary['images'], summary['classes'], summary['dropped']) == (72, 3, 0)
    assert summary['boxes'] == len(coco['annotations']) == len(load_coco(out).anns)
    image, target = ds[0]
    assert isinstance(image, tv_tensors.Image) and image.dtype == torch.uint8 and tuple(image.shape) == (3, 480, 640)
    assert target['boxes'].canvas_size == (480, 640) and target['labels'].min() >= 1
