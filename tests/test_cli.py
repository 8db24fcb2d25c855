"""The command line through `crossmatch.cli.main`, on a 4-iteration run of the quick shapes set and small files the
tests write: override precedence, `--set` given twice, `config` and a run trained from its YAML, `eval`/`predict`/
`pseudo-label` on the run, `convert-yolo`, and errors that exit 2 naming the file."""
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from crossmatch.cli import build_parser, main, train_config
from crossmatch.data.coco import load_coco
from crossmatch.data.shapes import generate_shapes
from crossmatch.training.config import get_preset, load_config

REPO = Path(__file__).resolve().parents[1]
SHORT = ['data.shapes_preset=quick', f'data.root={REPO / "data"}', 'data.num_workers=0', 'train.burn_in=2',
         'train.warmup_iters=1', 'train.log_every=2', 'train.eval_every=4', 'train.checkpoint_every=4',
         'train.batch_labeled=2', 'train.batch_unlabeled=2', 'train.max_eval_images=8']


@pytest.fixture(scope='module')
def shapes():
    return generate_shapes('quick', REPO / 'data')


@pytest.fixture(scope='module')
def run(tmp_path_factory, shapes):
    "A 4-iteration CrossMatch run made through the CLI; `--set` given twice (the iterations only in the second)."
    folder = tmp_path_factory.mktemp('cli') / 'run'
    assert main(['train', '--set', *SHORT, '--set', 'train.iterations=4', '--output', str(folder), '--no-progress']) == 0
    return folder


def test_override_precedence(tmp_path):
    "preset ← --config file ← --method-setting ← --set ← data flags ← --method ← --output, each level winning over the one before."
    file = tmp_path / 'over.yaml'
    file.write_text(yaml.safe_dump({'train': {'lr': 0.03, 'iterations': 7, 'output_dir': 'from-file'},
                                    'data': {'percent': 2.0}}))
    args = build_parser().parse_args(
        ['train', '--config', str(file), '--set', 'train.lr=0.04', 'method.hard=false', 'train.output_dir=from-set',
         'data.percent=5', 'method.ohem_scope=batch', '--percent', '20', '--method', 'unbiased-teacher',
         '--output', 'from-flag', '--method-setting', 'paper-text'])
    config = train_config(args)
    assert config.train.warmup_iters == 50  # the shapes preset's, untouched
    assert config.train.iterations == 7  # file over preset (1000)
    assert config.train.lr == 0.04  # --set over file (0.03) over preset (0.02)
    assert config.data.percent == 20.0  # --percent over --set (5) over file (2)
    assert (config.method.soft, config.method.hard, config.method.multiscale) == (False, True, False)  # --method over --set
    assert config.train.output_dir == 'from-flag'  # --output over --set and file
    assert (config.method.kl_reduction, config.method.ohem_scope) == ('mean', 'batch')  # --set over --method-setting ('image')


def test_set_wins_over_method_setting_in_the_printed_config(capsys):
    "Through the command line: the setting over the preset, --set over the setting, --method over --set."
    assert main(['config', '--preset', 'coco-standard', '--method-setting', 'paper-text', '--set', 'method.ohem_scope=batch',
                 'method.soft=false', '--method', 'crossmatch']) == 0
    method = yaml.safe_load(capsys.readouterr().out)['method']
    assert method['kl_direction'] == 'student||teacher'  # the setting's (the preset: teacher||student)
    assert method['ohem_scope'] == 'batch'  # --set's (the setting: image)
    assert method['soft'] is True  # --method's (--set: false)


def test_config_prints_every_field_and_reads_back(tmp_path, capsys):
    assert main(['config', '--preset', 'shapes']) == 0
    text = capsys.readouterr().out
    saved = yaml.safe_load(text)
    assert {section: list(fields) for section, fields in saved.items()} == \
        {section: list(fields) for section, fields in get_preset('shapes').to_dict().items()}
    (tmp_path / 'shapes.yaml').write_text(text)
    assert load_config(tmp_path / 'shapes.yaml') == get_preset('shapes')
    for preset in ('shapes', 'voc'):  # every field: the preset under the file changes nothing
        args = build_parser().parse_args(['train', '--preset', preset, '--config', str(tmp_path / 'shapes.yaml')])
        assert train_config(args) == get_preset('shapes')


def test_a_run_from_its_printed_config_trains_the_same(run, tmp_path, capsys):
    "The `run` fixture's arguments through `config`, and that YAML through `train --config`: the same losses and AP."
    assert main(['config', '--set', *SHORT, '--set', 'train.iterations=4', '--output', str(tmp_path / 'again')]) == 0
    (tmp_path / 'run.yaml').write_text(capsys.readouterr().out)
    assert main(['train', '--config', str(tmp_path / 'run.yaml'), '--no-progress']) == 0
    before, after = (pd.read_csv(folder / 'metrics.csv').drop(columns='sec_per_iter') for folder in (run, tmp_path / 'again'))
    assert len(before) >= 3 and before.loss.notna().sum() >= 2
    pd.testing.assert_frame_equal(before, after)


