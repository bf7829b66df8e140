"""The tabular estimator on tiny fixtures written in the NAS-Bench-201 and NATS-Bench formats."""

import bz2
import pickle

import numpy as np
import pytest
import torch

from nasmix import registry
from nasmix.arch import Arch
from nasmix.errors import ConfigError, DataError
from nasmix.events import Candidate
from nasmix.strategies.base import AskTell, Budget
from nasmix.testing import tiny_search_data

SPACE = registry.create("space", "nb201")
ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|",
]
SEEDS = {"cifar10-valid": [777, 888], "cifar10": [777], "cifar100": [777]}
SETS = {
    "cifar10-valid": ["x-valid", "ori-test"],
    "cifar10": ["ori-test"],
    "cifar100": ["x-valid", "x-test", "ori-test"],
}


def acc(index, dataset, seed, eval_set, epoch, epochs):
    """A made-up but recognisable accuracy (percent)."""
    return 40.0 + 10 * index + (seed - 777) / 100 + epoch / epochs + len(eval_set) / 10 + len(dataset) / 100


def run_state(index, dataset, seed, epochs):
    """A ResultsCount state dict, as the benchmark stores one run."""
    accs, times = {}, {}
    for s in SETS[dataset]:
        for e in range(epochs):
            accs[f"{s}@{e}"] = acc(index, dataset, seed, s, e, epochs)
            times[f"{s}@{e}"] = 0.5 + index
    return {
        "name": dataset,
        "seed": seed,
        "epochs": epochs,
        "net_state_dict": None,
        "params": 0.1,
        "flop": 10.0,
        "train_acc1es": {e: 50.0 for e in range(epochs)},
        "train_losses": {e: 1.0 for e in range(epochs)},
        "train_times": {e: 2.0 + index + (seed - 777) / 111 for e in range(epochs)},
        "eval_names": SETS[dataset],
        "eval_acc1es": accs,
        "eval_times": times,
        "eval_losses": {k: 1.0 for k in accs},
        "latency": [0.01],
    }


def arch_results(index, epochs):
    """An ArchResults state dict: every (dataset, seed) run of one arch at one schedule."""
    runs = {(d, s): run_state(index, d, s, epochs) for d, seeds in SEEDS.items() for s in seeds}
    return {
        "arch_index": index,
        "arch_str": ARCHS[index],
        "all_results": runs,
        "dataset_seed": SEEDS,
        "clear_net_done": True,
    }


def write_nb201(path):
    infos = {i: {"less": arch_results(i, 12), "full": arch_results(i, 200)} for i in range(len(ARCHS))}
    torch.save({"meta_archs": ARCHS, "arch2infos": infos, "evaluated_indexes": set(range(len(ARCHS)))}, path)
    return path


def write_nats_simple(folder):
    folder.mkdir()
    with bz2.BZ2File(folder / "meta.pickle.pbz2", "wb") as f:
        pickle.dump({"meta_archs": ARCHS, "arch2infos": {}, "evaluated_indexes": set()}, f)
    for i in range(len(ARCHS)):
        with bz2.BZ2File(folder / f"{i:06d}.pickle.pbz2", "wb") as f:
            pickle.dump({"12": arch_results(i, 12), "200": arch_results(i, 200)}, f)
    return folder


