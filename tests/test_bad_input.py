"""Every kind of mistake a user can make, tried through the command line on small files the tests write: each ends
in one line `crossmatch <command>: error: <what and where>` and exit status 2, with no traceback; Ctrl-C exits 130
with the resume command; a bug keeps its traceback and says it is one.

Most cases call `crossmatch.cli.main`, the function the `crossmatch` script runs, and read what it printed; the
ones that need a process of their own (Ctrl-C, the console path itself) run `python -m crossmatch.cli`, so the whole
file stays within a couple of minutes on two cores."""
import errno
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from crossmatch.training import checkpoint
from crossmatch.training.checkpoint import checkpoint_path, load_checkpoint
from crossmatch.cli import main
from crossmatch.data.coco import CocoDetection

REPO = Path(__file__).resolve().parents[1]
TINY = ['model.min_size=64', 'model.max_size=64', 'data.num_workers=0', 'train.burn_in=0', 'train.warmup_iters=1',
        'train.log_every=1', 'train.eval_every=2', 'train.checkpoint_every=1', 'train.batch_labeled=2']


def write_set(root: Path, names=('cell', 'cell'), train=6, val=3) -> dict:
    "Small JPEGs with one rectangle each and COCO files for them (two categories, by default both named 'cell')."
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, count, first in (('train', train, 1), ('val', val, 100)):
        images, annotations = [], []
        for image_id in range(first, first + count):
            image = Image.new('RGB', (64, 64), (40, 40, 40))
            ImageDraw.Draw(image).rectangle([10, 12, 40, 44], fill=(220, 200, 30))
            image.save(root / f'{image_id}.jpg', quality=90)
            images.append(dict(id=image_id, file_name=f'{image_id}.jpg', width=64, height=64))
            annotations.append(dict(id=image_id, image_id=image_id, category_id=1 + image_id % 2, bbox=[10, 12, 31, 33],
                                    area=31 * 33, iscrowd=0))
        files[split] = root / f'{split}.json'
        files[split].write_text(json.dumps(dict(images=images, annotations=annotations,
                                                categories=[dict(id=i, name=n) for i, n in enumerate(names, start=1)])))
    return dict(root=root, **files)


def own_args(data: dict, output: Path, *extra: str) -> list[str]:
    "A `crossmatch train` command for the set `write_set` wrote: supervised, two iterations at 64 px."
    return ['train', '--preset', 'own-cpu', '--method', 'supervised', '--train-json', str(data['train']),
            '--train-images', str(data['root']), '--val-json', str(data['val']), '--val-images', str(data['root']),
            '--output', str(output), '--no-progress', '--set', *TINY, 'train.iterations=2', *extra]


def run_main(capsys, args) -> tuple[int, str]:
    "(exit status, stderr) of `crossmatch <args>`, run through `cli.main`; argparse's own exits give their status."
    try: status = main([str(a) for a in args])
    except SystemExit as e: status = e.code
    return status, capsys.readouterr().err


def refused(status: int, stderr: str, command: str, *words: str) -> str:
    "Check exit status 2, no traceback and exactly one error line naming `words`; the line."
    assert 'Traceback' not in stderr, stderr
    lines = [line for line in stderr.splitlines() if f'crossmatch {command}: error: ' in line]
    assert status == 2 and len(lines) == 1, stderr
    for word in words: assert word in lines[0], (word, lines[0])
    return lines[0]


