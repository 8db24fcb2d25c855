"""Build the documentation site from the notebooks: `python tools/docs.py` (or `bash tools/docs.sh`) → site/.

Every notebook becomes a page, in the layer order of the map in nbs/index.ipynb ("What is inside"), with its kept
outputs and figures (nothing is executed). The pages are written to build/docs/ first, as nbdev's own site shows
them: `#| hide` cells left out, cell directives removed, show_doc's links to a source host dropped (the kit names
none), and every `NN_name` a markdown cell mentions made a link to that notebook's page. An API page lists every
exported name with its signature and docstring. Then `mkdocs build --strict` (mkdocs-material with its search
plugin, mkdocs-jupyter for the notebooks) writes site/, and every link and image of site/ is checked to resolve to
a file of site/. Formulas are typeset by the MathJax that jupyter-server-mathjax ships, copied into site/mathjax/
(nbconvert would fetch it from a CDN). Any failure exits non-zero naming what is wrong. Pages are plain .html files (no directory URLs),
so site/ opens from the file system; search runs in a web worker, which browsers start only over HTTP:
`python -m http.server -d site` serves it, no network needed.
"""
import argparse, copy, importlib, inspect, re, shutil, subprocess, sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit
import jupyter_server_mathjax, nbformat, yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the API page documents this tree's crossmatch, whichever one is installed
NBS, BUILD, SITE = ROOT / 'nbs', ROOT / 'build' / 'docs', ROOT / 'site'
DIRECTIVE = re.compile(r'^#\|\s*(export|exports|exporti|default_exp|slow|gpu)\b.*\n?', re.M)
SOURCE_LINK = re.compile(r'\[source\]\([^)]*\)(\{[^}]*\})?\n?')  # show_doc's link to a repository the kit has not set
FENCE = re.compile(r'(```.*?```)', re.S)


def layer_map(index: Path) -> list[tuple[str, list[str]]]:
    "(layer, notebook stems) in the order of the index's 'What is inside' table: bold rows open a layer."
    stems = {p.stem: p for p in NBS.glob('*.ipynb') if p.stem != 'index'}
    by_number = {stem[:2]: stem for stem in stems}
    table = next(c.source for c in nbformat.read(index, 4).cells if '## What is inside' in c.source)
    layers = []
    for line in table.splitlines():
        first = line.split('|')[1].strip() if line.startswith('|') else ''
        if first.startswith('**'): layers.append((first.strip('*'), []))
        elif layers and first:
            names = re.findall(r'`(\d\d(?:_\w+)?)`', first)  # a full name, or a number where it is unique
            span = re.fullmatch(r'`(\d\d)`\s*[–-]\s*`(\d\d)`', first)
            if span: names = [f'{n:02d}' for n in range(int(span[1]), int(span[2]) + 1)]
            missing = [n for n in names if n not in stems and n not in by_number]
            if missing: raise SystemExit(f"nbs/index.ipynb: the map names notebooks {missing} that nbs/ does not have")
            layers[-1][1].extend(n if n in stems else by_number[n] for n in names)
    listed = [stem for _, group in layers for stem in group]
    unlisted = sorted(set(stems) - set(listed))
    twice = sorted({s for s in listed if listed.count(s) > 1})
    if unlisted or twice:
        raise SystemExit(f"nbs/index.ipynb's map must name every notebook once: missing {unlisted}, twice {twice}")
    return layers


def link_notebooks(markdown: str, stems: set[str]) -> str:
    "`NN_name` (a notebook's name in backticks) as a link to its page, outside fenced code."
    def link(match):
        return f'[`{match[1]}`]({match[1]}.html)' if match[1] in stems else match[0]  # a notebook's HTML is not re-linked by mkdocs
    parts = FENCE.split(markdown)
    return ''.join(p if p.startswith('```') else re.sub(r'(?<!\[)`(\d\d_\w+)`(?!\])', link, p) for p in parts)


def page_notebook(path: Path, stems: set[str]) -> nbformat.NotebookNode:
    "The notebook as its page shows it: no hidden cells, no directives, no dangling source links, linked names."
    nb = copy.deepcopy(nbformat.read(path, 4))
    cells = []
    for cell in nb.cells:
        if cell.cell_type == 'code':
            if re.match(r'\s*#\|\s*hide\b', cell.source): continue
            cell.source = DIRECTIVE.sub('', cell.source).strip('\n')
            if not cell.source: continue
            for output in cell.get('outputs', []):
                markdown = output.get('data', {}).get('text/markdown')
                if markdown: output['data']['text/markdown'] = SOURCE_LINK.sub('', markdown)
        elif cell.cell_type == 'markdown':
            cell.source = link_notebooks(cell.source, stems | {'index'})
        cells.append(cell)
    nb.cells = cells
    return nb


def api_page(layers: list[tuple[str, list[str]]]) -> str:
    "Markdown: every exported name of every module, layer by layer, with its signature, docstring and notebook."
    lines = ['# API reference', '', 'Every name a module exports, with its signature and docstring; each module '
             'links to the notebook it is written in, where the examples are.', '']
    for layer, stems in layers:
        modules = [(stem, _default_exp(NBS / f'{stem}.ipynb')) for stem in stems]
        modules = [(stem, name) for stem, name in modules if name]
        if not modules: continue
        lines += [f'## {layer}', '']
        for stem, name in modules:
            dotted = 'crossmatch' if name == '__init__' else f'crossmatch.{name}'
            module = importlib.import_module(dotted)
            lines += [f'### `{dotted}`', '', f'{inspect.getdoc(module) or ""} ([`{stem}`]({stem}.ipynb))', '']
            if name == '__init__':  # the package re-exports names documented under their own modules
                lines += [', '.join(f'`{symbol}` (`{home}`)' for symbol, home in module.PUBLIC_NAMES.items()), '']
                continue
            for symbol in getattr(module, '__all__', []):
                obj = getattr(module, symbol)
                doc = (inspect.getdoc(obj) or '').split('\n\n')[0] if callable(obj) else ''
                signature = _signature(obj) if callable(obj) else f' = {_short(obj)}'
                kind = 'class ' if inspect.isclass(obj) else ''
                lines += [f'- **`{kind}{symbol}{signature}`**' + (f': {doc}' if doc else ''), '']
    return '\n'.join(lines)


