import pytest
import torch
from torch import nn

from nasmix import registry
from nasmix.checkpoint import CheckpointWarning
from nasmix.data import load_dataset
from nasmix.data.base import ImageArrays
from nasmix.errors import ConfigError
from nasmix.train import DivergedError, TrainConfig, cosine_lr, train


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic")


def _net(data, seed=0):
    torch.manual_seed(seed)
    return registry.create("model", "resnet20", width=4).build(data.task)


CFG = TrainConfig(epochs=3, batch_size=40, lr=0.05, checkpoint_every=1, seed=5)


def test_training_learns_the_synthetic_task(data):
    result = train(
        _net(data), data.train, data.task, TrainConfig(epochs=4, batch_size=20, lr=0.05), test=data.test
    )
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert result.final["test_top1"] > 0.3 and result.final["test_top5"] >= result.final["test_top1"]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_resume_matches_uninterrupted_run(data, tmp_path):
    full = train(
        _net(data), data.train, data.task, CFG, test=data.test, valid=data.test, checkpoint_dir=tmp_path / "a"
    )

    class Stop(Exception):
        pass

    def kill_after_two(event):
        if event["event"] == "epoch" and event["epoch"] == 2:
            raise Stop

    with pytest.raises(Stop):
        train(
            _net(data),
            data.train,
            data.task,
            CFG,
            test=data.test,
            valid=data.test,
            checkpoint_dir=tmp_path / "b",
            callback=kill_after_two,
        )
    epochs = []
    resumed = train(
        _net(data, seed=99),
        data.train,
        data.task,
        CFG,
        test=data.test,
        valid=data.test,
        checkpoint_dir=tmp_path / "b",
        callback=lambda e: epochs.append(e.get("epoch")),
    )
    assert resumed.resumed_from == 2 and set(epochs) == {3}
    for key in ("test_top1", "test_top5", "val_top1", "train_loss"):
        assert resumed.final[key] == full.final[key], key
    assert sorted(p.name for p in (tmp_path / "b").glob("*.pt")) == [
        "epoch-0001.pt",
        "epoch-0002.pt",
        "epoch-0003.pt",
    ]


def test_checkpoint_of_another_recipe_is_refused(data, tmp_path):
    train(
        _net(data),
        data.train,
        data.task,
        TrainConfig(epochs=1, batch_size=50, checkpoint_every=1),
        checkpoint_dir=tmp_path,
    )
    with pytest.raises(ConfigError, match="different training config"):
        train(
            _net(data),
            data.train,
            data.task,
            TrainConfig(epochs=1, batch_size=50, lr=0.1, checkpoint_every=1),
            checkpoint_dir=tmp_path,
        )


def test_torn_checkpoint_falls_back_to_the_previous_one(data, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=50, checkpoint_every=1)
    full = train(_net(data), data.train, data.task, cfg, test=data.test, checkpoint_dir=tmp_path)
    (tmp_path / "epoch-0002.pt").write_bytes(b"torn")
    with pytest.warns(CheckpointWarning, match="epoch-0002.pt"):  # the skipped file is named
        again = train(_net(data), data.train, data.task, cfg, test=data.test, checkpoint_dir=tmp_path)
    assert again.resumed_from == 1 and again.final["test_top1"] == full.final["test_top1"]


class AuxNet(nn.Module):
    """Returns (logits, aux) in training mode and records the drop-path schedule."""

    def __init__(self, classes=10):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, classes))
        self.aux = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, classes))
        self.drop_path_prob = 0.0
        self.seen = []

    def forward(self, x):
        self.seen.append(self.drop_path_prob)
        return (self.body(x), self.aux(x)) if self.training else self.body(x)


def test_auxiliary_loss_and_drop_path_schedule(data):
    cfg = TrainConfig(epochs=2, batch_size=100, drop_path=0.2, aux_weight=0.4, lr=0.01, seed=1)
    torch.manual_seed(0)
    net = AuxNet()
    with_aux = train(net, data.train, data.task, cfg)
    assert sorted(set(net.seen)) == [0.0, 0.1]  # 0.2 * (epoch - 1) / epochs
    torch.manual_seed(0)
    without = train(AuxNet(), data.train, data.task, TrainConfig(epochs=2, batch_size=100, lr=0.01, seed=1))
    assert with_aux.history[0]["train_loss"] > without.history[0]["train_loss"] * 1.2


class NanNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        return self.fc(x.flatten(1)) * float("nan")


def test_nan_loss_raises(data):
    with pytest.raises(DivergedError, match="epoch 1"):
        train(NanNet(), data.train, data.task, TrainConfig(epochs=1, batch_size=50))


def test_impossible_values_are_errors():
    with pytest.raises(ConfigError, match="epochs=0"):
        TrainConfig(epochs=0)


def test_cosine_schedule_endpoints():
    assert cosine_lr(0, 100, 0.1, 0.001) == pytest.approx(0.1)
    assert cosine_lr(100, 100, 0.1, 0.001) == pytest.approx(0.001)
    assert cosine_lr(50, 100, 0.1, 0.0) == pytest.approx(0.05)


def test_cpu_training_in_channels_last_steps_as_nchw_and_leaves_plain_convolutions(data):
    """ResNet-20 at width 4 has 1x1 stride-2 shortcuts of 4 and 8 input channels, whose weight
    gradient oneDNN gets wrong in channels_last on CPUs without AVX-512 (a hundredfold off,
    nasmix.spaces.ops.pointwise). Trained in channels_last under the guard, one step moves every
    weight as NCHW's step does, and the network comes back with plain convolutions."""
    one_batch = ImageArrays(data.train.x[:20], data.train.y[:20])
    moved = {}
    for channels_last in (False, True):
        net = _net(data)
        before = {n: p.detach().clone() for n, p in net.named_parameters()}
        config = TrainConfig(epochs=1, batch_size=20, lr=0.05, momentum=0.0, channels_last=channels_last)
        train(net, one_batch, data.task, config)
        moved[channels_last] = {n: p.detach() - before[n] for n, p in net.named_parameters()}
    for name, step in moved[False].items():
        # float32 sums in another order (and a ReLU at 0 that may flip): far below the bug's error
        assert (moved[True][name] - step).norm() <= 0.05 * step.norm(), name
    shortcuts = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert len(shortcuts) == 2 and all(type(m) is nn.Conv2d for m in shortcuts)
    assert net.blocks[3].shortcut[0].weight.is_contiguous(memory_format=torch.channels_last)
