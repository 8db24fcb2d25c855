"""Side by side with an earlier commit: the CrossMatch iteration of the shapes preset and the whole `crossmatch demo`.

The old commit is checked out in a git worktree and run with `PYTHONPATH` pointing at it; the new code is this
checkout. Both run as a user runs them: the shapes preset's defaults (threads, loader workers, model), the same
generated data (`data/`), one process at a time, old and new interleaved so that a change in the machine's load hits
both.

1. CrossMatch iteration: a shapes-preset CrossMatch `Trainer` (burn-in 10) trains 5 semi-supervised iterations,
   then `fit` is timed over `--semi` more (no evaluation, no checkpoint): wall time per iteration with the loader
   and the logging, in one process per version and repeat. The median of the step times the trainer logs
   (`sec_per_iter`, the step alone) is printed beside it.
2. The demo (`crossmatch demo`, supervised 1,000 iterations, CrossMatch branched at 500) on each split seed k:
   `data.split_seed=k train.seed=k-1` (seed 1 is the demo's default). Wall time of the whole command, and the demo's
   numbers read from its runs' metrics: supervised (student) AP, CrossMatch teacher AP, and the gain.

    python benchmarks/side_by_side.py [--old f02fd21] [--new COMMIT] [--seeds 1 2 3] [--semi 100] [--repeats 2] [--skip-demo] [--skip-iteration]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import header  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / 'data'


def worktree(commit: str) -> Path:
    "A detached worktree of `commit` (made once, reused)."
    path = Path(tempfile.gettempdir()) / f'crossmatch-{commit}'
    if not (path / 'crossmatch').is_dir():
        subprocess.run(['git', '-C', str(REPO), 'worktree', 'add', '--detach', str(path), commit], check=True,
                       capture_output=True)
    return path


def run(kit: Path, args: list[str], cwd: Path) -> float:
    "Run `python -m crossmatch.cli args` with the kit at `kit`; its wall time in seconds."
    env = dict(os.environ, PYTHONPATH=str(kit), PYTHONHASHSEED='0', MPLBACKEND='Agg')
    started = time.perf_counter()
    done = subprocess.run([sys.executable, '-m', 'crossmatch.cli', *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0: raise RuntimeError(f"{kit}: crossmatch {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


ITERATION_DRIVER = """
import json, sys, time
import pandas as pd
from crossmatch.training.config import config_from_args
from crossmatch.training.trainer import Trainer
out, data, semi = sys.argv[1], sys.argv[2], int(sys.argv[3])
warm = 15  # burn-in 10, then 5 CrossMatch iterations before the clock starts
config = config_from_args('shapes', method='crossmatch', output=out, overrides=[
    f'data.root={data}', 'train.burn_in=10', f'train.iterations={warm + semi + 1}', 'train.eval_every=1000000',
    'train.checkpoint_every=1000000', 'train.log_every=1', 'method.ohem_ramp_iters=1'])
