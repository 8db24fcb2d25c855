"""Helpers shared by the test files."""
from pathlib import Path
from crossmatch.training.config import config_from_args

REPO = Path(__file__).resolve().parents[1]


def paper_run_config(output, train_sizes: list[int], min_size: int, max_size: int, *overrides: str):
    "A short CrossMatch run of the paper's detector from scratch on the quick shapes set: both labeled views, focal loss."
    return config_from_args('shapes', overrides=[
        'model.arch=paper', 'model.weights=', f'model.train_min_sizes={list(train_sizes)}', f'model.min_size={min_size}',
        f'model.max_size={max_size}', 'train.labeled_views=both', 'method.supervised_focal=true',
        'data.shapes_preset=quick', f'data.root={REPO / "data"}', 'data.num_workers=0', *overrides],
        method='crossmatch', output=str(output))


def record_rpn_sizes(model, with_mode=False):
    "Every `image_sizes` that reaches the RPN (the frame the backbone saw), in call order; with the training flag."
    seen = []
    def hook(module, args):
        sizes = [tuple(s) for s in args[0].image_sizes]
        seen.append((module.training, sizes) if with_mode else sizes)
    model.rpn.register_forward_pre_hook(hook)
    return seen
