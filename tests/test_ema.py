"The mean teacher follows a student wrapped in DistributedDataParallel (one gloo process on the CPU)."
import os
import socket
import pytest
import torch
import torch.distributed as dist
from torch import nn
from crossmatch.method.ema import MeanTeacher, unwrap_model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def process_group():
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()))
    dist.init_process_group('gloo', rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_ema_unwraps_ddp(process_group):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    student = nn.parallel.DistributedDataParallel(net)
    assert unwrap_model(student) is net
    teacher = MeanTeacher(student, alpha=0.75)
    assert set(teacher.model.state_dict()) == set(net.state_dict())  # no 'module.' prefix
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    opt = torch.optim.SGD(student.parameters(), lr=0.1)
    student(torch.randn(8, 3)).sum().backward()
    opt.step()
    teacher.update(student)
    for name, value in teacher.model.state_dict().items():
        expected = net.state_dict()[name]
        if value.is_floating_point(): expected = 0.75 * before[name] + 0.25 * expected
        torch.testing.assert_close(value, expected)
    assert not torch.equal(teacher.model[0].weight, net[0].weight)
    assert not teacher.model.training and not any(p.requires_grad for p in teacher.model.parameters())
    teacher.copy_from(student)
    for name, value in teacher.model.state_dict().items(): assert torch.equal(value, net.state_dict()[name])
