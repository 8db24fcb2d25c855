"""YOLO exports through `convert.yolo_to_coco` into a validated dataset, on small files each test writes."""
import json

import pytest
from PIL import Image

from crossmatch.data.convert import yolo_to_coco
from crossmatch.data.coco import CocoDetection


def ultralytics_export(root, labels: dict, size=(1024, 768), names='names:\n  0: car\n  1: person\n'):
    "root/images/val/<stem>.jpg of `size`, root/labels/val/<stem>.txt (None: no label file), root/data.yaml."
    (root / 'images' / 'val').mkdir(parents=True); (root / 'labels' / 'val').mkdir(parents=True)
    for stem, text in labels.items():
        Image.new('RGB', size, 'white').save(root / 'images' / 'val' / f'{stem}.jpg')
        if text is not None: (root / 'labels' / 'val' / f'{stem}.txt').write_text(text)
    (root / 'data.yaml').write_text(f'path: {root}\ntrain: images/train\nval: images/val\n{names}')
    return root / 'images' / 'val'


def test_a_yolo_export_becomes_a_dataset_with_pixel_boxes(tmp_path):
    images = ultralytics_export(tmp_path, {'p1': '1 0.5 0.5 0.25 0.5\n0 0.125 0.25 0.25 0.5\n', 'p2': '', 'p3': None})
    out = tmp_path / 'val.json'
    coco = yolo_to_coco(images, out_json=out, first_image_id=1000)
    assert coco['info']['images_without_labels'] == 1 and coco['info']['boxes'] == 2
    assert [c['name'] for c in coco['categories']] == ['car', 'person']
    assert json.loads(out.read_text()) == coco
    ds = CocoDetection(images, out)
    image, target = ds[0]
    assert tuple(image.shape) == (3, 768, 1024) and target['image_id'] == 1000
    # 1024 × (0.5 ∓ 0.125) and 768 × (0.5 ∓ 0.25); 1024 × (0.125 ∓ 0.125) and 768 × (0.25 ∓ 0.25)
    assert target['boxes'].tolist() == [[384, 192, 640, 576], [0, 0, 256, 384]]
    assert [ds.category_map.names[l] for l in target['labels']] == ['person', 'car']
    assert ds.summary()['images_without_boxes'] == 2  # p2 (empty label file) and p3 (none)


def test_zero_size_boxes_are_dropped_and_reported_with_file_and_line(tmp_path):
    images = ultralytics_export(tmp_path, {'p1': '0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.0 0.3\n1 0.3 0.3 0.1 0\n'})
    with pytest.warns(UserWarning, match=r'dropped 2 boxes of zero size: p1.txt line 2, p1.txt line 3'):
        coco = yolo_to_coco(images)
    assert [d['line'] for d in coco['info']['dropped_boxes']] == [2, 3]
    assert len(coco['annotations']) == 1


@pytest.mark.parametrize('text, message', [
    ('0 0.5 0.5 0.2\n', r'p1.txt: line 1: expected 5 values \(class cx cy w h\), got 4'),
    ('0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n', r'p1.txt: line 2: class 7 is not in 0..1'),
    ('0 0.5 0.5 0.2 x\n', r'p1.txt: line 1: not an integer class and 4 numbers'),
    ('0 512 384 100 100\n', r'p1.txt: line 1: box .* leaves the 1024×768 image'),  # pixels where YOLO wants fractions
])
def test_broken_label_lines_name_file_and_line(tmp_path, text, message):
    images = ultralytics_export(tmp_path, {'p1': text})
    with pytest.raises(ValueError, match=message):
        yolo_to_coco(images)


def test_names_from_a_names_file_or_a_list(tmp_path):
    images = ultralytics_export(tmp_path, {'p1': '1 0.5 0.5 0.2 0.2\n'}, names='')
    (tmp_path / 'data.yaml').unlink()
    with pytest.raises(FileNotFoundError, match='pass names='):
        yolo_to_coco(images)
    (tmp_path / 'classes.txt').write_text('car\nperson\n')
    assert yolo_to_coco(images)['categories'] == [dict(id=1, name='car'), dict(id=2, name='person')]
    assert yolo_to_coco(images, names=['a', 'b'])['info']['names_from'] == 'names argument'
