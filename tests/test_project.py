"""The project's packaging invariants: one version, one list of requirements, ranges not pins."""
import configparser
import importlib
import tomllib
from pathlib import Path

import crossmatch

ROOT = Path(__file__).resolve().parents[1]


def settings():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"]


def test_one_version():
    assert crossmatch.__version__ == settings()["version"]


def test_requirements_are_ranges_not_pins():
    for req in (settings()["requirements"] + " " + settings()["dev_requirements"]).split():
        assert "==" not in req, f"{req} pins an exact version; use a compatible range"
    names = {r.split(">")[0].split("<")[0] for r in settings()["requirements"].split()}
    assert {"torch", "torchvision", "pycocotools", "matplotlib", "pandas", "ipywidgets", "jupyterlab", "tqdm"} <= names


def test_pyproject_holds_only_build_system_and_nbdev():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert set(pyproject) == {"build-system", "project", "tool"}
    assert set(pyproject["project"]) == {"name", "requires-python", "dynamic"}, "metadata belongs in settings.ini"
    assert set(pyproject["tool"]) == {"nbdev"}


def test_console_scripts_resolve():
    for script in settings()["console_scripts"].split():
        name, target = script.split("=")
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), script
