"Checks of crossmatch.model.detector that write files or train: weights files, a run's model, and a supervised step of the tiny detector."
import pytest
import torch
from crossmatch.model.detector import ModelConfig, build_detector, build_model


def test_weights_file_that_is_not_a_state_dict_names_the_file(tmp_path):
    path = tmp_path / 'list.pth'
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match='list.pth'):
        build_detector('tiny', num_classes=4, weights=path)


def test_missing_weights_file_fails_before_building(tmp_path):
    with pytest.raises(FileNotFoundError, match='absent.pt'):
        build_detector('tiny', num_classes=4, weights=tmp_path / 'absent.pt')


@pytest.mark.parametrize('norm', ['batch', 'group'])
def test_tiny_detector_trains_and_reloads(tmp_path, norm):
    torch.manual_seed(0)
    model = build_detector('tiny', num_classes=4, norm=norm)
    images = [torch.rand(3, 128, 128) for _ in range(2)]
    targets = [{'boxes': torch.tensor([[8., 8., 40., 40.]]), 'labels': torch.tensor([1])},
               {'boxes': torch.tensor([[30., 20., 120., 100.], [2., 2., 12., 12.]]), 'labels': torch.tensor([2, 3])}]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    losses = model(images, targets)
    assert set(losses) == {'loss_classifier', 'loss_box_reg', 'loss_objectness', 'loss_rpn_box_reg'}
    sum(losses.values()).backward()
    optimizer.step()
    path = tmp_path / 'trained.pt'
    torch.save(model.state_dict(), path)
    reloaded = build_detector('tiny', num_classes=4, norm=norm, weights=path).eval()
    model.eval()
    with torch.no_grad():
        for ours, theirs in zip(model(images), reloaded(images)):
            assert torch.equal(ours['boxes'], theirs['boxes']) and torch.equal(ours['labels'], theirs['labels'])


def test_build_model_applies_the_resize_override_and_the_weights_file(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch='tiny', min_size=320, max_size=427), num_classes=4)
    assert (model.transform.min_size, model.transform.max_size) == ((320,), 427)
    default = build_model(ModelConfig(arch='tiny'), num_classes=4)
    assert (default.transform.min_size, default.transform.max_size) == ((128,), 128)
    path = tmp_path / 'weights.pt'
    torch.save(model.state_dict(), path)
    config = ModelConfig(arch='tiny', weights=str(path))
    loaded, fresh = build_model(config, 4), build_model(config, 4, load_weights=False)
    state = model.state_dict()
    assert all(torch.equal(value, state[name]) for name, value in loaded.state_dict().items())
    assert not torch.equal(fresh.roi_heads.box_predictor.cls_score.weight, state['roi_heads.box_predictor.cls_score.weight'])
