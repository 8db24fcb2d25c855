"""The widgets notebook and the documentation site in a real browser, driven by headless Chromium.

Runs a working copy of nbs/41_widgets.ipynb in JupyterLab on 127.0.0.1 with 'Run All', checks that no cell errs and
that the widget views render (sliders, images), drags a slider and checks that the image beside it changes. Then
serves site/ (`bash tools/docs.sh`, built here when missing) on 127.0.0.1, follows the navigation to a model-layer
page and to a page with a figure, checks that code cells and images render, and runs a search. Screenshots go to
runs/browser/. Needs Debian's `chromium` and the `playwright` package (`bash tools/install_browser.sh`); skips
with the reason when either is missing, except in CI (`CI` set), where .ci/run installs both and a skip would hide
a broken install: there it fails.
"""
import functools, http.server, json, os, secrets, shutil, signal, socket, subprocess, sys, threading, time
import urllib.parse, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / 'nbs' / '41_widgets.ipynb'
SITE = ROOT / 'site'
SCREENSHOTS = ROOT / 'runs' / 'browser'
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
RUN_ALL_TIMEOUT_S = 180  # the notebook trains 8 iterations of the tiny model, then runs every widget

try: from playwright.sync_api import sync_playwright
except ImportError: sync_playwright = None
MISSING = ('playwright is not installed' if sync_playwright is None else
           'chromium is not installed' if not Path(CHROMIUM).exists() else '')
