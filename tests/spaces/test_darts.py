"""The DARTS space: topology, arch strings of published cells, the top-2 decoding
rule, the evaluation network's auxiliary head and drop-path, supernet modes.
(The generic contract runs in tests/test_contracts.py.)"""

import numpy as np
import pytest
import torch

from nasmix.arch import Arch
from nasmix.data.base import Task
from nasmix.errors import ConfigError
from nasmix.spaces.base import get_space
from nasmix.spaces.darts import DARTS_V2, GDAS, PC_DARTS, DartsNetwork, _Cell, edge_index
from nasmix.spaces.ops import DARTS_OPS
from nasmix.spaces.supernet import MixedEdge
from nasmix.timing import count_params

TASK = Task("synthetic", 10, (3, 32, 32))

# DARTS V2 exactly as the DARTS code publishes it (genotypes.py).
DARTS_V2_PAIRS = (
    [
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("skip_connect", 0),
        ("dil_conv_3x3", 2),
    ],
    [
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 0),
        ("skip_connect", 2),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
    ],
)


@pytest.fixture(scope="module")
def space():
    return get_space("darts")


def test_fourteen_edges_of_eight_ops_per_cell(space):
    sn = space.supernet(TASK, "tiny")
    assert sn.arch_shapes == {"normal": (14, 8), "reduce": (14, 8)}
    assert sn.op_names == {"normal": DARTS_OPS, "reduce": DARTS_OPS}
    for cell in sn.cells:
        edges = [m for m in cell.modules() if isinstance(m, MixedEdge)]
        assert len(edges) == 14 and all(len(e.ops) == 8 for e in edges)
    assert [edge_index(n, j) for n in range(4) for j in range(n + 2)] == list(range(14))


def test_darts_v2_round_trip(space):
    arch = space.parse(DARTS_V2)
    assert arch.to_str() == "darts:" + DARTS_V2
    assert Arch.from_str("darts:" + DARTS_V2) == arch
    assert space.from_pairs(*DARTS_V2_PAIRS) == arch
    assert space.from_choices(space.to_choices(arch)) == arch
    assert space.decode(space.arch_weights(arch)) == arch
    # the published order of a node's two edges is accepted and canonicalised
    assert (
        space.parse(DARTS_V2.replace("skip_connect~0+sep_conv_3x3~1", "sep_conv_3x3~1+skip_connect~0"))
        == arch
    )
    assert "(normal-edge(2,5)): dil_conv_3x3" in space.describe(arch)


def test_published_cells_and_their_sizes(space):
    # DARTS's logs give 3,349,342 weights for DARTS V2 and 1,930,618 for the search network
    # (auxiliary head excluded); PC-DARTS reports 3.63M.
    def weights(net):
        return sum(p.numel() for k, p in net.named_parameters() if not k.startswith("aux"))

    assert weights(space.build(space.parse(DARTS_V2), TASK, "eval")) == 3_349_342
    assert round(weights(space.build(space.parse(PC_DARTS), TASK, "eval")) / 1e6, 2) == 3.63
    assert space.parse(GDAS).to_str() == "darts:" + GDAS
    assert count_params(space.supernet(TASK, "search")) == 1_930_618


@pytest.mark.parametrize(
    "bad",
    [
        DARTS_V2.replace(
            "sep_conv_3x3~0+sep_conv_3x3~1", "sep_conv_3x3~1+sep_conv_3x3~1", 1
        ),  # same input twice
        DARTS_V2.replace("sep_conv_3x3~0", "none~0", 1),  # none kept
        DARTS_V2.replace("dil_conv_3x3~2", "dil_conv_3x3~5"),  # later node
        DARTS_V2.replace("sep_conv_3x3~0", "conv_9x9~0", 1),  # unknown op
        DARTS_V2.split(";")[0],  # no reduce cell
        DARTS_V2.replace("|skip_connect~0+dil_conv_3x3~2", ""),  # three nodes
    ],
)
def test_parse_refuses(space, bad):
    with pytest.raises(ConfigError):
        space.parse(bad)


