"""Write README.md from nbs/index.ipynb (nbdev-readme needs Quarto, which cannot be installed here).

`python tools/make_readme.py` rewrites README.md; `--check` exits 1 if README.md is not current.
"""
import argparse
import sys
from pathlib import Path

from nbconvert import MarkdownExporter
from nbformat import read

root = Path(__file__).resolve().parents[1]


def render() -> str:
    nb = read(root / "nbs" / "index.ipynb", as_version=4)
    # nbdev directives and hidden cells are for the notebook, not the README
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and c.source.lstrip().startswith("#| hide"))]
    for c in nb.cells:
        if c.cell_type == "code":
            c.source = "\n".join(l for l in c.source.splitlines() if not l.startswith("#|"))
    body, _ = MarkdownExporter().from_notebook_node(nb)
    header = "<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->\n\n"
    return header + body.strip() + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md differs from the notebook")
    args = parser.parse_args()
    text, readme = render(), root / "README.md"
    if args.check:
        if not readme.exists() or readme.read_text(encoding="utf-8") != text:
            sys.exit("README.md is not current: run `python tools/make_readme.py` and commit it")
        print("README.md is current")
    else:
        readme.write_text(text, encoding="utf-8")
        print(f"wrote {readme}")