def run_cli(*args, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    "`python -m crossmatch.cli <args>` with this tree on the path."
    env = {**os.environ, 'PYTHONPATH': str(REPO), 'MPLBACKEND': 'Agg'}
    return subprocess.run([sys.executable, '-m', 'crossmatch.cli', *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, **kwargs)


@pytest.fixture(scope='module')
def own_run(tmp_path_factory):
    "A two-iteration run on a written set whose two categories share the name 'cell'; its data and folder."
    data = write_set(tmp_path_factory.mktemp('own') / 'data')
    output = data['root'].parent / 'run'
    old = os.umask(0o022)
    try: assert main(own_args(data, output)) == 0
    finally: os.umask(old)
    return data, output


# ---------------------------------------------------------------- images and annotation files, checked before training
def test_truncated_training_image(tmp_path, capsys):
    data = write_set(tmp_path)
    whole = (tmp_path / '3.jpg').read_bytes()
    (tmp_path / '3.jpg').write_bytes(whole[:len(whole) // 2])  # a copy cut short: the header still reads
    refused(*run_main(capsys, own_args(data, tmp_path / 'run')), 'train',
            f"{data['train']}: 1 of 6 image files are missing or unreadable", f"image 3: {tmp_path / '3.jpg'} cannot be decoded",
            'image file is truncated')
    assert not (tmp_path / 'run' / 'checkpoints').exists()  # refused before training


def test_truncated_validation_image(tmp_path, capsys):
    data = write_set(tmp_path)
    whole = (tmp_path / '101.jpg').read_bytes()
    (tmp_path / '101.jpg').write_bytes(whole[:len(whole) // 2])
    refused(*run_main(capsys, own_args(data, tmp_path / 'run')), 'train',
            f"{data['val']}: 1 of 3 image files are missing or unreadable", 'image 101', 'cannot be decoded')
    assert not (tmp_path / 'run' / 'metrics.csv').exists()


def test_validation_annotations_without_area_or_iscrowd(tmp_path, capsys):
    data = write_set(tmp_path)
    val = json.loads(data['val'].read_text())
    for ann in val['annotations']: del ann['area']
    del val['annotations'][1]['iscrowd']
    data['val'].write_text(json.dumps(val))
    refused(*run_main(capsys, own_args(data, tmp_path / 'run')), 'train',
            f"{data['val']}: 3 annotations lack what COCO evaluation reads", "annotation 100 (image 100) lacks ['area']",
            "annotation 101 (image 101) lacks ['area', 'iscrowd']")
    assert not (tmp_path / 'run' / 'metrics.csv').exists()


def test_string_image_ids(tmp_path, capsys):
    data = write_set(tmp_path)
    train = json.loads(data['train'].read_text())
    for record in train['images']: record['id'] = f"{record['id']:04d}"
    data['train'].write_text(json.dumps(train))
    refused(*run_main(capsys, own_args(data, tmp_path / 'run')), 'train',
            f"{data['train']}: images[0] field 'id' is '0001': expected an integer")


def test_coco_file_not_utf8(tmp_path, capsys):
    data = write_set(tmp_path, names=('caf\u00e9', 'cell'))
    data['train'].write_bytes(data['train'].read_text().replace('caf\\u00e9', 'caf\u00e9').encode('latin-1'))
    refused(*run_main(capsys, own_args(data, tmp_path / 'run')), 'train', f"{data['train']}: not UTF-8 text: byte 0xe9")


def test_exif_orientation_follows_the_displayed_frame(tmp_path):
    "A JPEG stored 40×20 and tagged 'turn 90°' is 20×40 as displayed, where its box is: read that way everywhere."
    stored = Image.new('RGB', (40, 20), (0, 0, 0))
    ImageDraw.Draw(stored).rectangle([0, 0, 9, 19], fill=(255, 255, 255))  # the stored left band: the displayed top
    exif = Image.Exif(); exif[0x0112] = 6
    stored.save(tmp_path / 'phone.jpg', exif=exif, quality=95)
    coco = dict(images=[dict(id=1, file_name='phone.jpg', width=20, height=40)], categories=[dict(id=1, name='band')],
                annotations=[dict(id=1, image_id=1, category_id=1, bbox=[0, 0, 20, 10], area=200, iscrowd=0)])
    image, target = CocoDetection(tmp_path, coco)[0]
    assert tuple(image.shape) == (3, 40, 20) and target['boxes'].tolist() == [[0., 0., 20., 10.]]
    assert image[:, :10].float().mean() > 200 and image[:, 12:].float().mean() < 50  # the box holds the white band


def test_yolo_label_and_voc_number(tmp_path, capsys):
    yolo = tmp_path / 'yolo'; yolo.mkdir()
    Image.new('RGB', (32, 32)).save(yolo / 'a.jpg')
    (yolo / 'classes.txt').write_text('cell\n')
    (yolo / 'a.txt').write_bytes('0 0.5 0.5 0.2 0.2 # caf\u00e9\n'.encode('latin-1'))
    refused(*run_main(capsys, ['convert-yolo', yolo, '--out', tmp_path / 'y.json']), 'convert-yolo',
            f"{yolo / 'a.txt'}: not UTF-8 text: byte 0xe9 at position 23")
    voc = tmp_path / 'voc'
    for sub in ('Annotations', 'JPEGImages', 'ImageSets/Main'): (voc / sub).mkdir(parents=True)
    Image.new('RGB', (32, 32)).save(voc / 'JPEGImages' / 'a.jpg')
    (voc / 'Annotations' / 'a.xml').write_text(
        '<annotation><filename>a.jpg</filename><size><width>32</width><height>32</height></size><object><name>cell</name>'
        '<bndbox><xmin>1O</xmin><ymin>2</ymin><xmax>20</xmax><ymax>20</ymax></bndbox></object></annotation>')
    (voc / 'ImageSets/Main/trainval.txt').write_text('a\n')
    refused(*run_main(capsys, ['convert-voc', voc, '--out', tmp_path / 'v.json']), 'convert-voc',
            f"{voc / 'Annotations' / 'a.xml'}: <bndbox/xmin> is '1O', not a number")


# ---------------------------------------------------------------------------------------------------- settings
def test_set_value_yaml_cannot_parse(tmp_path, capsys):
    refused(*run_main(capsys, ['train', '--set', 'train.lr_steps=[1,', '--output', tmp_path / 'run']), 'train',
            "config field 'train.lr_steps': '[1,' is not a YAML value")


def test_config_file_not_utf8(tmp_path, capsys):
    (tmp_path / 'mine.yaml').write_bytes('train:\n  output_dir: runs/caf\u00e9\n'.encode('latin-1'))
    refused(*run_main(capsys, ['train', '--config', tmp_path / 'mine.yaml']), 'train',
            f"config file {tmp_path / 'mine.yaml'}: not UTF-8 text: byte 0xe9")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has CUDA")
def test_cuda_missing(tmp_path, capsys):
    refused(*run_main(capsys, ['train', '--set', 'train.device=cuda', '--output', tmp_path / 'run']), 'train',
            "config train.device='cuda' but CUDA is not available on this machine")


def test_values_out_of_range(tmp_path, capsys):
    status, stderr = run_main(capsys, ['pseudo-label', tmp_path, '--images', tmp_path, '--delta', '1.5', '--out', tmp_path / 'p.json'])
    assert status == 2 and 'argument --delta: 1.5 is not in [0, 1]' in stderr and 'Traceback' not in stderr
    status, stderr = run_main(capsys, ['predict', tmp_path, tmp_path, '--score-threshold', '-0.1', '--out', tmp_path / 'p.json'])
    assert status == 2 and 'argument --score-threshold: -0.1 is not in [0, 1]' in stderr
    assert not (tmp_path / 'p.json').exists()


# ---------------------------------------------------------------------------------------------------- paths
def test_paths_that_cannot_be_written(tmp_path, capsys, own_run):
    data, run = own_run
    (tmp_path / 'notes.txt').write_text('a file, not a folder')
    refused(*run_main(capsys, own_args(data, tmp_path / 'notes.txt' / 'run')), 'train',
            f"{tmp_path / 'notes.txt' / 'run'}: Not a directory")
    refused(*run_main(capsys, ['data', '--preset', 'quick', '--root', tmp_path / 'notes.txt' / 'data']), 'data',
            'notes.txt', 'Not a directory')
    refused(*run_main(capsys, ['predict', run, data['root'], '--out', tmp_path / 'notes.txt' / 'p.json']), 'predict',
            f"cannot write {tmp_path / 'notes.txt' / 'p.json'}: {tmp_path / 'notes.txt'} is a file, not a folder")
    refused(*run_main(capsys, ['predict', run, data['root'], '--out', tmp_path]), 'predict',
            f"cannot write {tmp_path}: it is a folder (give a file name)")


def test_read_only_file_system(tmp_path, capsys, own_run, monkeypatch):
    "What a read-only mount answers (EROFS, simulated: the tests may run as root), for a run folder and a predictions file."
    data, run = own_run
    mount = tmp_path / 'mnt'; mount.mkdir()
    def refuse(real):
        def call(self, *args, **kwargs):
            if mount in (self, *self.parents): raise OSError(errno.EROFS, 'Read-only file system', str(self))
            return real(self, *args, **kwargs)
        return call
    monkeypatch.setattr(Path, 'mkdir', refuse(Path.mkdir))
    refused(*run_main(capsys, own_args(data, mount / 'run')), 'train', f"{mount / 'run'}: Read-only file system")
    refused(*run_main(capsys, ['predict', run, data['root'], '--out', mount / 'p.json']), 'predict',
            f"cannot write {mount / 'p.json'}: Read-only file system")


def test_files_get_the_umask_mode(own_run):
    _, run = own_run  # written under umask 022
    for path in (run / 'config.yaml', run / 'metrics.csv', checkpoint_path(run, 2)):
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_predict_on_a_file_that_is_no_image(tmp_path, capsys, own_run):
    data, run = own_run
    (tmp_path / 'holiday.jpg').write_text('not an image')
    refused(*run_main(capsys, ['predict', run, tmp_path / 'holiday.jpg', '--out', tmp_path / 'p.json']), 'predict',
            f"image {tmp_path / 'holiday.jpg'} cannot be decoded: cannot identify image file")


# ---------------------------------------------------------------------------------------------------- checkpoints
def test_eval_with_another_architecture(capsys, own_run):
    _, run = own_run
    refused(*run_main(capsys, ['eval', run, '--set', 'model.arch=paper']), 'eval',
            f"checkpoint {checkpoint_path(run, 2)} does not fit the student of model.arch='paper'")


def test_resume_after_a_class_was_added(tmp_path, capsys, own_run):
    data, run = own_run
    changed = write_set(tmp_path / 'data', names=('cell', 'cell', 'platelet'))
    copied = shutil.copytree(run, tmp_path / 'run')
    refused(*run_main(capsys, own_args(changed, copied, 'train.iterations=3') + ['--resume']), 'train',
            f"checkpoint {checkpoint_path(copied, 2)} does not fit this run's detector",
            'size mismatch for roi_heads.box_predictor.cls_score.weight', 'other classes')


def test_stale_temporaries_removed_on_resume(capsys, own_run):
    data, run = own_run
    stale = run / 'checkpoints' / '.iter_0000003.pt.k2j8x0ab.tmp'
    stale.write_bytes(b'half a checkpoint')
    assert main(own_args(data, run) + ['--resume']) == 0  # the run is complete: nothing to train
    assert not stale.exists()


def test_full_disk_while_saving(tmp_path, capsys, monkeypatch):
    data = write_set(tmp_path / 'data')
    saves, real_save = [], torch.save
    def disk_full_on_second(state, f):
        saves.append(1)
        if len(saves) < 2: return real_save(state, f)
        f.write(b'part of a checkpoint'); raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(checkpoint.torch, 'save', disk_full_on_second)
    run = tmp_path / 'run'
    refused(*run_main(capsys, own_args(data, run)), 'train',
            f"no space left on the device of {run / 'checkpoints'} while writing iter_0000002.pt: a checkpoint needs about",
            'MiB are free; the earlier checkpoints are intact')
    assert load_checkpoint(checkpoint_path(run, 1))['iteration'] == 1
    assert sorted(p.name for p in (run / 'checkpoints').iterdir()) == ['iter_0000001.pt']


# ---------------------------------------------------------------------------------------------------- results
def test_two_classes_with_one_name_stay_apart(capsys, own_run):
    _, run = own_run
    assert main(['eval', str(run)]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads(printed[printed.index('{'):])
    assert {'AP-cell (id 1)', 'AP-cell (id 2)'} <= set(metrics) and 'AP-cell' not in metrics
    assert 'AP-cell (id 2)' in (run / 'metrics.csv').read_text().splitlines()[0]


# ---------------------------------------------------------------------------------------------------- the process
def test_console_path_prints_one_line(tmp_path, own_run):
    "`python -m crossmatch.cli` itself: a user's error is one line and status 2, no traceback."
    _, run = own_run
    (tmp_path / 'notes.jpg').write_text('a text file with an image suffix')
    result = run_cli('predict', run, tmp_path / 'notes.jpg', '--out', tmp_path / 'p.json')
    refused(result.returncode, result.stderr, 'predict', f"image {tmp_path / 'notes.jpg'} cannot be decoded")


def test_a_bug_keeps_its_traceback(capsys, monkeypatch):
    from crossmatch import cli
    monkeypatch.setattr(cli, 'cmd_data', lambda args: [][1])  # an IndexError, which no check raises
    status, stderr = run_main(capsys, ['data'])
    assert status == 1 and 'Traceback' in stderr and 'IndexError' in stderr
    assert stderr.strip().splitlines()[-1] == ("crossmatch data: internal error: the traceback above is a bug in "
                                               "crossmatch, not a problem with the input; please report it")


def test_ctrl_c_while_a_checkpoint_is_written(tmp_path, capsys, monkeypatch):
    """Ctrl-C that lands inside `torch.save`: its zip writer, cut off, raises a RuntimeError of its own on the way out.
    The command still reports an interrupt (exit 130, the resume command, no traceback) and the checkpoint being
    written is neither kept half-written nor left as a temporary file; the earlier one loads."""
    saves, real_save = [], torch.save
    def interrupted_at_the_second(state, f, *args, **kwargs):
        saves.append(f)
        if len(saves) < 2: return real_save(state, f, *args, **kwargs)
        try: raise KeyboardInterrupt
        finally: raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4479680 vs 4479616")
    monkeypatch.setattr(torch, 'save', interrupted_at_the_second)
    data = write_set(tmp_path / 'data')
    args = own_args(data, tmp_path / 'run', 'train.iterations=3', 'train.eval_every=100')
    status, stderr = run_main(capsys, args)
    assert status == 130 and 'Traceback' not in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith('crossmatch train: interrupted at iteration 2 of 3; its newest '
                                                      f"checkpoint is {checkpoint_path(tmp_path / 'run', 1)}")
    folder = checkpoint_path(tmp_path / 'run', 1).parent
    assert sorted(p.name for p in folder.iterdir()) == ['iter_0000001.pt']
    assert load_checkpoint(checkpoint_path(tmp_path / 'run', 1))['iteration'] == 1


def test_ctrl_c_stops_cleanly_with_the_resume_command(tmp_path):
    data = write_set(tmp_path / 'data')
    args = own_args(data, tmp_path / 'run', 'train.iterations=100000', 'train.eval_every=100000')
    env = {**os.environ, 'PYTHONPATH': str(REPO), 'MPLBACKEND': 'Agg'}
    process = subprocess.Popen([sys.executable, '-m', 'crossmatch.cli', *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while not checkpoint_path(tmp_path / 'run', 2).exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and 'Traceback' not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith('crossmatch train: interrupted at iteration ') and ' of 100000; its newest checkpoint is ' in last
    assert last.endswith(f"; continue with: {shlex.join(['crossmatch', *args, '--resume'])}")