if MISSING and os.environ.get('CI'): raise RuntimeError(f"{MISSING}: .ci/run must install it (tools/install_browser.sh)")
if MISSING: pytest.skip(f'{MISSING} (bash tools/install_browser.sh)', allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response: return response.read()


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    "A JupyterLab server on 127.0.0.1 serving a working copy of the widgets notebook; shut down at the end."
    root = tmp_path_factory.mktemp('lab')
    (root / 'nbs').mkdir()
    (root / 'data').symlink_to(ROOT / 'data')  # the notebook reads ../data and writes ../runs, relative to nbs/
    notebook = json.loads(NOTEBOOK.read_text(encoding='utf-8'))
    notebook['metadata'].setdefault('kernelspec', {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'})
    (root / 'nbs' / NOTEBOOK.name).write_text(json.dumps(notebook), encoding='utf-8')
    news = root / '.settings' / '@jupyterlab' / 'apputils-extension' / 'notification.jupyterlab-settings'
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({'fetchNews': 'false'}))  # no "Jupyter news?" prompt over the screenshots, no fetch
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, 'JUPYTER_RUNTIME_DIR': str(root / '.runtime'), 'JUPYTER_CONFIG_DIR': str(root / '.config'),
           'MPLBACKEND': 'Agg'}
    log = (root / 'lab.log').open('w')
    server = subprocess.Popen(
        [sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
         '--ServerApp.port_retries=0', f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={root}',
         f'--LabApp.workspaces_dir={root / ".workspaces"}', f'--LabApp.user_settings_dir={root / ".settings"}',
         '--LabApp.expose_app_in_browser=True', '--LabApp.extension_manager=readonly',
         *(['--allow-root'] if os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f'http://127.0.0.1:{port}'
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {server.returncode}:\n{(root / 'lab.log').read_text()}")
            try:
                _get(f'{base}/api/status?token={token}')
                break
            except OSError:
                if time.monotonic() > deadline: raise TimeoutError(f"JupyterLab did not answer on {base} within 60 s")
                time.sleep(0.5)
        yield {'url': f'{base}/lab/tree/nbs/{NOTEBOOK.name}?token={token}', 'root': root}
    finally:
        try:  # the server's own shutdown also stops the kernel it started
            request = urllib.request.Request(f'{base}/api/shutdown?token={token}', method='POST')
            urllib.request.urlopen(request, timeout=5).close()
            server.wait(timeout=15)
        except Exception:
            pass
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try: server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
        log.close()


@pytest.fixture(scope='module')
def browser():
    "Headless Chromium (Debian's, not playwright's download), shared by the tests of this file."
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try: yield browser
        finally: browser.close()


@pytest.fixture(scope='module')
def page(lab, browser):
    "A browser page with the notebook open and its kernel idle."
    page = browser.new_page(viewport={'width': 1400, 'height': 1000})
    page.set_default_timeout(30_000)
    page.goto(lab['url'])
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext?.session?.kernel?.status === 'idle'",
                           timeout=60_000)
    yield page
    page.close()


CELLS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  return {kernel: panel.sessionContext.session?.kernel?.status,
          cells: panel.content.widgets.filter(c => c.model.type === 'code').map(c => ({
            count: c.model.executionCount,
            errors: c.model.outputs.toJSON().filter(o => o.output_type === 'error')
                     .map(o => `${o.ename}: ${o.evalue}`)}))};
}"""


def test_widgets_notebook_runs_and_its_sliders_redraw(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    deadline = time.monotonic() + RUN_ALL_TIMEOUT_S
    while True:  # done when the kernel is idle and every code cell has run, or as soon as one errs
        page.wait_for_timeout(1000)
        state = page.evaluate(CELLS_JS)
        errors = [e for cell in state['cells'] for e in cell['errors']]
        if errors: break
        if state['kernel'] == 'idle' and all(cell['count'] for cell in state['cells']): break
        assert time.monotonic() < deadline, f"'Run All' did not finish within {RUN_ALL_TIMEOUT_S} s: {state}"
    page.screenshot(path=SCREENSHOTS / 'notebook.png')
    assert not errors, f"cells erred in the browser: {errors}"

    # widget views rendered: sliders and PNG images, in the last cell's tabs (the first tab: the pseudo-label explorer)
    outputs = page.locator('.jp-OutputArea-output')
    assert outputs.locator('.widget-slider').count() >= 2
    box = outputs.locator('.widget-vbox:has(> img.widget-image)').first  # a widget: its controls above its image
    image = box.locator(':scope > img.widget-image')
    image.scroll_into_view_if_needed()
    page.wait_for_function('(img) => img.complete && img.naturalWidth > 100', arg=image.element_handle())
    box.screenshot(path=SCREENSHOTS / 'widget_before.png')
    before_src, before_png = image.get_attribute('src'), image.screenshot()

    # drag the 'image' slider's handle to the right, as a person would
    slider = box.locator('.widget-slider', has=page.locator('label', has_text='image')).first
    readout = slider.locator('.widget-readout')
    before_value = readout.inner_text()
    handle = slider.locator('.noUi-handle')
    start = handle.bounding_box()
    page.mouse.move(start['x'] + start['width'] / 2, start['y'] + start['height'] / 2)
    page.mouse.down()
    page.mouse.move(start['x'] + 60, start['y'] + start['height'] / 2, steps=5)
    page.mouse.up()
    page.wait_for_function('([img, src]) => img.src !== src', arg=[image.element_handle(), before_src], timeout=30_000)
    page.wait_for_function(f'() => ({CELLS_JS})().kernel === "idle"')  # every redraw the drag asked for is done
    page.wait_for_function('(img) => img.complete && img.naturalWidth > 100', arg=image.element_handle())
    after_value = readout.inner_text()
    box.screenshot(path=SCREENSHOTS / 'widget_after.png')
    assert after_value != before_value, f"the slider did not move (readout {before_value!r})"
    assert image.screenshot() != before_png, "the image beside the slider did not change"


@pytest.fixture(scope='module')
def site():
    "site/ served on 127.0.0.1 by Python's static file server (built first when missing); its base URL."
    if not (SITE / 'index.html').exists():
        subprocess.run(['bash', str(ROOT / 'tools' / 'docs.sh')], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    handler = functools.partial(Quiet, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try: yield f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown(); server.server_close(); thread.join(timeout=10)


def test_docs_site_navigation_code_images_and_search(site, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={'width': 1400, 'height': 1000})
    page.set_default_timeout(30_000)
    requests = []
    page.on('request', lambda request: requests.append(request.url))
    try:
        page.goto(f'{site}/index.html')
        assert 'crossmatch' in page.title()
        # the navigation: the sidebar's model section, its page on the detectors
        section = page.locator('nav.md-nav--primary li.md-nav__item--section', has=page.locator('label', has_text='model'))
        section.locator('a.md-nav__link', has_text='12 Detectors').click()
        page.wait_for_url('**/12_model.html')
        assert page.locator('article h1').first.inner_text().strip() == 'Detectors'
        code = page.locator('.jp-CodeCell .highlight-ipynb').first  # the source, highlighted
        code.scroll_into_view_if_needed()
        assert code.is_visible() and 'import' in code.inner_text() and code.locator('span.kn').count() > 0
        assert 'def build_detector' in ' '.join(page.locator('.jp-CodeCell .highlight-ipynb').all_inner_texts())
        assert page.locator('.jp-CodeCell .jp-OutputArea-output').count() > 0  # kept outputs
        page.screenshot(path=SCREENSHOTS / 'docs_model.png')

        # formulas are typeset by the site's own MathJax
        page.locator('nav.md-nav--primary a.md-nav__link', has_text='11 RoIAlign on the CPU').click()
        page.wait_for_url('**/11_roialign.html')
        page.wait_for_function("() => document.querySelectorAll('.MathJax, .MathJax_CHTML, .MathJax_Display').length > 0", timeout=30_000)

        # a notebook named in a markdown cell is a link to its page; the shapes page shows its figures
        page.goto(f'{site}/index.html')
        page.locator('article a[href="01_shapes.html"]').first.click()
        page.wait_for_url('**/01_shapes.html')
        image = page.locator('.jp-RenderedImage img').first
        image.scroll_into_view_if_needed()
        page.wait_for_function('(img) => img.complete && img.naturalWidth > 100', arg=image.element_handle())
        image.screenshot(path=SCREENSHOTS / 'docs_figure.png')

        # search, from the site's own index: results name the pages, and one opens
        page.locator('input.md-search__input').click()
        page.keyboard.type('pseudo-labels')
        results = page.locator('.md-search-result__item')
        results.first.wait_for(state='visible')
        assert results.count() >= 3
        page.screenshot(path=SCREENSHOTS / 'docs_search.png')
        titles = page.locator('.md-search-result__item h1').all_inner_texts()
        assert '21 Pseudo-labels' in titles, titles
        first = page.locator('.md-search-result__item a').first
        target = first.get_attribute('href')
        with page.expect_navigation(): first.click()
        assert urllib.parse.urlsplit(page.url).path == urllib.parse.urlsplit(target).path, (page.url, target)
        assert page.locator('article .jp-Cell').count() > 0, f"the search result {target} opened no notebook page"
    finally:
        page.close()
    outside = [url for url in requests if not url.startswith(site) and not url.startswith('data:')]
    assert not outside, f"the site asked the network for {outside[:5]}"


REPORT_RUN = ['data.shapes_preset=quick', 'data.percent=10', f'data.root={ROOT / "data"}', 'data.num_workers=0',
              'method.ohem_k=16', 'method.ohem_ramp_iters=4', 'method.delta=0.2', 'train.device=cpu', 'train.threads=1',
              'train.iterations=8', 'train.burn_in=4', 'train.warmup_iters=2', 'train.log_every=1', 'train.eval_every=4',
              'train.checkpoint_every=4', 'train.batch_labeled=2', 'train.batch_unlabeled=2', 'train.max_eval_images=4']


def test_run_report_opens_and_its_plots_render(tmp_path, browser):
    "`crossmatch report` of a short run, opened from disk in Chromium: every embedded PNG decodes and has a width."
    from crossmatch.training.config import config_from_args
    from crossmatch.views.report import write_report
    from crossmatch.training.trainer import Trainer
    run = tmp_path / 'run'
    Trainer(config_from_args('shapes', overrides=REPORT_RUN, output=str(run)), progress=False).fit()
    page_path = write_report(run, images=2)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={'width': 1200, 'height': 900})
    try:
        page.goto(page_path.resolve().as_uri())
        images = page.locator('img')
        assert images.count() == 2
        for i in range(images.count()):
            page.wait_for_function('(img) => img.complete', arg=images.nth(i).element_handle())
        widths = page.evaluate("() => [...document.images].map(img => img.naturalWidth)")
        assert all(w > 0 for w in widths), widths
        assert page.locator('h2').all_inner_texts()[:2] == ['Curves', 'Warnings']
        page.screenshot(path=SCREENSHOTS / 'report.png', full_page=True)
    finally:
        page.close()