def test_set_twice_applies_both(run):
    args = build_parser().parse_args(['train', '--set', 'train.lr=0.05', 'train.burn_in=3', '--set', 'train.lr=0.03'])
    assert args.set == ['train.lr=0.05', 'train.burn_in=3', 'train.lr=0.03']
    config = train_config(args)
    assert (config.train.lr, config.train.burn_in) == (0.03, 3)
    saved = yaml.safe_load((run / 'config.yaml').read_text())  # the run made with two --set flags
    assert saved['data']['shapes_preset'] == 'quick' and saved['train']['iterations'] == 4


def test_own_data_flags_map_to_data_fields():
    config = train_config(build_parser().parse_args(
        ['train', '--preset', 'own-cpu', '--train-json', 't.json', '--train-images', 'ti', '--val-json', 'v.json',
         '--val-images', 'vi', '--percent', '50']))
    d = config.data
    assert (d.train_json, d.train_images, d.val_json, d.val_images, d.percent) == ('t.json', 'ti', 'v.json', 'vi', 50.)
    assert config.model.arch == 'tiny'
    assert train_config(build_parser().parse_args(['train', '--preset', 'own-gpu'])).model.arch == 'paper'


def test_eval_matches_the_trainers_last_evaluation(run, capsys):
    "The CLI's evaluation of the newest teacher equals the one the trainer logged at the same iteration."
    assert main(['eval', str(run)]) == 0
    out = capsys.readouterr().out
    assert 'iter_0000004.pt (teacher, iteration 4)' in out
    printed = json.loads(out[out.index('{'):])
    logged = pd.read_csv(run / 'metrics.csv').query("kind == 'eval' and model == 'teacher' and iteration == 4").iloc[-1]
    assert printed['AP'] == pytest.approx(logged['AP'], abs=1e-3) and printed['AP50'] == pytest.approx(logged['AP50'], abs=1e-3)