@pytest.fixture(scope="module", params=["nb201", "nats"])
def bench(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "nb201":
        return write_nb201(root / "NAS-Bench-201-v1_1-096897.pth")
    return write_nats_simple(root / "NATS-tss-v1_0-3ffb9-simple")


def _estimate(path, arch_str, **cfg):
    est = registry.create("estimator", "tabular", path=str(path), **cfg)
    est.prepare(SPACE, tiny_search_data(), Budget(), np.random.default_rng(0))
    return est.estimate(SPACE, SPACE.parse(arch_str), tiny_search_data())


def test_round_trip_valid_accuracy_and_simulated_cost(bench):
    e = _estimate(bench, ARCHS[2])  # cifar10-valid, 200 epochs, valid
    expected = np.mean([acc(2, "cifar10-valid", s, "x-valid", 199, 200) for s in (777, 888)]) / 100
    assert e.score == pytest.approx(expected) and e.simulated
    train_s = np.mean([200 * (2.0 + 2 + (s - 777) / 111) for s in (777, 888)])
    assert e.cost_s == pytest.approx(train_s + 2.5)  # all training epochs + one validation pass
    test = np.mean([acc(2, "cifar10-valid", s, "ori-test", 199, 200) for s in (777, 888)]) / 100
    assert e.extra["true_score"] == pytest.approx(test) and e.extra["index"] == 2
    assert e.fidelity == {"epochs": 200, "dataset": "cifar10-valid", "metric": "valid", "seeds": 2}


def test_schedules_datasets_and_metrics_map_like_the_benchmark_api(bench):
    e = _estimate(bench, ARCHS[0], epochs=12, dataset="cifar100", metric="test")
    assert e.score == pytest.approx(acc(0, "cifar100", 777, "x-test", 11, 12) / 100)
    assert e.cost_s == pytest.approx(12 * 2.0 + 0.5)
    e = _estimate(
        bench, ARCHS[1], dataset="cifar10", metric="valid"
    )  # cifar10's valid is cifar10-valid's x-valid
    assert e.score == pytest.approx(
        np.mean([acc(1, "cifar10-valid", s, "x-valid", 199, 200) for s in (777, 888)]) / 100
    )
    assert e.extra["true_score"] == pytest.approx(acc(1, "cifar10", 777, "ori-test", 199, 200) / 100)


def test_a_search_over_the_benchmark_logs_simulated_candidates(bench):
    class Cycle(AskTell):
        """Proposes the fixture's archs in turn."""

        def reset(self, space, rng):
            self.i = 0

        def ask(self, rng):
            self.i += 1
            return SPACE.parse(ARCHS[(self.i - 1) % len(ARCHS)])

        def tell(self, arch, score):
            pass

    events = []
    est = registry.create("estimator", "tabular", path=str(bench))
    best = Cycle().search(
        SPACE, est, tiny_search_data(), Budget(candidates=3), events.append, np.random.default_rng(0)
    )
    assert best == SPACE.parse(ARCHS[2])
    cands = [e for e in events if isinstance(e, Candidate)]
    assert all(c.simulated and "true_score" in c.extra for c in cands)
    assert cands[-1].cumulative_cost_s == pytest.approx(sum(c.cost_s for c in cands))


def test_missing_path_and_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="path"):
        registry.create("estimator", "tabular")
    for bad in ({"epochs": 100}, {"dataset": "imagenet"}, {"metric": "train"}):
        with pytest.raises(ConfigError):
            registry.create("estimator", "tabular", path="x.pth", **bad)
    with pytest.raises(DataError, match="does not exist"):
        _estimate(tmp_path / "nope.pth", ARCHS[0])


def test_wrong_formats_are_data_errors(tmp_path):
    (tmp_path / "text.pth").write_text("not a benchmark")
    with pytest.raises(DataError, match="cannot read"):
        _estimate(tmp_path / "text.pth", ARCHS[0])
    torch.save({"something": 1}, tmp_path / "dict.pth")
    with pytest.raises(DataError, match="missing meta_archs"):
        _estimate(tmp_path / "dict.pth", ARCHS[0])
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError, match=r"meta\.pickle\.pbz2"):
        _estimate(tmp_path / "folder", ARCHS[0])
    (tmp_path / "bad.pickle.pbz2").write_bytes(b"nope")
    with pytest.raises(DataError, match="bz2"):
        _estimate(tmp_path / "bad.pickle.pbz2", ARCHS[0])


def test_arch_missing_from_the_benchmark_and_other_spaces(bench):
    other = "|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    with pytest.raises(DataError, match="has no arch"):
        _estimate(bench, other)
    est = registry.create("estimator", "tabular", path=str(bench))
    chain = registry.create("space", "chain")
    with pytest.raises(ConfigError, match="nb201"):
        est.prepare(chain, tiny_search_data(), Budget(), np.random.default_rng(0))
    with pytest.raises(ConfigError, match="nb201"):
        est.estimate(chain, chain.sample(np.random.default_rng(0)), tiny_search_data())


def test_contract_skips_it_because_path_is_required():
    from nasmix.testing import check_estimator

    check_estimator("tabular")  # returns without creating it
    assert isinstance(Arch.from_str("nb201:" + ARCHS[0]), Arch)
