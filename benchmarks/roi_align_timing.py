"""RoIAlign forward + backward on the CPU: torchvision's `roi_align` vs the kit's `roialign.grid_roi_align`.

The tiny model's busiest pooling: 1,024 RoIs (128 per image) on its P2 map (8 images, 64 channels, 32 × 32, stride
4), 7 × 7 bins, one sample per bin (`--ratio`). Each repeat runs both implementations, interleaved; the median of
`--repeats` after `--warmup` is printed, and the largest difference of values and gradients.

    python benchmarks/roi_align_timing.py [--threads 2] [--repeats 12] [--warmup 2] [--ratio 1]
"""
import argparse, statistics, sys, time
from pathlib import Path

import torch
from torchvision.ops import roi_align

from crossmatch.model.roialign import grid_roi_align

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import header  # noqa: E402


def main(threads: int, repeats: int, warmup: int, ratio: int):
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    features = torch.randn(8, 64, 32, 32, generator=g, requires_grad=True)
    xy = torch.rand(1024, 2, generator=g) * 100
    rois = torch.cat([torch.arange(8).repeat_interleave(128)[:, None].float(), xy,
                      (xy + 2 + torch.rand(1024, 2, generator=g) * 60).clamp(max=128)], 1)
    weights = torch.randn(1024, 64, 7, 7, generator=g)
    ops = {'torchvision roi_align': roi_align, 'kit grid_roi_align': grid_roi_align}
    outputs = {name: op(features, rois, 7, 0.25, ratio) for name, op in ops.items()}
    grads = {name: torch.autograd.grad((out * weights).sum(), features)[0] for name, out in outputs.items()}
    times = {name: [] for name in ops}
    for repeat in range(warmup + repeats):
        for name, op in ops.items():
            started = time.perf_counter()
            (op(features, rois, 7, 0.25, ratio) * weights).sum().backward()
            if repeat >= warmup: times[name].append(time.perf_counter() - started)
            features.grad = None
    print(header(threads=threads))
    print(f"1,024 RoIs on (8, 64, 32, 32), 7 × 7 bins, sampling ratio {ratio}: forward + backward, median of {repeats}")
    base = statistics.median(times['torchvision roi_align'])
    for name, t in times.items():
        print(f"{name:<24}{1000 * statistics.median(t):8.1f} ms   × torchvision {statistics.median(t) / base:.2f}")
    a, b = (o.detach() for o in outputs.values()); ga, gb = grads.values()
    print(f"largest difference: value {float((a - b).abs().max()):.1e}, gradient {float((ga - gb).abs().max()):.1e} (float32)")


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=12)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--ratio', type=int, default=1)
    args = parser.parse_args()
    main(args.threads, args.repeats, args.warmup, args.ratio)
