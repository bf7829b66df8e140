import numpy as np
import torch

from nasmix.data import Augment, DeviceLoader, ImageArrays, Task

TASK = Task("t", 2, (3, 8, 8), mean=(0.0, 0.0, 0.0), std=(1 / 255, 1 / 255, 1 / 255))


def _images(n=10):
    x = np.arange(n * 8 * 8 * 3, dtype=np.int64).reshape(n, 8, 8, 3) % 200 + 1
    return ImageArrays(x.astype(np.uint8), np.arange(n) % 2)


def test_eval_batches_are_the_normalised_images_in_order():
    imgs = _images()
    loader = DeviceLoader(imgs, TASK, 4, torch.device("cpu"))
    xs = torch.cat([x for x, _ in loader.batches()])
    assert len(loader) == 3
    assert torch.equal(xs, torch.from_numpy(imgs.x).permute(0, 3, 1, 2).float())


def test_seed_fixes_order_and_augmentation():
    loader = DeviceLoader(_images(), TASK, 4, torch.device("cpu"), Augment(cutout=4), shuffle=True)
    a = [x for x, _ in loader.batches(3)]
    b = [x for x, _ in loader.batches(3)]
    c = [x for x, _ in loader.batches(4)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not all(torch.equal(p, q) for p, q in zip(a, c))


def test_crop_is_a_shifted_window_of_the_zero_padded_image():
    imgs = _images(64)
    loader = DeviceLoader(
        imgs, TASK, 64, torch.device("cpu"), Augment(crop_padding=2, flip=False), shuffle=False
    )
    x, _ = next(iter(loader.batches(0)))
    padded = np.pad(imgs.x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    for i in range(64):
        got = x[i].permute(1, 2, 0).numpy()
        windows = [padded[i, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)]
        assert any(np.array_equal(got, w) for w in windows)


def test_flip_and_cutout():
    imgs = _images(200)
    flip = DeviceLoader(imgs, TASK, 200, torch.device("cpu"), Augment(crop_padding=0, flip=True))
    x, _ = next(iter(flip.batches(0)))
    ref = torch.from_numpy(imgs.x).permute(0, 3, 1, 2).float()
    flipped = (x == ref.flip(3)).flatten(1).all(1)
    same = (x == ref).flatten(1).all(1)
    assert torch.all(flipped | same) and 50 < int(flipped.sum()) < 150
    cut = DeviceLoader(imgs, TASK, 200, torch.device("cpu"), Augment(crop_padding=0, flip=False, cutout=4))
    x, _ = next(iter(cut.batches(0)))
    zeros = (x[:, 0] == 0).flatten(1).sum(1)
    assert torch.all(zeros >= 4) and torch.all(zeros <= 16)  # a 4x4 square, clipped at borders


def test_drop_last_and_labels_follow_images():
    imgs = _images(10)
    loader = DeviceLoader(imgs, TASK, 4, torch.device("cpu"), shuffle=True, drop_last=True)
    batches = list(loader.batches(1))
    assert len(batches) == len(loader) == 2
    for x, y in batches:
        first_pixel = x[:, 0, 0, 0].long()
        idx = [int(np.flatnonzero(imgs.x[:, 0, 0, 0] == v)[0]) for v in first_pixel]
        assert torch.equal(y, torch.from_numpy(imgs.y[idx]))
