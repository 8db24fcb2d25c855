"""Every run preset of 0.2.0 says what it said before the presets became literals (`tests/presets_0.2.0.yaml`, written
from that version's `PRESETS`): each data, method and train field with its value and type, the model section read as
a 0.2.0 config file is read, and the detector `detector_config` builds from it. A preset added since is listed in
`ADDED` with the preset it varies and the fields it changes, and differs from that one in nothing else."""
import dataclasses
from pathlib import Path

import pytest
import yaml

from crossmatch.model.detector import detector_config
from crossmatch.training.config import PRESETS, Config, apply_overrides

OLD = yaml.safe_load((Path(__file__).parent / 'presets_0.2.0.yaml').read_text())


def typed(section: dict) -> dict:
    "Each field's value with its type, so that 10 and 10.0 differ."
    return {name: (value, type(value)) for name, value in section.items()}


ADDED = {  # name: (the 0.2.0 preset it varies, {section: {field: value}}), as CHANGELOG.md lists them
    'shapes-long': ('shapes', {'train': {'iterations': 3000, 'lr_steps': [2700], 'output_dir': 'runs/shapes-long'}}),
}


def test_the_same_presets():
    assert [name for name in PRESETS if name in OLD] == list(OLD)
    assert [name for name in PRESETS if name not in OLD] == list(ADDED)


@pytest.mark.parametrize('name', list(ADDED))
def test_an_added_preset_differs_only_where_it_says(name):
    origin, changes = ADDED[name]
    assert PRESETS[name] == apply_overrides(PRESETS[origin], changes)
    assert all(getattr(getattr(PRESETS[origin], section), field) != value
               for section, fields in changes.items() for field, value in fields.items())


@pytest.mark.parametrize('name', list(OLD))
def test_each_section_as_before(name):
    new = PRESETS[name].to_dict()
    for section in ('data', 'method', 'train'): assert typed(new[section]) == typed(OLD[name][section]), section


@pytest.mark.parametrize('name', list(OLD))
def test_the_same_detector(name):
    "0.2.0's model section (0 for the architecture's value) reads as the new one (None), and both build one detector."
    assert apply_overrides(Config(), {'model': OLD[name]['model']}).model == PRESETS[name].model
    built = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(detector_config(PRESETS[name].model)).items()}
    assert typed(built) == typed(OLD[name]['detector'])
