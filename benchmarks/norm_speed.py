"""Wall time of one supervised training step of the tiny detector with batch norm and with group norm.

`12_model` chose batch norm for the tiny backbone on what it does to training; this measures what it costs in speed.
Both detectors train on the same batches in one process (8 images of 128×128 noise with 1–5 bright squares, stock
torchvision losses, SGD), steps alternating between them so that a change in the machine's load hits both alike; the
median of the steps after `--warmup` is reported, and the ratio batch / group.

    python benchmarks/norm_speed.py [--steps 9] [--warmup 2] [--threads 2]
"""
import argparse, statistics, time

import torch

from crossmatch.model.detector import build_detector
from machine import header


def random_batch(generator: torch.Generator, size: int = 8):
    "Images of noise with 1–5 bright squares of 8–128 px, labels 1..3."
    images, targets = [], []
    for _ in range(size):
        image, boxes, labels = torch.rand(3, 128, 128, generator=generator) * 0.3, [], []
        for _ in range(int(torch.randint(1, 6, (1,), generator=generator))):
            side = float(torch.empty(1).uniform_(2.1, 4.8, generator=generator).exp().floor())
            x, y = (torch.rand(2, generator=generator) * (128 - side)).floor().tolist()
            label = int(torch.randint(1, 4, (1,), generator=generator))
            image[label - 1, int(y):int(y + side), int(x):int(x + side)] = 1.
            boxes.append([x, y, x + side, y + side]); labels.append(label)
        images.append(image); targets.append({'boxes': torch.tensor(boxes), 'labels': torch.tensor(labels)})
    return images, targets


def step_seconds(models: dict, batches, warmup: int) -> dict:
    "Median seconds of a supervised step per model, the steps alternating between the models."
    optimizers = {name: torch.optim.SGD(m.parameters(), lr=0.02, momentum=0.9) for name, m in models.items()}
    times = {name: [] for name in models}
    for images, targets in batches:
        for name, model in models.items():
            model.train(); start = time.perf_counter()
            loss = sum(model(images, targets).values())
            optimizers[name].zero_grad(); loss.backward(); optimizers[name].step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t[warmup:]) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=9)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(header(threads=args.threads))
    batches = [random_batch(torch.Generator().manual_seed(i)) for i in range(args.steps)]
    speed = step_seconds({norm: build_detector('tiny', 4, norm=norm) for norm in ('batch', 'group')}, batches, args.warmup)
    for norm, seconds in speed.items(): print(f"{norm} norm: {seconds:.3f} s / step (median of {args.steps - args.warmup})")
    print(f"batch / group: {speed['batch'] / speed['group']:.2f}")


if __name__ == '__main__':
    main()
