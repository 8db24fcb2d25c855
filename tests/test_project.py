"""The project's invariants: one version, one list of requirements, ranges not pins; small modules; notebooks that
open with a title and a description and name their kernel."""
import configparser
import json
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
    lists = [settings()[key] for key in settings() if key.endswith("requirements")]  # the library's, dev's, extras'
    for req in " ".join(lists).split():
        assert "==" not in req, f"{req} pins an exact version; use a compatible range"
    names = {r.split(">")[0].split("<")[0] for r in settings()["requirements"].split()}
    assert {"torch", "torchvision", "pycocotools", "matplotlib", "pandas", "ipywidgets", "jupyterlab", "tqdm"} <= names


def test_pyproject_holds_only_build_system_and_nbdev():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert set(pyproject) == {"build-system", "project", "tool"}
    assert set(pyproject["project"]) == {"name", "requires-python", "dynamic"}, "metadata belongs in settings.ini"
    assert set(pyproject["tool"]) == {"nbdev", "importlinter"}, "tool settings: nbdev and the layers contract"


def test_console_scripts_resolve():
    for script in settings()["console_scripts"].split():
        name, target = script.split("=")
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), script


def test_modules_are_small():
    """No exported module over 350 lines (nbdev's generated index aside): one concept per module. nbdev's `# %%` cell
    markers do not count, so that splitting a notebook into one definition per cell costs a module nothing."""
    def lines(path): return [l for l in path.read_text(encoding="utf-8").splitlines() if not l.startswith("# %% ")]
    sizes = {str(p.relative_to(ROOT)): len(lines(p)) for p in (ROOT / "crossmatch").rglob("*.py")}
    large = {name: n for name, n in sizes.items() if n > 350 and not name.endswith("_modidx.py")}
    assert not large, f"modules over 350 lines: {large}"


def test_notebooks_open_with_title_description_and_kernel():
    for path in sorted((ROOT / "nbs").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", f"{path.name}: no python3 kernelspec"
        first = "".join(nb["cells"][0]["source"]).splitlines()
        assert first[0].startswith("# ") and any(l.startswith("> ") for l in first[1:]), \
            f"{path.name}: the first cell must be '# Title' and a '> description'"


LAYER_PACKAGES = ["data", "model", "method", "training", "views"]


def test_every_module_lives_in_a_layer_package():
    "The layout is the layering: the contract names packages, so a module is checked by where it is put."
    top = sorted(p.name for p in (ROOT / "crossmatch").glob("*.py"))
    assert top == ["__init__.py", "_modidx.py", "cli.py", "commands.py"], top
    packages = sorted(p.name for p in (ROOT / "crossmatch").iterdir() if (p / "__init__.py").exists())
    assert packages == sorted(LAYER_PACKAGES), packages
    layers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]["layers"]
    assert layers == ["crossmatch.cli", "crossmatch.commands"] + [f"crossmatch.{p}" for p in reversed(LAYER_PACKAGES)]


def _shown_imports(text):
    "(module, names) of every `from crossmatch... import ...` line in `text`."
    import re
    return [(m[1], [n.strip() for n in m[2].strip("()").split(",") if n.strip()])
            for m in re.finditer(r"from (crossmatch[\w.]*) import ([\w, ()]+)", text)]


def test_readme_and_tutorials_import_from_the_public_api():
    "Every name the README and the tutorials import comes from `crossmatch` itself and resolves."
    texts = {"README.md": (ROOT / "README.md").read_text(encoding="utf-8")}
    for path in sorted((ROOT / "nbs").glob("5*.ipynb")) + [ROOT / "nbs" / "index.ipynb"]:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        texts[path.name] = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    shown = 0
    for name, text in texts.items():
        for module, names in _shown_imports(text):
            assert module == "crossmatch", f"{name}: `from {module} import {', '.join(names)}`: use `from crossmatch import`"
            for symbol in names:
                assert symbol in crossmatch.PUBLIC_NAMES and getattr(crossmatch, symbol) is not None, f"{name}: {symbol}"
                shown += 1
    assert shown >= 20, f"only {shown} names shown: the parser no longer finds the imports"


def _cell_flags(source: str) -> set[str]:
    "The nbdev directives of a cell (`#| export`, `#|hide` ...)."
    import re
    return set(re.findall(r"^#\|\s*([\w-]+)", source, re.M))


def test_each_export_is_followed_by_an_example():
    """The house style: a cell that exports a function or class defines one of them and is followed at once (markdown
    and `show_doc` cells aside) by a visible code cell — the example or test that shows it working."""
    import re
    missing, crowded = [], []
    for path in sorted((ROOT / "nbs").glob("*.ipynb")):
        cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
        cells = [c for c in cells if not re.fullmatch(r"\s*show_doc\([^\n]*\)\s*", "".join(c["source"]))]
        for cell, after in zip(cells, cells[1:] + [None]):
            source = "".join(cell["source"])
            names = re.findall(r"^(?:async def|def|class) (\w+)", source, re.M)
            if "export" not in _cell_flags(source) or not names: continue
            if len(names) > 1: crowded.append(f"{path.name}: {', '.join(names)}")
            if after is None or _cell_flags("".join(after["source"])) & {"export", "exports", "hide"}:
                missing.append(f"{path.name}: {names[0]}")
    assert not crowded, f"export cells defining several functions or classes: {crowded}"
    assert not missing, f"exports not followed by an example or test: {missing}"