trainer = Trainer(config, progress=False)
trainer.fit(stop_at=warm)
started = time.perf_counter()
trainer.fit(stop_at=warm + semi)
wall = (time.perf_counter() - started) / semi
steps = pd.read_csv(f'{out}/metrics.csv').query("kind == 'train' and phase == 'semi'")['sec_per_iter'].iloc[5:]
print(json.dumps(dict(wall=wall, step=float(steps.median()))))
"""


def crossmatch_iteration(kit: Path, semi: int, out: Path) -> dict[str, float]:
    "Wall seconds per CrossMatch iteration over `semi` iterations of a shapes run (in one `fit`), and the logged step median."
    env = dict(os.environ, PYTHONPATH=str(kit), PYTHONHASHSEED='0', MPLBACKEND='Agg')
    done = subprocess.run([sys.executable, '-c', ITERATION_DRIVER, str(out), str(DATA), str(semi)], env=env,
                          capture_output=True, text=True, cwd=out.parent)
    if done.returncode != 0: raise RuntimeError(f"{kit}: the iteration driver failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def iteration(kits: dict[str, Path], semi: int, repeats: int, scratch: Path) -> pd.DataFrame:
    "Median over `repeats` (old and new interleaved) of the wall time per CrossMatch iteration and of the logged step."
    results = {name: [] for name in kits}
    for repeat in range(repeats):
        for name, kit in kits.items():
            results[name].append(crossmatch_iteration(kit, semi, scratch / f'iteration-{name}-{repeat}'))
    table = pd.DataFrame({name: {'s / CrossMatch iteration (wall, loading included)': statistics.median(r['wall'] for r in rows),
                                 's / step (logged by the trainer)': statistics.median(r['step'] for r in rows)}
                          for name, rows in results.items()})
    table['new / old'] = table['new'] / table['old']
    return table


def demo(kits: dict[str, Path], seeds: list[int], scratch: Path) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        for name, kit in kits.items():
            out = scratch / f'demo-{name}-{seed}'
            wall = run(kit, ['demo', '--output', str(out), '--no-progress', '--set', f'data.root={DATA}',
                             f'data.split_seed={seed}', f'train.seed={seed - 1}'], scratch)
            evals = {run_name: pd.read_csv(out / run_name / 'metrics.csv').query("kind == 'eval'")
                     for run_name in ('supervised', 'crossmatch')}
            sup = evals['supervised'].query("model == 'student'").iloc[-1]
            cm = evals['crossmatch'].query("model == 'teacher'").iloc[-1]
            rows.append(dict(seed=seed, kit=name, wall_s=wall, supervised_AP=sup['AP'], crossmatch_AP=cm['AP'],
                             gain_AP=cm['AP'] - sup['AP'], supervised_AP50=sup['AP50'], crossmatch_AP50=cm['AP50'],
                             gain_AP50=cm['AP50'] - sup['AP50']))
            row = rows[-1]
            print(f"seed {seed} {name}: wall {row['wall_s']:.0f} s, supervised AP {row['supervised_AP']:.2f}, CrossMatch "
                  f"teacher AP {row['crossmatch_AP']:.2f}, gain {row['gain_AP']:+.2f} AP / {row['gain_AP50']:+.2f} AP50", flush=True)
    return pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--old', default='f02fd21', help="the commit to compare against (default: %(default)s, main before issue 10)")
    parser.add_argument('--new', help="a commit to check out as the new version too (default: this checkout as it is)")
    parser.add_argument('--seeds', type=int, nargs='+', default=[1, 2, 3], help="demo split seeds (default: %(default)s)")
    parser.add_argument('--semi', type=int, default=100, help="timed CrossMatch iterations per run (default: %(default)s)")
    parser.add_argument('--repeats', type=int, default=2, help="runs per version, interleaved (default: %(default)s)")
    parser.add_argument('--skip-iteration', action='store_true')
    parser.add_argument('--skip-demo', action='store_true')
    parser.add_argument('--csv', type=Path, help="also write the demo rows here")
    args = parser.parse_args()
    commit = args.new or subprocess.run(['git', '-C', str(REPO), 'rev-parse', '--short', 'HEAD'], capture_output=True,
                                        text=True).stdout.strip()
    kits = {'old': worktree(args.old), 'new': worktree(args.new) if args.new else REPO}
    print(header())
    print(f"old: {args.old} (worktree {kits['old']}); new: {commit} ({kits['new']}); shapes preset defaults of each\n", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if not args.skip_iteration:
            table = iteration(kits, args.semi, args.repeats, scratch)
            print(f"CrossMatch iteration, shapes preset, median of {args.repeats} runs of {args.semi} iterations each:")
            print(table.round(3).to_string(), '\n', flush=True)
        if not args.skip_demo:
            print("crossmatch demo, per split seed:", flush=True)
            rows = demo(kits, args.seeds, scratch)
            if args.csv: rows.to_csv(args.csv, index=False)
            print(rows.set_index(['seed', 'kit']).round(2).to_string())
            means = rows.groupby('kit')[['wall_s', 'supervised_AP', 'crossmatch_AP', 'gain_AP', 'gain_AP50']].mean()
            print(f"\nmean over seeds {args.seeds}:")
            print(means.loc[['old', 'new']].round(2).to_string())
            walls = rows.pivot(index='seed', columns='kit', values='wall_s')
            print(f"demo wall time new / old: per seed {(walls['new'] / walls['old']).round(3).tolist()}, "
                  f"of the means {means.loc['new', 'wall_s'] / means.loc['old', 'wall_s']:.3f}")


if __name__ == '__main__':
    main()
