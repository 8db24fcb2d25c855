"""Peak memory of one training step: CrossMatch vs hard-only (Unbiased Teacher), tiny model, batch 8 + 8.

Each measurement runs in a fresh subprocess (this script with `--child METHOD`), so that no method inherits another's
allocator state. The child builds the trainer past burn-in and OHEM's ramp (as benchmarks/step_timing.py does), takes
one batch (8 labeled + 8 unlabeled quick-shapes images), runs `--warmup` steps (the optimiser's momentum buffers and
every lazily built object exist afterwards), and then measures `--steps` steps of `Trainer.step`:

- CPU: the peak growth of the resident set during the measured steps. Before them the child returns freed heap memory
  to the OS (glibc `malloc_trim(0)`), resets the kernel's high-water mark of its resident set (`echo 5 >
  /proc/self/clear_refs`, Linux ≥ 4.0) and reads its current resident set; after them it reads the high-water mark
  (`resource.getrusage(RUSAGE_SELF).ru_maxrss`). Peak growth = high-water mark − resident set before the steps: the
  activations, gradients and temporaries a step holds at its fullest. The parent starts the child with glibc's mmap
  threshold fixed at 128 KiB (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`), so every tensor above that size gets
  its own mapping that returns to the OS when freed: the resident set follows the live tensors instead of a heap that
  keeps its high tide (glibc otherwise raises the threshold after the first large frees, up to 32 MiB).
- CUDA (`--device cuda`): `torch.cuda.max_memory_allocated()` − `torch.cuda.memory_allocated()` before the steps, after
  `torch.cuda.reset_peak_memory_stats()`: the caching allocator's peak of live tensor memory.

The methods alternate (crossmatch, hard-only, crossmatch, …; `--repeats` children per method) and the table gives the
median of their peaks (and the spread); the ratio is crossmatch / hard-only of the medians. The models are untrained:
the soft branch's memory (every teacher proposal at every level, K kept per level) does not depend on that, the hard
branch's pseudo-boxes are few.

    python benchmarks/step_memory.py [--repeats 3] [--warmup 1] [--steps 2] [--threads 2] [--device cpu]
"""
import argparse, ctypes, json, os, resource, statistics, subprocess, sys, tempfile
from pathlib import Path

import torch

METHODS = ('crossmatch', 'unbiased-teacher')
MIB = 2 ** 20


def resident_bytes() -> int:
    "The current resident set of this process (Linux /proc/self/statm)."
    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def peak_resident_bytes() -> int:
    "The high-water mark of this process's resident set (ru_maxrss is in KiB on Linux)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak() -> bool:
    "Return freed heap memory to the OS and reset the resident set's high-water mark; False if the kernel refuses."
    try: ctypes.CDLL('libc.so.6').malloc_trim(0)
    except OSError: pass
    try:
        with open('/proc/self/clear_refs', 'w') as f: f.write('5')
    except OSError: return False
    return True


def child(method: str, device: str, threads: int, warmup: int, steps: int) -> dict:
    "Set up, warm up, then the peak memory growth of `steps` steps of `method` (runs in its own process)."
    from crossmatch.training.trainer import Trainer
    from kit import check_threads, past_burn_in, run_config
    with tempfile.TemporaryDirectory() as scratch:
        trainer = past_burn_in(Trainer(run_config(method, Path(scratch) / method, 'tiny', threads=threads, device=device),
                                       progress=False))
        labeled, unlabeled = next(iter(trainer.loader()))
        for _ in range(warmup): trainer.step(labeled, unlabeled)
        check_threads(threads)
        if trainer.device.type == 'cuda':
            torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            for _ in range(steps): trainer.step(labeled, unlabeled)
            torch.cuda.synchronize()
            return dict(peak=torch.cuda.max_memory_allocated() - before, before=before, how='cuda max_memory_allocated')
        if not reset_peak(): raise RuntimeError("cannot reset the resident set's high-water mark (/proc/self/clear_refs)")
        before = resident_bytes()
        for _ in range(steps): trainer.step(labeled, unlabeled)
        check_threads(threads)
        return dict(peak=peak_resident_bytes() - before, before=before, how='resident set high-water mark')


def measure(method: str, args) -> dict:
    "One fresh child process's measurement of `method`."
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='131072', MALLOC_TRIM_THRESHOLD_='131072')
    command = [sys.executable, __file__, '--child', method, '--device', args.device, '--threads', str(args.threads),
               '--warmup', str(args.warmup), '--steps', str(args.steps)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0: raise RuntimeError(f"child {method} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(args):
    results = {m: [] for m in METHODS}
    for _ in range(args.repeats):
        for method in METHODS: results[method].append(measure(method, args))
    from machine import header
    print(header(args.device, threads=args.threads))
    how = results[METHODS[0]][0]['how']
    print(f"peak memory growth during {args.steps} step(s) after {args.warmup} warm-up, tiny model, 8 labeled + 8 "
          f"unlabeled quick-shapes images, {args.device}, {args.threads} threads; {how}; median of {args.repeats} "
          f"fresh processes per method, alternating")
    print(f"{'method':<18}{'peak MB':>9}{'min MB':>9}{'max MB':>9}{'before MB':>11}{'× hard-only':>13}")
    peaks = {m: statistics.median(r['peak'] for r in results[m]) / MIB for m in METHODS}
    for m in METHODS:
        values = [r['peak'] / MIB for r in results[m]]
        before = statistics.median(r['before'] for r in results[m]) / MIB
        print(f"{m:<18}{peaks[m]:>9.1f}{min(values):>9.1f}{max(values):>9.1f}{before:>11.1f}"
              f"{peaks[m] / peaks['unbiased-teacher']:>13.2f}")
    print(f"crossmatch / hard-only (unbiased-teacher) peak memory: {peaks['crossmatch'] / peaks['unbiased-teacher']:.2f}")
    print("(MB = 2^20 bytes; 'before': resident set, or CUDA memory allocated, when the measured steps start)")


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeats', type=int, default=3, help="fresh processes per method (default: %(default)s)")
    parser.add_argument('--warmup', type=int, default=1, help="unmeasured steps in each process first (default: %(default)s)")
    parser.add_argument('--steps', type=int, default=2, help="measured steps in each process (default: %(default)s)")
    parser.add_argument('--threads', type=int, default=2, help="torch CPU threads (default: %(default)s)")
    parser.add_argument('--device', default='cpu', help="cpu, cuda or cuda:N (default: %(default)s)")
    parser.add_argument('--child', choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child: print(json.dumps(child(args.child, args.device, args.threads, args.warmup, args.steps)))
    else: main(args)
