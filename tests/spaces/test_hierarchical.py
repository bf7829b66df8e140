"""The hierarchical space (Liu et al. 2018): variants, arch value, moves, networks, supernets, memory plan.

The contract suite (nasmix.testing.check_space) runs in tests/test_contracts.py.

Pinned reference figures:
- NASLib's search supernet (automl/NASLib, naslib/search_spaces/hierarchical/graph.py
  `HierarchicalSearchSpace` with the primitives of search_spaces/core/primitives.py and
  hierarchical/primitives.py) has 7,891,546 parameters: per primitive edge at C channels
  3C^2 + 27C (DARTS SepConv 2C^2 + 18C, DepthwiseConv 9C, ConvBNReLU C^2; non-affine BN),
  per motif 6 edges + Concat1x1 (3C^2 conv + 2C affine BN), 10 edges x 6 motifs per cell
  at C = 16, 32, 64, plus the stem (464), the separable convs (1,152 + 3,840 + 9,600) and
  the linear head (650). Its architecture parameters: 6 motifs x 6 edges x 7 ops + 10 cell
  edges x 6 motifs = 312.
- Liu et al. 2018 (table 2) report 15.7M parameters for their evolved CIFAR-10 network.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasmix import registry
from nasmix.arch import Arch
from nasmix.data.base import Task
from nasmix.errors import ConfigError
from nasmix.spaces.hierarchical import EXAMPLE_LIGHT, LIU_2018, Hierarchical
from nasmix.spaces.motif_memory import MemoryPlanner
from nasmix.spaces.motif_supernet import MixedMotif, SuperMotif
from nasmix.spaces.motifs import LIGHT, NASLIB, NASLIB_OPS, Macro, live_edges
from nasmix.spaces.motifs_paper import PaperMotif, built_edges
from nasmix.spaces.ops import HIERARCHICAL_OPS
from nasmix.spaces.supernet import EdgeContext, MixedEdge
from nasmix.testing import TINY_TASK
from nasmix.timing import count_params

CIFAR = Task("cifar10", 10, (3, 32, 32))


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Thousands of tiny ops: intra-op threads only add synchronisation, which
    turns pathological when the CPU is shared; restored afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _space(variant: str = "naslib", **cfg) -> Hierarchical:
    return registry.create("space", "hierarchical", variant=variant, **cfg)


def _small(variant: str, **cfg) -> Hierarchical:
    """Two motifs and 4 channels: the same code paths at a fraction of the cost."""
    return _space(variant, motifs=2, tiny_channels=4, **cfg)


def _x(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, *TINY_TASK.shape, generator=torch.Generator().manual_seed(0))


def _example(space: Hierarchical) -> Arch:
    return space.parse(EXAMPLE_LIGHT if space.config.variant == "light" else LIU_2018)


def test_default_is_naslibs_network():
    space = registry.create("space", "hierarchical")
    assert space.config.variant == "naslib" and space.config.motifs == 6
    choices = space.choices()
    assert len(choices) == 6 * 6 + 10
    assert all(c.options == NASLIB_OPS for c in choices[:36]) and "sep_conv_3x3" in NASLIB_OPS
    assert all(c.options == tuple(f"motif{m}" for m in range(6)) for c in choices[36:])  # no cell-level none
    with torch.device("meta"):  # counts without allocating or initialising 7.9M weights
        sn = space.supernet(CIFAR, "search")
    assert count_params(sn) == 7_891_546  # NASLib's, see the module docstring
    assert sum(r * c for r, c in sn.arch_shapes.values()) == 312
    assert sn.arch_shapes == {**{f"motif{m}": (6, 7) for m in range(6)}, "cell": (10, 6)}


def test_variants_and_options():
    light, paper = _space("light"), _space("paper")
    assert light.config.motifs == 4 and paper.config.motifs == 6
    assert _space("light", motifs=6).config.motifs == 6
    assert light.cell_options == ("none", "motif0", "motif1", "motif2", "motif3")
    assert paper.cell_options[0] == "none" and paper.ops == HIERARCHICAL_OPS
    with pytest.raises(ConfigError, match="light"):
        _space("flat")
    for bad in ({"motifs": 0}, {"memory_gib": 0.0}):
        with pytest.raises(ConfigError):
            _space("naslib", **bad)
    with pytest.raises(ConfigError, match="no supernet"):
        paper.supernet(TINY_TASK, "tiny")


def test_light_variant_keeps_its_sizes():
    """The light design is unchanged: its figures from before the variants existed."""
    space = _space("light")
    arch = space.parse(EXAMPLE_LIGHT)
    assert count_params(space.build(arch, TINY_TASK, "search")) == 160_970
    assert count_params(space.supernet(TINY_TASK, "tiny")) == 68_314
    with torch.device("meta"):
        assert count_params(space.build(arch, TINY_TASK, "eval")) == 4_518_730


def test_evolved_architecture_has_the_papers_size():
    """The paper's evolved cell at its large CIFAR size (N = 2, C = 64): 15.7M parameters in its table 2."""
    sizes = {}
    for variant in ("naslib", "paper"):
        space = _space(variant)
        with torch.device("meta"):
            sizes[variant] = count_params(space.build(space.parse(LIU_2018), CIFAR, "eval"))
    assert sizes == {"naslib": 15_677_514, "paper": 15_727_306}
    assert all(abs(n / 15.7e6 - 1) < 0.01 for n in sizes.values())


