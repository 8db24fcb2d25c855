#!/usr/bin/env bash
# Behaviour check for refactors: `crossmatch demo --quick` and a 60-iteration shapes CrossMatch run, printed so that
# two versions of the kit can be compared line by line. Usage: bash benchmarks/same_numbers.sh [KIT_DIR] [OUT_DIR]
# KIT_DIR is a checkout of the kit (default: this one; an old commit via `git worktree add /tmp/old <commit>`).
set -euo pipefail
kit=$(cd "${1:-$(dirname "$0")/..}" && pwd)
out=${2:-$(mktemp -d)}
data=$(cd "$(dirname "$0")/.." && pwd)/data
mkdir -p "$out"
export PYTHONPATH="$kit" PYTHONHASHSEED=0 MPLBACKEND=Agg
cd "$out"
rm -rf demo run60 run60-delta
python -m crossmatch.cli demo --quick --output demo --no-progress --set data.root="$data" train.threads=2 data.num_workers=0 \
  | grep -v -E '^(AP curves|runs|wall time)'
python -m crossmatch.cli train --preset shapes --output run60 --no-progress --set data.root="$data" \
  data.shapes_preset=quick train.iterations=60 train.burn_in=30 train.log_every=10 train.eval_every=60 \
  train.checkpoint_every=60 train.max_eval_images=32 train.batch_labeled=4 train.batch_unlabeled=4 \
  method.ohem_k=32 method.ohem_ramp_iters=10 data.num_workers=0 train.threads=2
# the same run with δ low enough that the teacher's detections become pseudo-boxes (the hard branch at work)
python -m crossmatch.cli train --preset shapes --output run60-delta --no-progress --set data.root="$data" \
  data.shapes_preset=quick train.iterations=60 train.burn_in=30 train.log_every=10 train.eval_every=60 \
  train.checkpoint_every=60 train.max_eval_images=32 train.batch_labeled=4 train.batch_unlabeled=4 \
  method.ohem_k=32 method.ohem_ramp_iters=10 data.num_workers=0 train.threads=2 method.delta=0.05
python - <<'PY'
import pandas as pd
cols = ['iteration', 'kind', 'phase', 'model', 'loss', 'sup_roi_cls', 'hard_roi_cls', 'soft_kl',
        'pseudo_boxes_per_image', 'AP', 'AP50']
for run in ('demo/supervised', 'demo/crossmatch', 'run60', 'run60-delta'):
    m = pd.read_csv(f'{run}/metrics.csv')
    print(f'== {run}')
    print(m[[c for c in cols if c in m]].to_string(na_rep='', float_format=lambda v: f'{v:.6f}'))
PY
