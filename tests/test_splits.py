"""Split protocols: reproducibility across processes, Unbiased Teacher's file format, and the unlabeled/hidden separation."""
import json, os, subprocess, sys
from pathlib import Path

import pytest
from PIL import Image

from crossmatch.data.splits import (coco_standard_data, coco_standard_split, read_unbiased_teacher_split,
                               voc0712_data)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ("from crossmatch.data.splits import coco_standard_split; import random; random.seed({salt}); "
          "ids = list(range(5, 50000, 7)); random.shuffle(ids); "
          "print(coco_standard_split(set(ids), 1, 3).labeled)")


@pytest.mark.parametrize('salt', [1, 2])
def test_split_is_the_same_in_other_processes(salt):
    "Another interpreter, with another hash seed and another order of the ids, samples the same labeled ids."
    env = {**os.environ, 'PYTHONHASHSEED': str(salt), 'PYTHONPATH': str(ROOT)}
    out = subprocess.run([sys.executable, '-c', SAMPLE.format(salt=salt)], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(coco_standard_split(range(5, 50000, 7), 1, 3).labeled)


def test_seeds_and_percents_nest_nothing_by_accident():
    ids = range(10_000)
    splits = {seed: set(coco_standard_split(ids, 1, seed).labeled) for seed in range(5)}
    assert all(len(s) == 100 for s in splits.values())
    assert all(len(splits[a] & splits[b]) < 10 for a in splits for b in splits if a < b)  # ~1 expected by chance


def write_coco(root, ids, crowd_only=(), name='train.json', mode='RGB'):
    for i in ids: Image.new(mode, (16, 12), 30).save(root / f'{i}.png')
    anns = [dict(id=1000 + i, image_id=i, category_id=5, bbox=[1, 1, 6, 4], iscrowd=int(i in crowd_only)) for i in ids]
    path = root / name
    path.write_text(json.dumps(dict(images=[dict(id=i, file_name=f'{i}.png', width=16, height=12) for i in ids],
                                    annotations=anns, categories=[dict(id=5, name='blob')])))
    return path


def test_unbiased_teacher_indices_follow_the_id_sorted_list_of_boxed_images(tmp_path):
    train = write_coco(tmp_path, ids=[90, 3, 40, 7, 12], crowd_only=[7])  # boxed images by id: 3, 12, 40, 90
    split_file = tmp_path / 'COCO_supervision.json'
    split_file.write_text(json.dumps({'0.5': {'0': [3], '1': [0]}, '10.0': {'2': [1, 2]}}))
    assert read_unbiased_teacher_split(split_file, train, 0.5, 0).labeled == (90,)
    split = read_unbiased_teacher_split(split_file, train, 10, 2)
    assert (split.labeled, split.unlabeled, split.source) == ((12, 40), (3, 90), str(split_file))
    with pytest.raises(KeyError, match=r"COCO_supervision.json: no seed 5 \(available: \['2'\]\)"):
        read_unbiased_teacher_split(split_file, train, 10, 5)
    split_file.write_text(json.dumps({'1': {'0': [-1]}}))
    with pytest.raises(IndexError, match=r'indices \[-1\] out of range for 4'):
        read_unbiased_teacher_split(split_file, train, 1, 0)


def test_no_unlabeled_sample_exposes_boxes_or_labels(tmp_path):
    train = write_coco(tmp_path, ids=range(1, 11))
    data = coco_standard_data(tmp_path, train, percent=30, seed=4)
    assert (len(data.labeled), len(data.unlabeled)) == (3, 7)
    for image, target in data.unlabeled:
        assert set(target) == {'image_id'}
    assert data.hidden_ground_truth.image_ids == sorted(data.unlabeled.image_ids)
    assert not set(data.hidden_ground_truth.image_ids) & set(data.labeled.image_ids)
    # a transform cannot add what the dataset never had
    flipped = coco_standard_data(tmp_path, train, 30, 4, unlabeled_transforms=lambda im, t: (im.flip(-1), t))
    assert all(set(t) == {'image_id'} for _, t in flipped.unlabeled)


def test_voc0712_ids_must_not_collide(tmp_path):
    (tmp_path / 'voc07').mkdir(); (tmp_path / 'voc12').mkdir()
    voc07 = write_coco(tmp_path / 'voc07', ids=[1, 2, 3])
    voc12 = write_coco(tmp_path / 'voc12', ids=[3, 4], name='voc12.json', mode='P')
    with pytest.raises(ValueError, match=r'both labeled and unlabeled, e\.g\. \[3\]'):
        voc0712_data(tmp_path / 'voc07', voc07, [(tmp_path / 'voc12', voc12)])


def write_boxes(root, boxes, size=(16, 12), name='train.json'):
    "One image per box (ids 1, 2, …) of `size` and a COCO JSON with that box as given (any bbox value, even broken)."
    for i in range(1, len(boxes) + 1): Image.new('RGB', size).save(root / f'{i}.png')
    path = root / name
    path.write_text(json.dumps(dict(
        images=[dict(id=i, file_name=f'{i}.png', width=size[0], height=size[1]) for i in range(1, len(boxes) + 1)],
        annotations=[dict(id=100 + i, image_id=i, category_id=5, bbox=b, iscrowd=0) for i, b in enumerate(boxes, start=1)],
        categories=[dict(id=5, name='blob')])))
    return path


def test_a_bbox_holding_a_non_number_names_the_file_and_the_annotation(tmp_path):
    train = write_boxes(tmp_path, [[1, 1, 6, 4], [1, 1, 'a', 4], [2, 2, 3, 3]])
    with pytest.raises(ValueError, match=rf"{train}: annotation 102 \(image 2\): bbox \[1, 1, 'a', 4\] is not 4 finite numbers"):
        coco_standard_data(tmp_path, train, percent=100, seed=0)


def test_a_training_file_without_any_box_names_the_file(tmp_path):
    train = tmp_path / 'train.json'
    Image.new('RGB', (16, 12)).save(tmp_path / '1.png')
    train.write_text(json.dumps(dict(images=[dict(id=1, file_name='1.png', width=16, height=12)], annotations=[],
                                     categories=[dict(id=5, name='blob')])))
    with pytest.raises(ValueError, match=rf"{train}: none of its 1 images has a non-crowd box .*nothing to train on"):
        coco_standard_data(tmp_path, train, percent=10, seed=0)
    with pytest.raises(ValueError, match=rf"{train}: none of its 1 images has a non-crowd box"):
        voc0712_data(tmp_path, train, [])


def test_large_images_tolerate_boxes_a_little_outside_and_refuse_boxes_mostly_outside(tmp_path):
    "A 5,000-px image: 2 px past the border is within 1 % of the side; 100 px past, with most of the box inside, is clipped with a warning."
    train = write_boxes(tmp_path, [[4900, 10, 102, 50], [4600, 10, 500, 50]], size=(5000, 300))
    with pytest.warns(UserWarning, match=r"clipped 1 boxes that left their image by more than 1% of its side; first \(annotation id, image id\): \[\(102, 2\)\]"):
        data = coco_standard_data(tmp_path, train, percent=100, seed=0)
    assert data.labeled[0][1]['boxes'].tolist() == [[4900, 10, 5000, 60]]
    assert data.labeled[1][1]['boxes'].tolist() == [[4600, 10, 5000, 60]]
    assert data.labeled.summary()['clipped'] == 2
    outside = write_boxes(tmp_path, [[4900, 10, 300, 50]], size=(5000, 300), name='outside.json')
    with pytest.raises(ValueError, match=rf"{outside}: annotation 101 \(image 1\): box .* leaves the 5000×300 image by 200 px and only 33% of it lies inside"):
        coco_standard_data(tmp_path, outside, percent=100, seed=0)