@pytest.mark.parametrize("variant", ["naslib", "paper", "light"])
def test_string_round_trip(variant):
    space = _space(variant)
    text = EXAMPLE_LIGHT if variant == "light" else LIU_2018
    arch = space.parse(text)
    assert space.format(arch.genotype) == text
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = space.sample(rng)
        assert Arch.from_str(a.to_str(), space) == a and space.from_choices(space.to_choices(a)) == a
    sep = "sep_conv_3x3" if variant == "naslib" else "sep_conv_3x3_h"  # the code sep3 names the variant's
    assert arch.genotype[0][0][0 if variant == "light" else 3] == sep
    # The string names the variant where it is not NASLib's, so that it parses alone into that variant.
    prefix = "hierarchical:" if variant == "naslib" else f'hierarchical{{"variant":"{variant}"}}:'
    assert arch.to_str().startswith(prefix)
    assert Arch.from_str(arch.to_str()) == arch


def test_arch_strings_name_only_non_default_motif_counts():
    light = {"variant": "light"}
    assert registry.create("space", "hierarchical", motifs=6).arch_key == ()  # NASLib's own count
    assert registry.create("space", "hierarchical", motifs=4, **light).arch_key == (("variant", "light"),)
    space = registry.create("space", "hierarchical", motifs=6, **light)
    assert space.arch_key == (("motifs", 6), ("variant", "light"))
    arch = space.sample(np.random.default_rng(0))
    assert Arch.from_str(arch.to_str()) == arch and len(arch.genotype[0]) == 6


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not-an-arch",
        "|||",
        LIU_2018.replace("sep3", "sep5", 1),
        LIU_2018.replace("cell=m4", "cell=m6"),
        LIU_2018.replace("cell=m4", "cell=x"),  # NASLib's cell edges have no `none`
        LIU_2018.replace("m1=", "m2=", 1),
        LIU_2018.rsplit(";", 1)[0],
        LIU_2018.replace("m0=max3+", "m0=max3.id+"),
        LIU_2018 + ";",
    ],
)
def test_parse_rejects(bad):
    with pytest.raises(ConfigError):
        _space("naslib").parse(bad)


def test_cell_none_only_where_the_variant_has_it():
    text = LIU_2018.replace("cell=m4", "cell=x")
    assert _space("paper").parse(text).genotype[1][0] == "none"


