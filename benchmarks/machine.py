"""The machine header every benchmark prints first: CPU model, core count, torch and torchvision versions (and the GPU
when one is used) and the kit's commit, so that a table pasted elsewhere still says where and on what it was measured.

    from machine import header
    print(header(threads=2))
"""
from __future__ import annotations
import os, platform, subprocess, sys

import torch
import torchvision


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (/proc/cpuinfo on Linux, with its family and model numbers, which
    tell a generation apart where a virtual machine only says 'AMD EPYC'), else what `platform` knows."""
    fields = {}
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                if not line.strip(): break  # the first processor's block is enough
                key, _, value = line.partition(':')
                fields[key.strip().lower()] = value.strip()
    except OSError: pass
    if 'model name' not in fields: return platform.processor() or platform.machine() or 'unknown CPU'
    numbers = [f"{k} {fields[k]}" for k in ('cpu family', 'model') if k in fields]
    return fields['model name'] + (f" ({', '.join(numbers)})" if numbers else '')


def usable_cores() -> int:
    "Cores this process may run on (its affinity mask where the OS has one), else the machine's count."
    try: return len(os.sched_getaffinity(0))
    except (AttributeError, OSError): return os.cpu_count() or 1


def load_average() -> str:
    "The 1-minute load average ('n/a' where the OS has none): other work on the machine skews CPU timings."
    try: return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError): return 'n/a'


def niceness() -> str:
    "This process's nice value ('n/a' where the OS has none): benchmarks run at `nice -n 19` on a shared machine."
    try: return str(os.nice(0))
    except (AttributeError, OSError): return 'n/a'


def kit_version() -> str:
    "The commit of the kit these benchmarks run, and whether the library's files differ from it (the lead edits them)."
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=repo, capture_output=True, text=True,
                                check=True).stdout.strip()
        changed = subprocess.run(['git', 'status', '--porcelain', '--', 'crossmatch'], cwd=repo, capture_output=True,
                                 text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError): return 'kit: not a git checkout'
    return f"kit: commit {commit}" + (" with uncommitted changes in crossmatch/" if changed else '')


def header(device: str | torch.device = 'cpu', threads: int | None = None) -> str:
    "Two lines: CPU, cores, torch threads, load, niceness (and the GPU when `device` is CUDA); Python, torch, torchvision, the kit's commit."
    device = torch.device(device)
    threads = torch.get_num_threads() if threads is None else threads
    lines = [f"machine: {cpu_model()}, {usable_cores()} cores ({os.cpu_count()} logical CPUs), "
             f"{threads} torch threads, load average {load_average()}, nice {niceness()}",
             f"software: Python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}; "
             f"{kit_version()}"]
    if device.type == 'cuda':
        index = device.index if device.index is not None else torch.cuda.current_device()
        lines[0] += f"; GPU {torch.cuda.get_device_name(index)} (CUDA {torch.version.cuda})"
    return '\n'.join(lines)


if __name__ == '__main__':
    print(header(sys.argv[1] if len(sys.argv) > 1 else 'cpu'))
