"""Every run preset says what it said in 0.2.0 before the presets became literals (`tests/presets_0.2.0.yaml`, written
from that version's `PRESETS`): each data, method and train field with its value and type, the model section read as
a 0.2.0 config file is read, and the detector `detector_config` builds from it."""
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


def test_the_same_presets():
    assert list(PRESETS) == list(OLD)


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