@pytest.mark.parametrize("variant", ["naslib", "light"])
def test_neighbors_and_mutate_change_one_edge(variant):
    space = _space(variant)
    arch = _example(space)
    values = np.array(space.to_choices(arch))
    motif_choices, cell_options = space.config.motifs * 6, len(space.cell_options)
    nbrs = space.neighbors(arch)
    assert len(nbrs) == len(set(nbrs)) == motif_choices * 6 + 10 * (cell_options - 1)
    rng = np.random.default_rng(0)
    cell_hits = 0
    for _ in range(200):
        child = np.array(space.to_choices(space.mutate(arch, rng)))
        changed = np.flatnonzero(child != values)
        assert len(changed) == 1  # one op of one motif, or one motif of one cell edge
        cell_hits += int(changed[0] >= motif_choices)
    assert 60 < cell_hits < 140  # the paper picks the level first: half of the mutations hit the cell


def test_decode_argmax_includes_none():
    space = _space("light")
    arch = space.parse(EXAMPLE_LIGHT)
    w = space.arch_weights(arch)
    assert space.decode(w) == arch
    w["motif0"][0] = torch.tensor([0.9, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0])
    w["cell"][0] = torch.tensor([0.2, 0.4, 0.4, 0.0, 0.0])  # tie: the lower index wins
    decoded = space.decode(w).genotype
    assert decoded[0][0][0] == "none" and decoded[1][0] == "motif0"
    with pytest.raises(ConfigError):
        space.decode({g: v[:, :3] for g, v in w.items()})


def test_describe_renders_three_levels():
    space = _space("naslib")
    text = space.describe(space.parse(LIU_2018))
    assert LIU_2018 in text and "naslib variant" in text and "level 3" in text
    assert "m0: 1 <- 0:max3 | 2 <- 0:c1, 1:dw3 | 3 <- 0:sep3, 1:c1, 2:max3" in text


def test_live_and_built_edges():
    # 4 nodes; only 0->1 and 1->2 used: node 2 never reaches node 3
    assert live_edges(4, [True, False, True, False, False, False]) == [False] * 6
    assert live_edges(4, [True, False, False, False, True, False]) == [True, False, False, False, True, False]
    # concatenating DAGs also drop edges out of nodes that have no input
    assert built_edges(4, [False, True, True, False, True, True]) == [False, True, False, False, False, True]


@pytest.mark.parametrize("variant", ["naslib", "paper", "light"])
def test_canonical_keeps_the_network(variant):
    space = _small(variant)
    rng = np.random.default_rng(5)
    for _ in range(3):
        arch = space.sample(rng)
        canon = space.canonical(arch)
        assert space.canonical(canon) == canon
        torch.manual_seed(0)
        net = space.build(arch, TINY_TASK, "tiny").eval()
        other = space.build(canon, TINY_TASK, "tiny").eval()
        other.load_state_dict(net.state_dict())  # strict: the same modules in the same places
        with torch.no_grad():
            assert torch.allclose(net(_x()), other(_x()), atol=1e-5)


def test_canonical_relabels_motifs_by_first_use():
    space = _space("light")
    motifs, cell = space.parse(EXAMPLE_LIGHT).genotype
    swapped = (motifs[1], motifs[0], motifs[2], motifs[3])
    cell = tuple({"motif0": "motif1", "motif1": "motif0"}.get(o, o) for o in cell)
    other = space.arch((swapped, cell))  # with the space's arch options (its variant)
    example = space.parse(EXAMPLE_LIGHT)
    assert other != example and space.canonical(other) == space.canonical(example)


@pytest.mark.parametrize("variant", ["naslib", "paper", "light"])
def test_degenerate_archs_run(variant):
    space = _small(variant)
    blank = ("none",) * 6
    archs = [space.arch(((blank,) * 2, ("motif0",) * 10))]
    if space.design.cell_none:
        archs.append(space.arch(((blank,) * 2, ("none",) * 10)))
    sn = None if variant == "paper" else space.supernet(TINY_TASK, "tiny")
    for arch in archs:
        net = space.build(arch, TINY_TASK, "tiny")
        out = net(_x())
        assert out.shape == (2, 10) and torch.isfinite(out).all()
        out.sum().backward()
        if sn is not None:
            w = {g: v.requires_grad_() for g, v in space.arch_weights(arch).items()}
            assert torch.isfinite(sn(_x(), w, active=space.active(arch))).all()


