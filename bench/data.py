"""Loader throughput and one epoch of the reference net: nasmix's device-resident
pipeline against a torchvision DataLoader with per-image PIL transforms.

Usage:
    python bench/data.py --data PATH [--train-subset N] [--workers W] [--device cpu|cuda]

Prints images/s for each loader and the epoch time of ResNet-20 fed by each,
with their ratio, on every device asked for (default: cpu, and cuda when present).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

from nasmix import registry
from nasmix.data import Augment, DeviceLoader, load_dataset, subset
from nasmix.timing import Timer, device_name
from nasmix.train import TrainConfig, train


class PilDataset(torch.utils.data.Dataset):
    """The usual torchvision pipeline: one PIL image and its transforms per item."""

    def __init__(self, images, task):
        self.x, self.y = images.x, images.y
        self.tf = T.Compose(
            [
                T.RandomCrop(32, padding=4),
                T.RandomHorizontalFlip(),
                T.ToTensor(),
                T.Normalize(task.mean, task.std),
            ]
        )

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.tf(Image.fromarray(self.x[i])), int(self.y[i])


def torchvision_loader(images, task, batch, workers):
    return torch.utils.data.DataLoader(
        PilDataset(images, task),
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
    )


def throughput_device(images, task, device, batch) -> float:
    loader = DeviceLoader(images, task, batch, device, Augment(), shuffle=True, drop_last=True)
    timer = Timer(device)
    for _ in loader.batches(0):  # warm-up
        break
    t0 = timer.now()
    n = sum(len(y) for _, y in loader.batches(1))
    return n / (timer.now() - t0)


def throughput_torchvision(images, task, device, batch, workers) -> float:
    timer = Timer(device)
    t0 = timer.now()
    n = 0
    for x, y in torchvision_loader(images, task, batch, workers):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        n += len(y)
    return n / (timer.now() - t0)


def epoch_torchvision(images, task, device, cfg: TrainConfig, workers) -> float:
    """One epoch of the same recipe, fed by the torchvision loader (a minimal loop)."""
    torch.manual_seed(0)
    net = registry.create("model", "resnet20").build(task).to(device)
    cuda = device.type == "cuda"
    if cuda:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(
        net.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    timer = Timer(device)
    t0 = timer.now()
    for x, y in torchvision_loader(images, task, cfg.batch_size, workers):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            loss = loss_fn(net(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return timer.now() - t0


def epoch_nasmix(images, task, device, cfg: TrainConfig) -> float:
    torch.manual_seed(0)
    net = registry.create("model", "resnet20").build(task)
    return train(net, images, task, cfg, device).final["train_s"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=None, help="CIFAR-10 location (default: $NASMIX_DATA)")
    parser.add_argument(
        "--train-subset", type=int, default=None, help="images per epoch (default: all on GPU, 5000 on CPU)"
    )
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (NASLib uses 0)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", action="append", help="cpu and/or cuda (default: both where present)")
    args = parser.parse_args()
    data = load_dataset("cifar10", args.data)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    cfg = TrainConfig(epochs=1, batch_size=args.batch_size, lr=0.1, nesterov=True, weight_decay=5e-4)
    print(f"{'device':<44} {'what':<34} {'nasmix':>12} {'torchvision':>12} {'ratio':>7}")
    for name in devices:
        device = torch.device(name)
        n = args.train_subset or (None if device.type == "cuda" else 5000)
        images = subset(data.train, n, 10)
        label = device_name(device)
        a = throughput_device(images, data.task, device, args.batch_size)
        b = throughput_torchvision(images, data.task, device, args.batch_size, args.workers)
        print(f"{label:<44} {'loader images/s':<34} {a:>12,.0f} {b:>12,.0f} {a / b:>6.1f}x")
        epoch_nasmix(images, data.task, device, cfg)  # warm-up (cuDNN autotune, allocator)
        a = epoch_nasmix(images, data.task, device, cfg)
        b = epoch_torchvision(images, data.task, device, cfg, args.workers)
        what = f"resnet20 epoch s ({len(images)} images)"
        print(f"{label:<44} {what:<34} {a:>12.2f} {b:>12.2f} {b / a:>6.1f}x")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
