"Slower checks of the shapes generator: whole-preset determinism, atomic writes when generation fails."
from dataclasses import asdict, replace
import pytest
from crossmatch.data import shapes
from crossmatch.data.shapes import SHAPES_DATASETS, ShapesPaths, generate_shapes


def test_default_preset_differs_from_quick_only_in_size():
    "The notebook checks the distributions on the quick preset's parameters: they must be the default's too."
    quick, default = asdict(SHAPES_DATASETS['quick']), asdict(SHAPES_DATASETS['default'])
    for key in ('name', 'n_train', 'n_val'): quick.pop(key), default.pop(key)
    assert quick == default
    assert SHAPES_DATASETS['default'].n_train >= 1000


def test_quick_preset_files_identical_across_worker_counts(tmp_path):
    one = generate_shapes('quick', root=tmp_path / 'one', seed=3, workers=1)
    two = generate_shapes('quick', root=tmp_path / 'two', seed=3, workers=2)
    for a, b in ((one.train_json, two.train_json), (one.val_json, two.val_json)):
        assert a.read_bytes() == b.read_bytes()
    pngs = sorted(one.train_images.glob('*.png')) + sorted(one.val_images.glob('*.png'))
    assert len(pngs) == SHAPES_DATASETS['quick'].n_train + SHAPES_DATASETS['quick'].n_val
    for png in pngs:
        assert png.read_bytes() == (two.root / png.parent.name / png.name).read_bytes(), png


class Interrupt(Exception): pass


def failing_after(calls, render):
    "A stand-in for the worker that renders `calls` images, then fails as a killed run would."
    count = {'n': 0}
    def render_or_fail(job):
        count['n'] += 1
        if count['n'] > calls: raise Interrupt
        return render(job)
    return render_or_fail


def test_interrupted_generation_leaves_no_dataset(tmp_path, monkeypatch):
    preset = replace(SHAPES_DATASETS['quick'], n_train=8, n_val=4)
    monkeypatch.setattr(shapes, '_render_to_png', failing_after(10, shapes._render_to_png))
    with pytest.raises(Interrupt): generate_shapes(preset, root=tmp_path, workers=1)
    assert list(tmp_path.iterdir()) == []  # neither a half dataset nor a temporary folder
    monkeypatch.undo()
    paths = generate_shapes(preset, root=tmp_path, workers=1)
    assert paths == ShapesPaths.at(tmp_path / 'shapes-quick-seed0') and paths.val_json.exists()


def test_failed_regeneration_keeps_the_cached_dataset(tmp_path, monkeypatch):
    preset = replace(SHAPES_DATASETS['quick'], n_train=4, n_val=2)
    paths = generate_shapes(preset, root=tmp_path, workers=1)
    before = paths.train_json.read_bytes()
    monkeypatch.setattr(shapes, '_render_to_png', failing_after(1, shapes._render_to_png))
    with pytest.raises(Interrupt): generate_shapes(preset, root=tmp_path, workers=1, force=True)
    assert paths.train_json.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ['shapes-quick-seed0']
    monkeypatch.undo()
    assert generate_shapes(preset, root=tmp_path) == paths  # still a cache hit