def test_paper_motif_concatenates_at_every_node():
    # node 1 = conv_1x1 (C) ; node 2 = dw3(node 0) ++ identity(node 1) ; node 3 = max3(node 2)
    motif = PaperMotif(8, 4, ("conv_1x1", "dw_conv_3x3", "identity", "none", "none", "max_pool_3x3"))
    assert motif.widths == [8, 4, 12, 12]
    assert motif.end[0].in_channels == 12 and motif.end[0].out_channels == 4
    space = _space("paper", tiny_channels=4)
    net = space.build(space.parse(LIU_2018), TINY_TASK, "tiny")
    cell = net.layers[1]
    # the evolved cell: node 1 <- 1 motif, node 2 <- 2, node 3 <- 3, node 4 (output) <- 4 motifs of C channels
    assert cell.out_channels == 4 * 4 and net.layers[2].op[0].in_channels == 16
    assert net(_x()).shape == (2, 10)


@pytest.mark.parametrize("variant", ["naslib", "light"])
def test_sampled_mode_computes_only_chosen_ops(variant):
    space = _small(variant)
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
                expected[("op", n, m, e, space.ops.index(op))] = 1
    assert calls == expected
    assert all(w[g].grad is not None for g in {"cell"} | {c for c in cell if c != "none"})


@pytest.mark.parametrize("variant", ["naslib", "light"])
def test_sampled_matches_weighted_one_hot(variant):
    space = _small(variant)
    arch = space.sample(np.random.default_rng(4))
    torch.manual_seed(0)
    sn = space.supernet(TINY_TASK, "tiny")
    w = space.arch_weights(arch)
    with torch.no_grad():
        full = sn(_x(), w)
        sampled = sn(_x(), w, active=space.active(arch))
    assert torch.allclose(full, sampled, atol=1e-5)


def _weighted_step(space: Hierarchical):
    torch.manual_seed(0)
    sn = space.supernet(TINY_TASK, "tiny")
    g = torch.Generator().manual_seed(1)
    w = {k: torch.randn(s, generator=g).softmax(-1).requires_grad_() for k, s in sn.arch_shapes.items()}
    # two ops per primitive edge and two candidates per cell edge: weighted, hence recomputable
    active = {k: [[0, 1 + e % (s[1] - 1)] for e in range(s[0])] for k, s in sn.arch_shapes.items()}
    sn(_x(), w, active=active).sum().backward()
    return sn, {k: v.grad for k, v in w.items()}


@pytest.mark.parametrize("variant", ["naslib", "light"])
def test_checkpoint_keeps_gradients_and_bn_stats(variant):
    # a budget of almost nothing makes the automatic plan recompute
    (net_a, grads_a), (net_b, grads_b) = (
        _weighted_step(_small(variant, **cfg)) for cfg in ({"memory_gib": 1e-6}, {"checkpoint": False})
    )
    assert net_a.last_plan == (True,) and net_b.last_plan == (False,)
    for k in grads_a:
        assert torch.allclose(grads_a[k], grads_b[k], atol=1e-5), k
    for (name, a), (_, b) in zip(net_a.named_parameters(), net_b.named_parameters()):
        assert (a.grad is None) == (b.grad is None), name
        assert a.grad is None or torch.allclose(a.grad, b.grad, atol=1e-5), name
    for (name, a), (_, b) in zip(net_a.named_buffers(), net_b.named_buffers()):
        assert torch.equal(a, b) if a.dtype == torch.long else torch.allclose(a, b, atol=1e-6), name


