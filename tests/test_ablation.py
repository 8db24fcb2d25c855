"""`crossmatch ablation` on four-iteration runs of the quick shapes set (supervised and CrossMatch, seeds 1 and 2):
the CSV's rows and columns, the markdown table against values computed here from the CSV, the progress lines,
resume (only a removed run and an interrupted one train again), a second burn-in served by the same supervised
run, and errors that name the bad method or variant before anything trains."""
import contextlib
import io
import math
import shutil
import statistics
from pathlib import Path

import pandas as pd
import pytest

from crossmatch.training.ablation import plan_ablation, run_ablation, summarize_ablation
from crossmatch.training.checkpoint import checkpoint_path
from crossmatch.cli import main
from crossmatch.training.config import get_preset
from crossmatch.method.config import method_name
from crossmatch.data.shapes import generate_shapes
from crossmatch.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
SHORT = [f'data.root={REPO / "data"}', 'data.num_workers=0', 'train.iterations=4', 'train.burn_in=2',
         'train.warmup_iters=1', 'train.eval_every=4', 'train.checkpoint_every=2', 'train.log_every=2',
         'train.batch_labeled=2', 'train.batch_unlabeled=2', 'train.max_eval_images=8', 'train.lr_steps=[]']
METHODS, SEEDS = ['supervised', 'crossmatch'], [1, 2]
T_975_DF1 = 12.706204736174698  # Student's t, 97.5 % quantile, one degree of freedom (two seeds)
CLASSES = ['circle', 'square', 'triangle', 'star', 'ring', 'cross', 'hexagon', 'crescent']


@pytest.fixture(scope='module')
def ablation(tmp_path_factory):
    "The ablation run once through the command line: its folder, stderr and stdout."
    generate_shapes('quick', REPO / 'data')
    output = tmp_path_factory.mktemp('ablation') / 'out'
    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()) as out:
        status = main(['ablation', '--quick', '--methods', *METHODS, '--seeds', *map(str, SEEDS), '--no-progress',
                       '--output', str(output), '--set', *SHORT])
    assert status == 0, err.getvalue()[-3000:]
    return output, err.getvalue(), out.getvalue()


@pytest.fixture
def fits(monkeypatch):
    "(method, seed, iteration it starts at) of every `Trainer.fit` call in the test."
    calls, fit = [], Trainer.fit
    def recorded(self, *args, **kwargs):
        calls.append((method_name(self.config.method), self.config.train.seed, self.iteration))
        return fit(self, *args, **kwargs)
    monkeypatch.setattr(Trainer, 'fit', recorded)
    return calls


def final_eval(run_dir, model):
    metrics = pd.read_csv(Path(run_dir) / 'metrics.csv')
    return metrics[(metrics.kind == 'eval') & (metrics.model == model)].iloc[-1]


def test_csv_has_one_row_per_run_and_its_columns(ablation):
    output, _, _ = ablation
    runs = pd.read_csv(output / 'ablation.csv')
    assert runs[['method', 'variant', 'seed', 'model']].values.tolist() == [
        ['supervised', 'base', 1, 'student'], ['crossmatch', 'base', 1, 'teacher'],
        ['supervised', 'base', 2, 'student'], ['crossmatch', 'base', 2, 'teacher']]
    assert list(runs.columns) == ['method', 'variant', 'seed', 'model', 'AP', 'AP50', 'teacher_AP', 'teacher_AP50',
                                  'student_AP', 'student_AP50', *(f'AP-{c}' for c in CLASSES), 'wall_s', 'run_dir']
    for _, row in runs.iterrows():
        assert Path(row.run_dir) == output / f'seed{row.seed}' / 'base' / row.method
        reported = final_eval(row.run_dir, row.model)
        assert reported.iteration == 4
        assert row[['AP', 'AP50', 'AP-circle']].tolist() == reported[['AP', 'AP50', 'AP-circle']].tolist()
        assert row.student_AP == final_eval(row.run_dir, 'student').AP
        assert row.wall_s > 0
    supervised, crossmatch = runs[runs.method == 'supervised'], runs[runs.method == 'crossmatch']
    assert supervised.teacher_AP.isna().all() and (supervised.AP == supervised.student_AP).all()
    assert (crossmatch.AP == crossmatch.teacher_AP).all()


