"""The hierarchical space (Liu et al. 2018): arch value, moves, networks, supernet modes.

The contract suite (nasmix.testing.check_space) runs in tests/test_contracts.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasmix import registry
from nasmix.arch import Arch
from nasmix.errors import ConfigError
from nasmix.spaces.hierarchical import EXAMPLE, Hierarchical
from nasmix.spaces.motifs import MixedMotif, live_edges
from nasmix.spaces.ops import HIERARCHICAL_OPS
from nasmix.spaces.supernet import MixedEdge
from nasmix.testing import TINY_TASK
from nasmix.timing import count_params


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Thousands of tiny ops: intra-op threads only add synchronisation, which
    turns pathological when the CPU is shared; restored afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def space() -> Hierarchical:
    return registry.create("space", "hierarchical")


@pytest.fixture(scope="module")
def small() -> Hierarchical:
    """Two motifs and 4 channels: the same code paths at half the cost."""
    return registry.create("space", "hierarchical", motifs=2, tiny_channels=4)


def _x(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, *TINY_TASK.shape, generator=torch.Generator().manual_seed(0))


def test_choice_counts_and_groups(space):
    choices = space.choices()
    assert len(choices) == 4 * 6 + 10
    assert all(c.options == HIERARCHICAL_OPS and len(c.options) == 7 for c in choices[:24])
    assert all(c.options == ("none", "motif0", "motif1", "motif2", "motif3") for c in choices[24:])
    assert choices[0].name == "motif0 0->1" and choices[-1].name == "cell 3->4"
    sn = space.supernet(TINY_TASK, "tiny")
    assert sn.arch_shapes == {"motif0": (6, 7), "motif1": (6, 7), "motif2": (6, 7), "motif3": (6, 7), "cell": (10, 5)}
    assert sn.op_names["cell"] == choices[-1].options


def test_paper_sized_config():
    space = registry.create("space", "hierarchical", motifs=6)
    assert len(space.choices()) == 6 * 6 + 10
    arch = space.sample(np.random.default_rng(0))
    assert space.arch_weights(arch)["cell"].shape == (10, 7) and space.decode(space.arch_weights(arch)) == arch
    with pytest.raises(ConfigError):
        registry.create("space", "hierarchical", motifs=0)


def test_string_round_trip(space):
    arch = space.parse(EXAMPLE)
    assert space.format(arch.genotype) == EXAMPLE
    assert arch.genotype[0][0] == ("sep_conv_3x3_h", "conv_1x1", "identity", "none", "dw_conv_3x3", "max_pool_3x3")
    assert arch.genotype[1][:3] == ("motif0", "motif1", "motif2")
    rng = np.random.default_rng(1)
    for _ in range(30):
        a = space.sample(rng)
        assert Arch.from_str(a.to_str()) == a and Arch.from_str(a.to_str()).to_str() == a.to_str()
        assert space.from_choices(space.to_choices(a)) == a


@pytest.mark.parametrize("bad", [
    "", "not-an-arch", "|||", EXAMPLE.replace("sep3", "sep5", 1), EXAMPLE.replace("cell=m0", "cell=m4"),
    EXAMPLE.replace("cell=m0", "cell=c1"), EXAMPLE.replace("m1=", "m2=", 1), EXAMPLE.rsplit(";", 1)[0],
    EXAMPLE.replace("m0=sep3+", "m0=sep3.id+"), EXAMPLE.replace("m0=", "m0= "), EXAMPLE + ";",
    EXAMPLE.replace("+x.m3.m0", "+x.m3"),
])  # fmt: skip
def test_parse_rejects(space, bad):
    with pytest.raises(ConfigError):
        space.parse(bad)


def test_neighbors_and_mutate(space):
    arch = space.parse(EXAMPLE)
    values = np.array(space.to_choices(arch))
    nbrs = space.neighbors(arch)
    assert len(nbrs) == len(set(nbrs)) == 24 * 6 + 10 * 4
    rng = np.random.default_rng(0)
    cell_hits = 0
    for _ in range(200):
        child = np.array(space.to_choices(space.mutate(arch, rng)))
        changed = np.flatnonzero(child != values)
        assert len(changed) == 1
        cell_hits += int(changed[0] >= 24)
    assert 60 < cell_hits < 140  # the paper picks the level first: half of the mutations hit the cell


def test_decode_argmax_includes_none(space):
    arch = space.parse(EXAMPLE)
    w = space.arch_weights(arch)
    assert space.decode(w) == arch
    w["motif0"][0] = torch.tensor([0.9, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0])
    w["cell"][0] = torch.tensor([0.2, 0.4, 0.4, 0.0, 0.0])  # tie: the lower index wins
    decoded = space.decode(w).genotype
    assert decoded[0][0][0] == "none" and decoded[1][0] == "motif0"
    with pytest.raises(ConfigError):
        space.decode({g: v[:, :3] for g, v in w.items()})


def test_describe_renders_three_levels(space):
    text = space.describe(space.parse(EXAMPLE))
    assert EXAMPLE in text and "level 1" in text and "level 2" in text and "level 3" in text
    assert "m0: 1 <- 0:sep3 | 2 <- 0:c1, 1:id | 3 <- 1:dw3, 2:max3" in text


def test_live_edges():
    # 4 nodes; only 0->1 and 1->2 used: node 2 never reaches node 3
    assert live_edges(4, [True, False, True, False, False, False]) == [False] * 6
    assert live_edges(4, [True, False, False, False, True, False]) == [True, False, False, False, True, False]


def test_canonical_keeps_the_network(space):
    rng = np.random.default_rng(5)
    for _ in range(5):
        arch = space.sample(rng)
        canon = space.canonical(arch)
        assert space.canonical(canon) == canon
        torch.manual_seed(0)
        net = space.build(arch, TINY_TASK, "tiny").eval()
        other = space.build(canon, TINY_TASK, "tiny").eval()
        other.load_state_dict(net.state_dict())  # strict: the same modules in the same places
        with torch.no_grad():
            assert torch.allclose(net(_x()), other(_x()), atol=1e-5)
    assert space.canonical(space.parse(EXAMPLE)) == space.parse(EXAMPLE)  # all motifs used, in order, no dead edge


def test_canonical_relabels_motifs_by_first_use(space):
    motifs, cell = space.parse(EXAMPLE).genotype
    swapped = (motifs[1], motifs[0], motifs[2], motifs[3])
    cell = tuple({"motif0": "motif1", "motif1": "motif0"}.get(o, o) for o in cell)
    other = Arch("hierarchical", (swapped, cell))
    assert other != space.parse(EXAMPLE) and space.canonical(other) == space.canonical(space.parse(EXAMPLE))


def test_degenerate_archs_run(space):
    blank = ("none",) * 6
    all_none = Arch("hierarchical", ((blank,) * 4, ("none",) * 10))
    empty_motif = Arch("hierarchical", ((blank,) * 4, ("motif0",) * 10))
    sn = space.supernet(TINY_TASK, "tiny")
    for arch in (all_none, empty_motif):
        net = space.build(arch, TINY_TASK, "tiny")
        out = net(_x())
        assert out.shape == (2, 10) and torch.isfinite(out).all()
        out.sum().backward()
        w = {g: v.requires_grad_() for g, v in space.arch_weights(arch).items()}
        out = sn(_x(), w, active=space.active(arch))
        assert torch.isfinite(out).all()


def test_sampled_mode_computes_only_chosen_ops(small):
    space = small
    arch = space.sample(np.random.default_rng(3))
    motifs, cell = arch.genotype
    sn = space.supernet(TINY_TASK, "tiny")
    calls: dict[tuple, int] = {}

    def counter(key):
        def hook(module, args, out):
            calls[key] = calls.get(key, 0) + 1
        return hook

    mixed_motifs = [m for m in sn.modules() if isinstance(m, MixedMotif)]
    assert len(mixed_motifs) == 10 and all(len(mm.motifs) == 2 for mm in mixed_motifs)  # tiny: one cell
    for n, mm in enumerate(mixed_motifs):
        for m, sm in enumerate(mm.motifs):
            sm.register_forward_hook(counter(("motif", n, m)))
            for e, edge in enumerate(sm.edges):
                for o, op in enumerate(edge.ops):
                    op.register_forward_hook(counter(("op", n, m, e, o)))
    w = {g: v.requires_grad_() for g, v in space.arch_weights(arch).items()}
    sn(_x(), w, active=space.active(arch)).sum().backward()
    expected = {}
    for n in range(len(mixed_motifs)):
        choice = cell[n % 10]
        if choice == "none":
            continue
        m = int(choice[len("motif") :])
        expected[("motif", n, m)] = 1
        for e, op in enumerate(motifs[m]):
            if op != "none":
                expected[("op", n, m, e, HIERARCHICAL_OPS.index(op))] = 1
    assert calls == expected
    assert all(w[g].grad is not None for g in {"cell"} | {c for c in cell if c != "none"})


def test_sampled_matches_weighted_one_hot(small):
    space = small
    arch = space.sample(np.random.default_rng(4))
    torch.manual_seed(0)
    sn = space.supernet(TINY_TASK, "tiny")
    w = space.arch_weights(arch)
    with torch.no_grad():
        full = sn(_x(), w)
        sampled = sn(_x(), w, active=space.active(arch))
    assert torch.allclose(full, sampled, atol=1e-5)


def test_checkpoint_keeps_gradients_and_bn_stats():
    nets, grads = [], []
    for ckpt in (True, False):
        space = registry.create("space", "hierarchical", checkpoint=ckpt, motifs=2, tiny_channels=4)
        torch.manual_seed(0)
        sn = space.supernet(TINY_TASK, "tiny")
        g = torch.Generator().manual_seed(1)
        w = {k: torch.randn(s, generator=g).softmax(-1).requires_grad_() for k, s in sn.arch_shapes.items()}
        # two ops per primitive edge and two motifs per cell edge: weighted, hence checkpointed
        active = {k: [[0, 1 + e % (s[1] - 1)] for e in range(s[0])] for k, s in sn.arch_shapes.items()}
        sn(_x(), w, active=active).sum().backward()
        nets.append(sn)
        grads.append({k: v.grad for k, v in w.items()})
    for k in grads[0]:
        assert torch.allclose(grads[0][k], grads[1][k], atol=1e-5), k
    for (name, a), (_, b) in zip(nets[0].named_parameters(), nets[1].named_parameters()):
        assert (a.grad is None) == (b.grad is None) and (a.grad is None or torch.allclose(a.grad, b.grad, atol=1e-5))
    for (name, a), (_, b) in zip(nets[0].named_buffers(), nets[1].named_buffers()):
        assert torch.equal(a, b) if a.dtype == torch.long else torch.allclose(a, b, atol=1e-6), name


def test_partial_channels(small):
    space = small
    sn = space.supernet(TINY_TASK, "tiny", partial=2)
    arch = space.sample(np.random.default_rng(0))
    out = sn(_x(), space.arch_weights(arch), active=space.active(arch))
    assert out.shape == (2, 10)
    assert all(e.partial == 2 for e in sn.modules() if isinstance(e, MixedEdge))
    with pytest.raises(ConfigError):
        space.supernet(TINY_TASK, "tiny", partial=3)


def test_documented_sizes(space):
    """The figures quoted in docs/spaces/hierarchical.md."""
    arch = space.parse(EXAMPLE)
    assert count_params(space.build(arch, TINY_TASK, "search")) == 160_970
    assert count_params(space.build(arch, TINY_TASK, "eval")) == 4_518_730