def test_decode_keeps_top_two_edges_by_strongest_non_none_op(space):
    w = {g: torch.full((14, 8), 0.1) for g in ("normal", "reduce")}
    names = ("none", "sep_conv_3x3", "skip_connect", "dil_conv_5x5", "max_pool_3x3")
    none, sep3, skip, dil5, maxp = (DARTS_OPS.index(o) for o in names)
    n = w["normal"]
    # node 4 (index 2) has inputs 0..3: input 1 is dominated by `none`, which must not count
    n[edge_index(2, 1), none] = 0.9
    n[edge_index(2, 0), sep3] = 0.5
    n[edge_index(2, 2), skip] = 0.4
    n[edge_index(2, 3), dil5] = 0.3
    # node 2: input 1's best op wins, input 0 second with its own best op
    n[edge_index(0, 1), maxp] = 0.6
    n[edge_index(0, 0), dil5] = 0.2
    arch = space.decode(w)
    normal = arch.genotype[0]
    assert normal[2] == (("sep_conv_3x3", 0), ("skip_connect", 2))
    assert normal[0] == (("dil_conv_5x5", 0), ("max_pool_3x3", 1))
    # all-equal rows: the first two inputs and the first non-none op (DARTS's tie order)
    assert normal[3] == ((DARTS_OPS[1], 0), (DARTS_OPS[1], 1))
    with pytest.raises(ConfigError):
        space.decode({"normal": n})


def test_eval_network_aux_head_in_training_mode_only(space):
    net = space.build(space.parse(DARTS_V2), TASK, "eval")
    assert isinstance(net, DartsNetwork) and len(net.cells) == 20 and net.aux is not None
    x = torch.randn(2, 3, 32, 32)
    net.train()
    logits, aux = net(x)
    assert logits.shape == aux.shape == (2, 10)
    (logits.sum() + 0.4 * aux.sum()).backward()
    net.eval()
    with torch.no_grad():
        assert net(x).shape == (2, 10)
    assert space.build(space.parse(DARTS_V2), TASK, "search").aux is None


def test_drop_path_drops_non_identity_edges_only(space):
    torch.manual_seed(0)
    arch = space.parse(DARTS_V2)
    net = space.build(arch, TASK, "tiny").train()
    x = torch.randn(4, 3, 32, 32)
    same = [torch.equal(net(x)[0], net(x)[0]) for _ in range(2)]
    net.drop_path_prob = 0.5
    dropped = [torch.equal(net(x)[0], net(x)[0]) for _ in range(2)]
    assert all(same) and not any(dropped)
    # a cell of identity edges only is unaffected by drop-path
    skips = ((("skip_connect", 0), ("skip_connect", 1)),) * 4
    cell = _Cell(skips, 8, 8, 8, False, False).train()
    s = torch.randn(4, 8, 8, 8)
    assert torch.equal(cell(s, s, 0.9), cell(s, s, 0.0))


def test_sampled_ops_compute_only_the_chosen_ops(space):
    sn = space.supernet(TASK, "tiny")
    arch = space.sample(np.random.default_rng(3))
    w = {g: v.requires_grad_() for g, v in space.arch_weights(arch).items()}
    sn(torch.randn(2, 3, 32, 32), w, active=space.active(arch)).sum().backward()
    cell = sn.cells[0]
    used = {
        edge_index(n, i): DARTS_OPS.index(op) for n, node in enumerate(arch.genotype[0]) for op, i in node
    }
    for e, edge in enumerate(cell.edges):
        for k, op in enumerate(edge.ops):
            grads = [p.grad is not None for p in op.parameters()]
            if grads:
                assert all(grads) == (used.get(e) == k), (e, k)
    assert all(v.grad is not None for v in w.values())


def test_partial_channels_and_moves(space):
    sn = space.supernet(TASK, "tiny", partial=4)
    out = sn(torch.randn(2, 3, 32, 32), sn.uniform_weights())
    assert out.shape == (2, 10)
    with pytest.raises(ConfigError):
        space.supernet(TASK, "tiny", partial=3)
    arch = space.parse(DARTS_V2)
    nbrs = space.neighbors(arch)
    assert (
        len(nbrs) == len(set(nbrs)) == 2 * (4 * 2 * 6 + 2 * (0 + 1 + 2 + 3))
    )  # one op or one input of one edge
    assert len(space.encode(arch)) == 2 * ((1 + 3 + 6 + 10) + 4 * 2 * 7)
