"Longer checks of crossmatch.data.loader and .augment: worker counts, DDP shards over several epochs, resuming, distributed defaults."
from itertools import islice

import pytest
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from crossmatch.data import loader as loader_module
from crossmatch.data.augment import WeakStrong, strong_photometric, ERASING_TABLE5
from crossmatch.data.loader import TwoStreamLoader


class RandomBoxes(Dataset):
    "Random uint8 images with two boxes each (boxes only when `labeled`), a pure function of the index."
    def __init__(self, n, labeled=True, size=(40, 56), bad_index=None):
        self.n, self.labeled, self.size, self.bad_index = n, labeled, size, bad_index
    def __len__(self): return self.n
    def __getitem__(self, index):
        g = torch.Generator().manual_seed(index)
        image = tv_tensors.Image(torch.randint(0, 256, (3, *self.size), generator=g, dtype=torch.uint8))
        target = {'image_id': 500 + index}
        if self.labeled and index != self.bad_index:
            xy = torch.rand(2, 2, generator=g) * 20
            target['boxes'] = tv_tensors.BoundingBoxes(torch.cat([xy, xy + 10], 1), format='XYXY', canvas_size=self.size)
            target['labels'] = torch.tensor([1, 2])
        return image, target


def same(a, b):
    if isinstance(a, dict): return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)): return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, torch.Tensor): return type(a) is type(b) and torch.equal(a, b)
    return a == b


def take(loader, n): return list(islice(iter(loader), n))


def ids(batch_list, stream=0):
    return [t['image_id'] for batch in batch_list for t in batch[stream][-1]]


def loader(**kw):
    kw = {'augment': WeakStrong(v2.RandomShortestSize([32, 48], 80), photometric_labeled=True),
          'batch_labeled': 2, 'batch_unlabeled': 3, **kw}
    return TwoStreamLoader(RandomBoxes(7), RandomBoxes(9, labeled=False), **kw)


def test_workers_do_not_change_batches():
    reference = take(loader(seed=3), 4)
    assert same(take(loader(seed=3, num_workers=2), 4), reference)
    assert same(take(loader(seed=3, num_workers=1), 4), reference)
    assert not same(take(loader(seed=4, num_workers=2), 4), reference)


def test_resume_reproduces_every_iteration():
    full = take(loader(seed=1), 8)  # 16 labeled draws of 7: crosses two epoch boundaries
    for start in range(8):
        assert same(take(loader(seed=1, start_iteration=start), 1)[0], full[start]), start
    assert same(take(loader(seed=1, start_iteration=5, num_workers=2), 3), full[5:])


@pytest.mark.parametrize('world_size', [2, 3])
def test_ranks_share_each_epoch(world_size):
    n = 10  # not divisible by 3: the first rank gets one more sample
    per_rank = {}
    for rank in range(world_size):
        share = len(range(rank, n, world_size))
        got = take(TwoStreamLoader(RandomBoxes(n), RandomBoxes(3, labeled=False), batch_labeled=1, batch_unlabeled=1,
                                   seed=7, rank=rank, world_size=world_size), 2 * share)
        per_rank[rank] = (ids(got[:share]), ids(got[share:]))
    for epoch in (0, 1):
        shares = [set(per_rank[r][epoch]) for r in range(world_size)]
        assert sum(len(s) for s in shares) == n and set().union(*shares) == {500 + i for i in range(n)}
    assert per_rank[0][0] != per_rank[0][1], "each epoch has its own permutation"