def test_markdown_table_is_the_csv_summarised(ablation):
    output, _, stdout = ablation
    runs = pd.read_csv(output / 'ablation.csv')
    ap = {(r.method, r.seed): r.AP for r in runs.itertuples()}
    ap50 = {(r.method, r.seed): r.AP50 for r in runs.itertuples()}
    differences = [ap['crossmatch', s] - ap['supervised', s] for s in SEEDS]
    mean, half = statistics.mean(differences), T_975_DF1 * statistics.stdev(differences) / math.sqrt(2)
    summary = summarize_ablation(runs)
    cm = summary.loc[('crossmatch', 'base')]
    assert cm.AP == pytest.approx(statistics.mean(ap['crossmatch', s] for s in SEEDS), abs=1e-12)
    assert cm.AP_std == pytest.approx(statistics.stdev(ap['crossmatch', s] for s in SEEDS), abs=1e-12)
    assert cm['Δ supervised'] == pytest.approx(mean, abs=1e-12)
    assert cm['Δ supervised ±'] == pytest.approx(half, abs=1e-9)

    def mean_std(values): return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"
    text = (output / 'ablation.md').read_text()
    rows = [line for line in text.splitlines() if line.startswith('| ') and not line.startswith('| method')]
    assert rows == [
        f"| supervised | base | 2 | {mean_std([ap['supervised', s] for s in SEEDS])} | "
        f"{mean_std([ap50['supervised', s] for s in SEEDS])} | — |",
        f"| crossmatch | base | 2 | {mean_std([ap['crossmatch', s] for s in SEEDS])} | "
        f"{mean_std([ap50['crossmatch', s] for s in SEEDS])} | {mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}] |"]
    assert "the teacher's for the semi-supervised methods, the student's for supervised" in text
    assert rows[1] in stdout  # the table is printed at the end too
    assert (output / 'ablation.png').read_bytes()[:4] == b'\x89PNG'


def test_one_progress_line_per_run(ablation):
    _, stderr, _ = ablation
    lines = [line for line in stderr.splitlines() if line.startswith('[run ')]
    assert [line.split(' — ')[0] for line in lines] == [
        '[run 1/4] supervised (seed 1)', '[run 2/4] crossmatch (seed 1)',
        '[run 3/4] supervised (seed 2)', '[run 4/4] crossmatch (seed 2)']
    assert lines[0].endswith('time left known after the first run')
    assert all(' — elapsed ' in line and line.endswith(' left') and 'about ' in line for line in lines[1:])


def test_resume_trains_only_the_removed_and_the_interrupted_run(ablation, fits, tmp_path):
    output = tmp_path / 'out'
    shutil.copytree(ablation[0], output)
    shutil.rmtree(output / 'seed2' / 'base' / 'crossmatch')  # removed: trains again from the burn-in of seed 2
    interrupted = output / 'seed1' / 'base' / 'supervised'  # as if killed after its checkpoint at iteration 2
    checkpoint_path(interrupted, 4).unlink()
    metrics = pd.read_csv(interrupted / 'metrics.csv')
    metrics[metrics.iteration <= 2].to_csv(interrupted / 'metrics.csv', index=False)
    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
        runs = run_ablation(output, METHODS, seeds=SEEDS, quick=True, overrides=SHORT, progress=False)
    assert fits == [('supervised', 1, 2), ('crossmatch', 2, 2)]
    assert '[run 2/4] crossmatch (seed 1): finished earlier, skipped' in err.getvalue()
    assert '[run 3/4] supervised (seed 2): finished earlier, skipped' in err.getvalue()
    assert len(runs) == 4 and len(pd.read_csv(output / 'ablation.csv')) == 4
    assert final_eval(output / 'seed2' / 'base' / 'crossmatch', 'teacher').iteration == 4


