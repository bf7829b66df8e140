"""nasmix's NAS-Bench-201 networks against xautodl's, the benchmark authors' code (the `ref` extra:
`pip install --no-deps xautodl`; skipped without it).

- The standalone network equals xautodl's `TinyNetwork` (infer.tiny): the same parameter count, and the same
  logits once xautodl's weights are copied in.
- The supernet equals xautodl's DARTS search model (`TinyNetworkDarts`, the NB-201 DARTS-V1/V2 network): the
  same weights except xautodl's convolution biases in the search cells (its ReLUConvBN has `bias=not affine`),
  which the batch norm after each of them cancels, so the logits agree with any biases. The mixed ops' batch
  norms keep no running statistics in either (xautodl's `track_running_stats=False`): a search normalises
  with batch statistics.
"""

from __future__ import annotations

import pytest
import torch

from nasmix import registry
from nasmix.data.base import Task

xautodl_models = pytest.importorskip("xautodl.models")
from xautodl.models.cell_searchs.genotypes import Structure  # noqa: E402

TASK = Task("cifar10", 10, (3, 32, 32))
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
C, N = 8, 2  # smaller than the benchmark's 16 and 5 to stay quick; the structure is the same


def _copy(src: torch.nn.Module, dst: torch.nn.Module, skip=lambda name: False) -> None:
    """dst's parameters and buffers from src's, in module order, shapes checked (src entries named by `skip`
    have no counterpart in dst)."""
    pairs_src = [(n, t) for n, t in src.state_dict().items() if not skip(n)]
    pairs_dst = list(dst.state_dict().items())
    assert len(pairs_src) == len(pairs_dst), (len(pairs_src), len(pairs_dst))
    with torch.no_grad():
        for (ns, ts), (nd, td) in zip(pairs_src, pairs_dst):
            assert ts.shape == td.shape, f"{ns} {tuple(ts.shape)} vs {nd} {tuple(td.shape)}"
            td.copy_(ts)


def _count(net: torch.nn.Module, skip=lambda name: False) -> int:
    return sum(p.numel() for n, p in net.named_parameters() if not skip(n))


def test_standalone_network_equals_xautodl_tiny_network():
    torch.manual_seed(0)
    theirs = xautodl_models.get_cell_based_tiny_net(
        {"name": "infer.tiny", "C": C, "N": N, "genotype": Structure.str2structure(ARCH), "num_classes": 10}
    )
    space = registry.create("space", "nb201", channels=C, cells=N)
    ours = space.build(space.parse(ARCH), TASK, "search")
    assert _count(ours) == _count(theirs)
    _copy(theirs, ours)
    x = torch.randn(4, *TASK.shape)
    for mode in ("train", "eval"):
        theirs.train(mode == "train")
        ours.train(mode == "train")
        with torch.no_grad():
            torch.testing.assert_close(ours(x), theirs(x)[1], rtol=1e-5, atol=1e-5)


def test_supernet_equals_xautodl_darts_search_model():
    torch.manual_seed(0)
    space_ops = xautodl_models.get_search_spaces("cell", "nas-bench-201")
    theirs = xautodl_models.get_cell_based_tiny_net(
        {
            "name": "DARTS-V2",
            "C": C,
            "N": N,
            "max_nodes": 4,
            "num_classes": 10,
            "space": space_ops,
            "affine": False,
            "track_running_stats": False,
        }
    )
    space = registry.create("space", "nb201", channels=C, cells=N)
    ours = space.supernet(TASK, "search")
    assert tuple(space_ops) == ours.op_names["cell"]

    def conv_bias(name: str) -> bool:  # the biases of the search cells' convolutions, and alpha
        return name == "arch_parameters" or (
            name.startswith("cells.") and name.endswith(".bias") and ".op.1." in name
        )

    biases = sum(p.numel() for n, p in theirs.named_parameters() if conv_bias(n) and n != "arch_parameters")
    assert biases > 0 and _count(theirs, conv_bias) == _count(ours)
    assert _count(theirs) == _count(ours) + biases + theirs.arch_parameters.numel()
    _copy(theirs, ours, skip=conv_bias)
    with torch.no_grad():
        for n, p in theirs.named_parameters():
            if conv_bias(n) and n != "arch_parameters":
                p.normal_()  # any bias: the batch norm right after the convolution removes it
        theirs.arch_parameters.normal_()
    weights = {"cell": theirs.arch_parameters.detach().softmax(-1)}
    x = torch.randn(4, *TASK.shape)
    with torch.no_grad():  # training mode: batch statistics, as during a search
        torch.testing.assert_close(ours(x, weights), theirs(x)[1], rtol=1e-4, atol=1e-4)