class _Written(str):
    "An annotation kept as the text it was written as (the modules use postponed annotations)."
    def __repr__(self): return str(self)


def _signature(obj) -> str:
    try: signature = inspect.signature(obj)
    except (TypeError, ValueError): return ''
    written = lambda a: _Written(a) if isinstance(a, str) else a
    parameters = [p.replace(annotation=written(p.annotation)) for p in signature.parameters.values()]
    return str(signature.replace(parameters=parameters, return_annotation=written(signature.return_annotation)))


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 90 else text[:87] + '...'


def _default_exp(path: Path) -> str:
    found = re.search(r'#\|\s*default_exp\s+([\w.]+)', path.read_text(encoding='utf-8'))
    return found[1] if found else ''


def _title(path: Path) -> str:
    first = nbformat.read(path, 4).cells[0].source
    return first.splitlines()[0].lstrip('# ').strip()


def mkdocs_config(layers: list[tuple[str, list[str]]]) -> dict:
    nav = [{'Home': 'index.ipynb'}]
    nav += [{layer: [{f'{stem[:2]} {_title(NBS / f"{stem}.ipynb")}': f'{stem}.ipynb'} for stem in stems]}
            for layer, stems in layers]
    nav.append({'API reference': 'api.md'})
    return {
        'site_name': 'crossmatch', 'site_description': 'Semi-supervised object detection with CrossMatch, as a kit',
        'docs_dir': str(BUILD / 'pages'), 'site_dir': str(SITE), 'use_directory_urls': False,
        'theme': {'name': 'material', 'font': False,  # no web fonts: the site works without a network
                  'features': ['navigation.sections', 'navigation.top', 'search.highlight']},
        'plugins': ['search',  # lunr in a web worker on the site's own index: no network, any static server
                    {'mkdocs-jupyter': {'include': ['*.ipynb'], 'execute': False, 'cache': False, 'toc_depth': 3,
                                        'ignore_h1_titles': True,  # the nav's titles, numbered, name the pages
                                        'no_prompt': True, 'include_source': False,
                                        'custom_mathjax_url': 'mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe'}}],
        'extra_css': ['wide.css'], 'markdown_extensions': ['toc'], 'nav': nav,
    }


class _Links(HTMLParser):
    "Every href and src of a page."
    def __init__(self):
        super().__init__(); self.targets = []
    def handle_starttag(self, tag, attrs):
        self.targets += [value for name, value in attrs if name in ('href', 'src') and value]


def broken_links(site: Path) -> list[str]:
    "'page → target' for every link or image of the site's pages that does not name a file of the site."
    broken = []
    for page in sorted(site.rglob('*.html')):
        parser = _Links(); parser.feed(page.read_text(encoding='utf-8'))
        for target in parser.targets:
            parts = urlsplit(target)
            if parts.scheme or parts.netloc or not parts.path: continue  # external, data:, or a fragment of the page
            base = site if parts.path.startswith('/') else page.parent  # 404.html links from the site's root
            resolved = (base / unquote(parts.path).lstrip('/')).resolve()
            if resolved.is_dir(): resolved = resolved / 'index.html'
            if not resolved.is_file(): broken.append(f'{page.relative_to(site)} → {target}')
    return broken


def build(strict: bool = True) -> Path:
    layers = layer_map(NBS / 'index.ipynb')
    stems = {stem for _, group in layers for stem in group}
    pages = BUILD / 'pages'
    shutil.rmtree(BUILD, ignore_errors=True); pages.mkdir(parents=True)
    for stem in ['index', *sorted(stems)]:
        nbformat.write(page_notebook(NBS / f'{stem}.ipynb', stems), pages / f'{stem}.ipynb')
    (pages / 'api.md').write_text(api_page(layers), encoding='utf-8')
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / 'static', pages / 'mathjax')  # no CDN: formulas offline
    (pages / 'wide.css').write_text('.md-grid { max-width: 90rem; }  /* notebook code is wide */\n', encoding='utf-8')
    config = BUILD / 'mkdocs.yml'
    config.write_text(yaml.safe_dump(mkdocs_config(layers), sort_keys=False, allow_unicode=True), encoding='utf-8')
    command = [sys.executable, '-m', 'mkdocs', 'build', '--clean', '--config-file', str(config)] + ['--strict'] * strict
    subprocess.run(command, check=True, cwd=ROOT)
    broken = broken_links(SITE)
    if broken: raise SystemExit(f"{len(broken)} links of site/ lead nowhere:\n  " + '\n  '.join(broken[:30]))
    print(f"site/: {len(stems) + 2} pages ({len(stems)} notebooks, the index and the API reference), every link resolves")
    return SITE


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--no-strict', action='store_true', help="let mkdocs warnings pass (a draft while writing)")
    build(strict=not parser.parse_args().no_strict)