def test_bad_method_or_variant_fails_before_training(ablation, fits, tmp_path, capsys):
    output = tmp_path / 'out'
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['hard-only'\]"):
        run_ablation(output, ['supervised', 'hard-only'], seeds=[1], quick=True, overrides=SHORT)
    with pytest.raises(ValueError, match=r"variant 'typo': unknown config field 'train\.lrr'"):
        run_ablation(output, METHODS, {'ok': [], 'typo': ['train.lrr=1']}, seeds=[1], quick=True, overrides=SHORT)
    with pytest.raises(ValueError, match=r"variant 'seeded' sets data\.split_seed, which the seeds"):
        run_ablation(output, METHODS, {'seeded': ['data.split_seed=3']}, seeds=[1], quick=True, overrides=SHORT)
    with pytest.raises(ValueError, match=r"holds a run of another config \(train\.iterations: 4 there, 6 now\)"):
        run_ablation(ablation[0], METHODS, seeds=SEEDS, quick=True, overrides=SHORT + ['train.iterations=6'])
    with pytest.raises(SystemExit):
        main(['ablation', '--methods', 'crossmatch', 'hard-only', '--output', str(output)])
    assert "invalid choice: 'hard-only'" in capsys.readouterr().err
    assert main(['ablation', '--variant', 'method.delta=0.5', '--output', str(output)]) == 2
    assert "a variant starts with its name" in capsys.readouterr().err
    assert fits == [] and not output.exists()


def test_a_variant_that_changes_the_burn_in_gets_its_own():
    plan = plan_ablation(get_preset('shapes'), 'out', METHODS + ['unbiased-teacher'],
                         {'base': [], 'delta': ['method.delta=0.5'], 'strong': ['train.labeled_views=strong']}, [1])
    origin = {(r.method, r.variant): r.branch_from and (r.branch_from.method, r.branch_from.variant) for r in plan.runs}
    assert origin == {('supervised', 'base'): None, ('crossmatch', 'base'): ('supervised', 'base'),
                      ('unbiased-teacher', 'base'): ('supervised', 'base'), ('crossmatch', 'delta'): ('supervised', 'base'),
                      ('unbiased-teacher', 'delta'): ('supervised', 'base'), ('supervised', 'strong'): None,
                      ('crossmatch', 'strong'): ('supervised', 'strong'),
                      ('unbiased-teacher', 'strong'): ('supervised', 'strong')}
    # the supervised row of 'delta' is the supervised run of 'base' (δ changes nothing in a supervised run)
    assert next(run for m, v, _, run in plan.rows if (m, v) == ('supervised', 'delta')).variant == 'base'


def test_a_later_burn_in_branches_from_the_same_supervised_run(fits, tmp_path):
    """Burn-in 2 and 4 of a 6-iteration schedule: one supervised run serves both (its checkpoint at 4), and the branch
    from it equals CrossMatch branched from a supervised run of its own whose burn-in is 4."""
    short = SHORT + ['train.iterations=6']
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        shared = run_ablation(tmp_path / 'shared', METHODS, {'base': [], 'burn-in-4': ['train.burn_in=4']}, seeds=[1],
                              quick=True, overrides=short, progress=False)
        assert fits == [('supervised', 1, 0), ('crossmatch', 1, 2), ('crossmatch', 1, 4)]
        alone = run_ablation(tmp_path / 'alone', METHODS, {'burn-in-4': ['train.burn_in=4']}, seeds=[1], quick=True,
                             overrides=short, progress=False)
    assert sorted(p.name for p in (tmp_path / 'shared' / 'seed1' / 'burn-in-4').iterdir()) == ['crossmatch']
    branched, own = (pd.read_csv(tmp_path / folder / 'seed1' / 'burn-in-4' / 'crossmatch' / 'metrics.csv').query('iteration > 4')
                     for folder in ('shared', 'alone'))
    assert set(branched.kind) == {'train', 'eval'} and branched.iteration.max() == 6
    for column in ('loss', 'AP', 'AP50'):
        assert branched[column].tolist() == pytest.approx(own[column].tolist(), nan_ok=True), column
    rows = shared.set_index(['method', 'variant'])
    assert rows.loc[('supervised', 'burn-in-4'), 'run_dir'] == rows.loc[('supervised', 'base'), 'run_dir']
