"""Build a notebook from a plain-text cell list, or execute one in place.

    python tools/nb.py build SRC.py OUT.ipynb   # cells separated by lines '# %% [markdown]' or '# %%'
    python tools/nb.py run nbs/X.ipynb [...]    # execute in place (outputs kept), then nbdev-clean it

A writing aid for the notebooks; the notebooks stay the source of the library.
"""
import os, re, subprocess, sys, uuid
from pathlib import Path
import nbformat

def build(src: str, out: str):
    text = Path(src).read_text(encoding='utf-8')
    parts = re.split(r'^# %%( \[markdown\])?[ \t]*\n', text, flags=re.M)
    cells = []
    if parts[0].strip(): raise SystemExit(f"{src}: text before the first '# %%' marker")
    for i in range(1, len(parts), 2):
        markdown, body = parts[i], parts[i + 1].strip('\n')
        if markdown: body = '\n'.join(l[2:] if l.startswith('# ') else l.lstrip('#') for l in body.splitlines())
        cell = nbformat.v4.new_markdown_cell(body) if markdown else nbformat.v4.new_code_cell(body)
        cell.id = uuid.uuid4().hex[:8]
        cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}}
    nbformat.write(nb, out)

def run(paths: list[str]):
    # a non-interactive MPLBACKEND (Agg, as the tests set it) keeps the kernel's inline backend from drawing: the
    # notebook's figures would be dropped from its kept outputs
    env = {k: v for k, v in os.environ.items() if k != 'MPLBACKEND'}
    for path in paths:
        subprocess.run([sys.executable, '-m', 'jupyter', 'nbconvert', '--to', 'notebook', '--execute', '--inplace',
                        '--ExecutePreprocessor.timeout=1800', '--log-level=WARN', path], check=True, env=env)
        subprocess.run(['nbdev-clean', '--fname', path], check=True)

if __name__ == '__main__':
    if sys.argv[1:2] == ['build']: build(*sys.argv[2:4])
    elif sys.argv[1:2] == ['run']: run(sys.argv[2:])
    else: raise SystemExit(__doc__)