def test_predict(run, shapes, tmp_path, capsys):
    files = [str(shapes.val_images / f'{i:06d}.png') for i in (1, 2, 3)]
    assert main(['predict', str(run), *files, '--out', str(tmp_path / 'all.json'), '--score-threshold', '0',
                 '--json', str(shapes.val_json), '--draw', str(tmp_path / 'drawn')]) == 0
    assert 'detections scoring >= 0' in capsys.readouterr().out
    records = json.loads((tmp_path / 'all.json').read_text())
    val = load_coco(shapes.val_json)
    assert records and {r['image_id'] for r in records} <= {1, 2, 3}
    assert all(val.imgs[r['image_id']]['file_name'] == r['file_name'] for r in records)  # ids matched by file name
    assert {r['category_id'] for r in records} <= set(val.cats)
    val.loadRes(copy.deepcopy(records))  # a valid COCO results file (loadRes adds fields to the records it gets)
    assert sorted(p.name for p in (tmp_path / 'drawn').iterdir()) == ['000001.png', '000002.png', '000003.png']
    # the threshold is honoured: exactly the records scoring at least the median stay (scores are float32, exact in JSON)
    threshold = sorted(r['score'] for r in records)[len(records) // 2]
    assert main(['predict', str(run), *files, '--out', str(tmp_path / 'some.json'),
                 '--score-threshold', str(threshold), '--json', str(shapes.val_json)]) == 0
    some = json.loads((tmp_path / 'some.json').read_text())
    assert some == [r for r in records if r['score'] >= threshold]
    # without a COCO file: file names, no image ids; the student gives other detections
    assert main(['predict', str(run), files[0], '--out', str(tmp_path / 'student.json'), '--model', 'student',
                 '--score-threshold', '0']) == 0
    student = json.loads((tmp_path / 'student.json').read_text())
    assert student and all(set(r) == {'file_name', 'category_id', 'bbox', 'score'} for r in student)
    assert student != [dict((k, v) for k, v in r.items() if k != 'image_id') for r in records if r['image_id'] == 1]


def test_pseudo_label(run, shapes, tmp_path, capsys):
    files = [str(shapes.val_images / f'{i:06d}.png') for i in (2, 5)]
    assert main(['predict', str(run), *files, '--out', str(tmp_path / 'det.json'), '--score-threshold', '0']) == 0
    delta = sorted(r['score'] for r in json.loads((tmp_path / 'det.json').read_text()))[-3]  # three detections reach it
    assert main(['pseudo-label', str(run), '--images', *files, '--json', str(shapes.val_json), '--delta', str(delta),
                 '--out', str(tmp_path / 'pseudo.json')]) == 0
    assert 'pseudo-boxes' in capsys.readouterr().out
    coco = load_coco(tmp_path / 'pseudo.json')  # the kit's own COCO checks pass
    assert sorted(coco.imgs) == [2, 5] and all(coco.imgs[i]['file_name'] == f'{i:06d}.png' for i in (2, 5))
    assert all((im['width'], im['height']) == (128, 128) for im in coco.dataset['images'])
    assert [(c['id'], c['name']) for c in coco.dataset['categories']] == \
        [(c['id'], c['name']) for c in load_coco(shapes.train_json).dataset['categories']]
    scores = [a['score'] for a in coco.dataset['annotations']]
    assert 1 <= len(scores) <= 3 and min(scores) >= delta  # class-wise NMS may merge some of the three
    assert main(['pseudo-label', str(run), '--images', *files, '--delta', '1', '--out', str(tmp_path / 'none.json')]) == 0  # δ = 1: nothing of a 4-iteration teacher
    none = json.loads((tmp_path / 'none.json').read_text())
    assert none['annotations'] == [] and [im['id'] for im in none['images']] == [1, 2]


def write_yolo(root: Path, label_lines: dict[str, str]):
    (root / 'images').mkdir(parents=True); (root / 'labels').mkdir()
    for name, lines in label_lines.items():
        Image.new('RGB', (200, 100), 'white').save(root / 'images' / f'{name}.png')
        (root / 'labels' / f'{name}.txt').write_text(lines)
    (root / 'data.yaml').write_text(yaml.safe_dump({'names': ['cat', 'dog']}))


def test_convert_yolo(tmp_path, capsys):
    write_yolo(tmp_path / 'yolo', {'a': '0 0.5 0.5 0.2 0.4\n1 0.25 0.75 0.1 0.2\n', 'b': '1 0.5 0.5 0 0.1\n'})
    with pytest.warns(UserWarning, match='dropped 1 boxes of zero size: b.txt line 1'):
        assert main(['convert-yolo', str(tmp_path / 'yolo'), '--out', str(tmp_path / 'coco.json')]) == 0
    out = capsys.readouterr().out
    assert '2 images, 2 boxes, 2 classes' in out and '1 zero-size boxes dropped' in out
    coco = load_coco(tmp_path / 'coco.json')
    assert [c['name'] for c in coco.dataset['categories']] == ['cat', 'dog']
    assert {im['file_name']: (im['width'], im['height']) for im in coco.dataset['images']} == {'a.png': (200, 100), 'b.png': (200, 100)}
    # cx 0.5, cy 0.5, w 0.2, h 0.4 of 200×100 → x 80, y 30, w 40, h 40; the zero-width box of b is dropped
    boxes = sorted(a['bbox'] for a in coco.dataset['annotations'])
    assert boxes == [pytest.approx([40, 65, 20, 20]), pytest.approx([80, 30, 40, 40])]


def test_errors_exit_2_naming_the_file(run, shapes, tmp_path, capsys):
    def error(argv):
        assert main(argv) == 2
        return capsys.readouterr().err
    assert str(tmp_path / 'missing.yaml') in error(['train', '--config', str(tmp_path / 'missing.yaml')])
    assert 'holiday.jpg' in error(['predict', str(run), str(tmp_path / 'holiday.jpg'), '--out', str(tmp_path / 'x.json')])
    other = tmp_path / 'other.json'
    other.write_text(json.dumps({'images': [{'id': 1, 'file_name': 'z.png', 'width': 1, 'height': 1}],
                                 'annotations': [], 'categories': [{'id': 1, 'name': 'x'}]}))
    message = error(['pseudo-label', str(run), '--images', str(shapes.val_images / '000001.png'), '--json', str(other),
                     '--out', str(tmp_path / 'p.json')])
    assert str(other) in message and '000001.png' in message
    write_yolo(tmp_path / 'bad', {'a': '0 0.5 a 0.2 0.4\n'})
    assert str(Path('labels') / 'a.txt') in error(['convert-yolo', str(tmp_path / 'bad'), '--out', str(tmp_path / 'c.json')])
    assert not (tmp_path / 'x.json').exists() and not (tmp_path / 'p.json').exists() and not (tmp_path / 'c.json').exists()
    # the process itself exits 2 (argparse's status for usage errors), one line on stderr
    empty = tmp_path / 'empty-run'; empty.mkdir()
    result = subprocess.run([sys.executable, '-m', 'crossmatch.cli', 'eval', str(empty)], capture_output=True, text=True,
                            env={**os.environ, 'MPLBACKEND': 'Agg'})
    assert result.returncode == 2 and str(empty) in result.stderr and 'Traceback' not in result.stderr