def test_rank_defaults_come_from_torch_distributed(monkeypatch):
    monkeypatch.setattr(loader_module.dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(loader_module.dist, 'get_rank', lambda: 1)
    monkeypatch.setattr(loader_module.dist, 'get_world_size', lambda: 2)
    from_dist = loader(seed=2)
    assert (from_dist.rank, from_dist.world_size) == (1, 2)
    assert same(take(from_dist, 3), take(loader(seed=2, rank=1, world_size=2), 3))


def test_labeled_photometric_flag_keeps_boxes():
    plain = take(loader(seed=5, augment=WeakStrong(v2.RandomShortestSize([32, 48], 80))), 3)
    strong = take(loader(seed=5, augment=WeakStrong(v2.RandomShortestSize([32, 48], 80), photometric_labeled=True)), 3)
    for (p_images, p_targets), (s_images, s_targets) in zip((b[0] for b in plain), (b[0] for b in strong)):
        assert same(p_targets, s_targets)
        assert [i.shape for i in p_images] == [i.shape for i in s_images]
    assert not same([b[0][0] for b in plain], [b[0][0] for b in strong])


def test_hidden_ground_truth_follows_the_shared_geometry():
    "An unlabeled sample that carries boxes gets them flipped and resized with both views."
    erase_all = strong_photometric(erasing=[(1., s, r) for _, s, r in ERASING_TABLE5])
    ws = WeakStrong(v2.RandomShortestSize(20, 100), flip_p=1., photometric=erase_all)
    image, target = RandomBoxes(1)[0]
    weak, strong, out = ws.weak_and_strong(image, target)
    b = target['boxes']  # on a 56-px-wide image: flip x ↦ 56 − x, then scale by 20/40 = 28/56 = 0.5
    expected = torch.stack([56 - b[:, 2], b[:, 1], 56 - b[:, 0], b[:, 3]], 1) * 0.5
    assert torch.allclose(out['boxes'], expected)
    assert weak.shape == strong.shape == (3, 20, 28) and not torch.equal(weak, strong)
    assert out['geometry'] == {'flipped': True, 'original_size': (40, 56), 'size': (20, 28)}


def test_bad_samples_are_named():
    with pytest.raises(ValueError, match=r"labeled dataset index 0 \(image_id 500\).*'boxes'"):
        TwoStreamLoader(RandomBoxes(4, bad_index=0), RandomBoxes(4, labeled=False))
    with pytest.raises(ValueError, match="unlabeled dataset is empty"):
        TwoStreamLoader(RandomBoxes(4), RandomBoxes(0, labeled=False))
    with pytest.raises(ValueError, match=r"labeled dataset index 2 \(image_id 502\)"):
        take(TwoStreamLoader(RandomBoxes(4, bad_index=2), RandomBoxes(4, labeled=False), batch_labeled=4), 1)


@pytest.mark.parametrize('views', ['strong', 'both'])
def test_labeled_views_with_workers_shards_and_resume(views):
    "The labeled views (issue 11): workers, ranks and a resume give the batches of one process, for every setting."
    resized = WeakStrong(v2.RandomShortestSize([32, 48], 80))  # weak labeled views without photometric ops
    def loader_(**kw): return loader(augment=resized, **kw)
    base = take(loader_(seed=2, labeled_views=views), 4)
    assert same(take(loader_(seed=2, labeled_views=views, num_workers=2), 4), base)
    assert same(take(loader_(seed=2, labeled_views=views, start_iteration=2), 2), base[2:])
    weak = take(loader_(seed=2), 4)
    for (images, targets), ((weak_images, weak_targets), _) in zip([b[0] for b in base], weak):
        if views == 'both':
            assert len(images) == 4 and same(images[:2], weak_images) and same(targets, weak_targets + weak_targets)
        else:
            assert len(images) == 2 and same(targets, weak_targets)
        strong_images = images[2:] if views == 'both' else images
        # same geometry as the weak views (sizes and boxes), other pixels
        assert [i.shape for i in strong_images] == [i.shape for i in weak_images]
        assert not any(torch.equal(s, w) for s, w in zip(strong_images, weak_images))
    shards = [take(loader_(seed=2, labeled_views=views, rank=r, world_size=2), 2) for r in (0, 1)]
    ranks_ids = [{t['image_id'] for batch in shard for t in batch[0][1]} for shard in shards]
    assert not ranks_ids[0] & ranks_ids[1]


def test_weak_labeled_views_is_the_default_loader():
    assert same(take(loader(seed=6, labeled_views='weak'), 3), take(loader(seed=6), 3))
