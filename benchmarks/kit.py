"""How the benchmarks set the kit up: the `--model`/`--size` overrides, trainers past burn-in that share data and initial
weights, and the stock torchvision twin of a kit detector. Shared by the scripts in this folder; nothing here is timed.

Models (`--model`):
- `tiny`: the kit's CPU detector (`model.CONFIGS['tiny']`) at the quick shapes images' own 128 px; batch 8 + 8.
- `paper`: torchvision's ResNet-50-FPN from scratch (`model.arch=paper model.weights=`), the training images resized by the
  loader to short side `--size` (`model.train_min_sizes=[N]`, the test size `model.min_size=N`, long side capped at
  N·5/3), RPN post-NMS 1000 and positive fraction 0.25 as in the paper presets; batch 2 + 2 quick shapes images.
"""
from __future__ import annotations
from pathlib import Path

import torch
from torchvision.models.detection import FasterRCNN, fasterrcnn_resnet50_fpn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

from crossmatch.training.config import Config, config_from_args
from crossmatch.model.detector import detector_config, tiny_fpn_backbone
from crossmatch.model.roialign import LevelRoIAlign
from crossmatch.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
MODELS = ('tiny', 'paper')
BATCH = {'tiny': (8, 8), 'paper': (2, 2)}  # (labeled, unlabeled) images per step
PAPER_K = 256  # OHEM's K in the paper presets (the shapes preset's 64 is sized for the tiny model)


def model_overrides(model: str, size: int | None) -> list[str]:
    "Config overrides for `--model` at short side `size` (None: the architecture's own size; 320 for the paper model)."
    if model not in MODELS: raise ValueError(f"--model must be one of {MODELS}, got {model!r}")
    if model == 'tiny':
        return [] if size in (None, 128) else [f'model.min_size={size}', f'model.max_size={size * 5 // 3}']
    size = size or 320
    return ['model.arch=paper', 'model.weights=', f'model.min_size={size}', f'model.max_size={size * 5 // 3}',
            f'model.train_min_sizes=[{size}]', 'model.rpn_post_nms_top_n_train=1000', 'model.rpn_positive_fraction=0.25',
            f'method.ohem_k={PAPER_K}']


def describe(model: str, size: int | None) -> str:
    "A few words naming the model and its image size, for the tables' titles."
    if model == 'tiny': return f"tiny model, {size or 128} px"
    return f"paper model (R50-FPN from scratch), {size or 320} px"


def run_config(method: str, output: Path, model: str = 'tiny', size: int | None = None, threads: int = 2,
               batch: tuple[int, int] | None = None, shapes: str = 'quick', device: str = 'cpu',
               extra: list[str] = ()) -> Config:
    "The shapes preset with the benchmark's data, model, threads, batch and device; no logging inside the steps."
    labeled, unlabeled = batch or BATCH[model]
    overrides = [f'data.shapes_preset={shapes}', 'data.percent=20', f'data.root={REPO / "data"}', 'data.num_workers=0',
                 f'train.device={device}', f'train.threads={threads}', f'train.batch_labeled={labeled}',
                 f'train.batch_unlabeled={unlabeled}', 'train.log_every=1000000',  # no hidden-ground-truth diagnostics
                 *model_overrides(model, size), *extra]
    return config_from_args('shapes', overrides=overrides, method=method, output=str(output))


def past_burn_in(trainer: Trainer) -> Trainer:
    "Put `trainer` after burn-in (teacher ← student done) and past OHEM's ramp (K RoIs per level: the steady state)."
    trainer.config.train.burn_in = 0
    trainer.teacher.copy_from(trainer.model)
    trainer.iteration = trainer.config.method.ohem_ramp_iters + 1
    return trainer


def in_burn_in(trainer: Trainer) -> Trainer:
    "Keep `trainer` in burn-in for as many steps as a benchmark takes: `Trainer.step` is the supervised step."
    trainer.config.train.burn_in = trainer.config.train.iterations = 10 ** 9
    return trainer


def check_threads(expected: int):
    "Fail loudly if torch's thread count is not the one asked for (something reset it)."
    found = torch.get_num_threads()
    if found != expected: raise RuntimeError(f"torch uses {found} threads inside the timed region, --threads asked {expected}")


def stock_twin(kit: FasterRCNN, config: Config, num_classes: int, pooler: str = 'stock') -> FasterRCNN:
    """A plain torchvision `FasterRCNN` of `kit`'s architecture, built with torchvision's API, holding `kit`'s weights.

    `pooler='stock'`: torchvision's `MultiScaleRoIAlign`; `'kit'`: the kit's `LevelRoIAlign` (same arguments), to show
    what the pooler alone accounts for. The transform is torchvision's `GeneralizedRCNNTransform` (it resizes to
    min_size in training too; fed images already at that size it keeps their size)."""
    d = detector_config(config.model)
    pool_class = {'stock': MultiScaleRoIAlign, 'kit': LevelRoIAlign}[pooler]
    roi_pool = pool_class(['0', '1', '2', '3'], output_size=7, sampling_ratio=d.sampling_ratio,
                          canonical_scale=d.canonical_scale, canonical_level=d.canonical_level)
    anchors = AnchorGenerator(tuple((s,) for s in d.anchor_sizes), (d.aspect_ratios,) * 5)
    options = dict(min_size=d.min_size, max_size=d.max_size, rpn_anchor_generator=anchors, box_roi_pool=roi_pool,
                   box_batch_size_per_image=d.box_batch_size_per_image,
                   rpn_pre_nms_top_n_train=d.rpn_pre_nms_top_n_train, rpn_post_nms_top_n_train=d.rpn_post_nms_top_n_train,
                   rpn_pre_nms_top_n_test=d.rpn_pre_nms_top_n_test, rpn_post_nms_top_n_test=d.rpn_post_nms_top_n_test,
                   rpn_positive_fraction=d.rpn_positive_fraction)
    if d.backbone == 'resnet50':
        stock = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes, **options)
    else:
        stock = FasterRCNN(tiny_fpn_backbone(d.stage_widths, d.fpn_channels, d.norm),
                           box_head=TwoMLPHead(d.fpn_channels * 7 * 7, d.representation_size),
                           box_predictor=FastRCNNPredictor(d.representation_size, num_classes), **options)
    stock.load_state_dict(kit.state_dict())
    return stock.to(next(kit.parameters()).device).train(kit.training)