def test_memory_plan_follows_the_budget():
    space = _small("naslib", memory_gib=1e3)
    sn = space.supernet(TINY_TASK, "tiny")
    x = torch.empty(2, *TINY_TASK.shape, device="meta")  # planning needs shapes only
    assert sn.planner.plan(x, EdgeContext(sn.uniform_weights())) == (False,)
    est = sn.planner.last
    assert est.budget == 1000 * 2**30 and est.need() == est.batch * est.kept[0]
    assert est.recomputed[0] < est.kept[0] / 5  # recomputing keeps a small fraction
    sn.planner.memory_gib = 1e-6
    assert sn.planner.plan(torch.empty(3, *TINY_TASK.shape, device="meta"), EdgeContext({})) == (True,)
    arch = space.sample(np.random.default_rng(0))
    sn(_x(), space.arch_weights(arch), active=space.active(arch))  # sampled mode: nothing to recompute
    assert sn.last_plan == (False,) and sn.planner.last.kept == (0,)


def test_memory_estimate_matches_what_autograd_keeps():
    """The meta-device estimate of one motif is what its real forward saves for the backward pass."""
    space = _small("naslib")
    planner = space.supernet(TINY_TASK, "tiny").planner
    ctx = EdgeContext({"motif0": torch.full((6, 7), 1 / 7, requires_grad=True)})
    kept, out = planner.motif_cost(4, 16, 16, "motif0", ctx)
    motif = SuperMotif(4, NASLIB)
    x = torch.randn(3, 4, 16, 16, requires_grad=True)
    saved: dict[int, int] = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = motif(x, ctx, "motif0")
        _ = ctx.weights["motif0"][0, 0] * y
    saved.pop(x.untyped_storage().data_ptr(), None)
    # per-image activations scale with the batch; batch norm's per-channel statistics (a few bytes) do not
    assert sum(saved.values()) == pytest.approx(3 * kept, rel=0.02) and out == 4 * 16 * 16 * 4


def test_naslib_network_estimate_at_batch_64():
    """NASLib's search supernet keeps about 42 GiB at batch 64 (NASLib measured 43,460 MiB on a GPU);
    recomputing every cell, about 1.1 GiB: a 16 GB card holds it."""
    make = lambda c: SuperMotif(c, NASLIB)  # noqa: E731
    planner = MemoryPlanner(make, Macro(16), motifs=6, cell_first=0, memory_gib=16 * 0.7, key=("naslib", 1))
    ctx = EdgeContext({f"motif{m}": None for m in range(6)})  # weighted sum: every op of every edge
    plan = planner.plan(torch.empty(64, 3, 32, 32, device="meta"), ctx)
    est = planner.last
    full_gib, all_gib = 64 * sum(est.kept) / 2**30, 64 * sum(est.recomputed) / 2**30
    assert 38 < full_gib < 45 and all_gib < 1.5
    assert plan == (True, True, False) and est.need() <= est.budget  # the widest cells recompute first


def test_partial_channels():
    space = _small("light")
    sn = space.supernet(TINY_TASK, "tiny", partial=2)
    arch = space.sample(np.random.default_rng(0))
    out = sn(_x(), space.arch_weights(arch), active=space.active(arch))
    assert out.shape == (2, 10)
    assert all(e.partial == 2 for e in sn.modules() if isinstance(e, MixedEdge))
    with pytest.raises(ConfigError):
        space.supernet(TINY_TASK, "tiny", partial=3)


def test_naslib_design_pieces():
    """NASLib's motif end (Concat1x1: 3C -> C conv, affine BN), stem without ReLU, DARTS separable convs."""
    space = _space("naslib", tiny_channels=4)
    net = space.build(space.parse(LIU_2018), TINY_TASK, "tiny")
    motif = net.layers[1].edges["0"]
    assert motif.end.conv.in_channels == 12 and motif.end.bn.affine
    assert not any(isinstance(m, torch.nn.ReLU) for m in net.layers[0])
    assert type(net.layers[2]).__name__ == "SepConv"
    assert LIGHT.cell_none and not NASLIB.cell_none
