"""`nasmix run`: one study cell (space x strategy x estimator) from flags: the search,
then the chosen arch trained from scratch, into a store as `nasmix study` writes it.

The flags become the same typed study a study file makes (`make_study`). Settings of
one phase carry its name (`--search-epochs`, `--eval-epochs`), as run has two phases;
`nasmix search` and `nasmix train` run one and take the bare names (`--epochs`).

Example:
    nasmix run --space nb201 --strategy random --estimator zero_cost --opt estimator.proxy=snip \\
        --dataset synthetic --candidates 8 --search-size tiny --eval-epochs 1 --eval-size tiny
"""

from __future__ import annotations

import argparse
import time

from nasmix.config import EVAL_PRESETS, DataSettings, SearchSettings, eval_settings, make_study
from nasmix.console import console
from nasmix.errors import ConfigError
from nasmix.flags import add_data_flags, add_opt_flag, module_options
from nasmix.options import build_config
from nasmix.study.driver import run_study
from nasmix.study.grid import expand
from nasmix.validate import check_count, check_data_flags, check_numbers, check_store_folder

KINDS = ("space", "strategy", "estimator")


def add_parser(sub) -> None:
    """Add the `run` subcommand to the `nasmix` parser."""
    p = sub.add_parser("run", help="run one cell (space x strategy x estimator) from flags, into a store")
    p.add_argument("--space", required=True, help="search space (nasmix list space)")
    p.add_argument("--strategy", required=True, help="search strategy (nasmix list strategy)")
    p.add_argument("--estimator", default=None, help="for discrete strategies (default: train)")
    add_opt_flag(p, KINDS)
    add_data_flags(p)
    p.add_argument(
        "--portion",
        type=float,
        default=None,
        help="share of the training images that train weights (default 0.5)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="run", help="study name (and default store runs/NAME.db)")
    p.add_argument("--store", default=None, help="the store (default runs/NAME.db); a re-run resumes it")
    g = p.add_argument_group("search phase")
    g.add_argument("--search-epochs", type=int, default=None, help="supernet epochs (one-shot)")
    g.add_argument("--candidates", type=int, default=None, help="archs a discrete strategy may score")
    g.add_argument(
        "--search-batch-size",
        type=int,
        default=None,
        help="search batch size, also of the estimators that train",
    )
    g.add_argument("--search-size", default=None, help="network size searched: tiny, search or eval")
    g.add_argument("--search-max-seconds", type=float, default=None, help="cap on the search's seconds")
    g = p.add_argument_group("evaluation phase")
    g.add_argument("--eval-preset", default="fast", choices=sorted(EVAL_PRESETS))
    g.add_argument("--eval-epochs", type=int, default=None)
    g.add_argument("--eval-batch-size", type=int, default=None)
    g.add_argument("--eval-size", default=None, help="network size trained: tiny, search or eval")
    g.add_argument("--eval-max-seconds", type=float, default=None, help="cap on the training's seconds")
    g.add_argument("--checkpoint-every", type=int, default=None, help="checkpoint every K epochs (0: never)")
    g = p.add_argument_group("backend")
    g.add_argument("--backend", default="inprocess", choices=["inprocess", "local", "ray"])
    g.add_argument("--workers", type=int, default=None, help="local backend: worker processes")
    g.add_argument(
        "--ray-address",
        "--address",
        dest="address",
        default=None,
        help="ray backend: address of an existing cluster",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_run)


def _given(**values):
    return {k: v for k, v in values.items() if v is not None}


def cmd_run(args: argparse.Namespace) -> int:
    """One cell from flags, built as the same typed study a study file makes."""
    check_count(args.workers, "--workers")
    check_data_flags(args)
    check_numbers(module_options(args), "", "--opt ")
    search = build_config(
        SearchSettings,
        _given(
            epochs=args.search_epochs,
            candidates=args.candidates,
            batch_size=args.search_batch_size,
            size=args.search_size,
            max_seconds=args.search_max_seconds,
        ),
        "search",
    )
    # Evaluate at each checkpoint; 0 (never checkpoint) keeps the preset's eval_every.
    eval_flags = _given(
        epochs=args.eval_epochs,
        batch_size=args.eval_batch_size,
        size=args.eval_size,
        max_seconds=args.eval_max_seconds,
        eval_every=args.checkpoint_every or None,
        checkpoint_every=args.checkpoint_every,
    )
    evaluation = eval_settings(args.eval_preset, eval_flags, "evaluation flags")
    data = build_config(
        DataSettings,
        _given(train_subset=args.train_subset, test_subset=args.test_subset, search_portion=args.portion),
        "data",
    )
    options = module_options(args)
    if "estimator" in options and args.estimator is None:
        raise ConfigError("--opt estimator.* needs --estimator NAME")
    names = {"space": args.space, "strategy": args.strategy, "estimator": args.estimator or "train"}
    cfg = make_study(
        args.name,
        spaces=args.space,
        strategies=args.strategy,
        estimators=names["estimator"],
        datasets=args.dataset,
        seeds=args.seed,
        device=args.device,
        store=args.store,
        data=data,
        search=search,
        eval=evaluation,
        options={kind: {names[kind]: values} for kind, values in options.items()},
    )
    cells, dropped = expand(cfg)
    if not cells:
        raise ConfigError(f"nothing to run: {'; '.join(dropped)}")
    check_store_folder(cfg.store, "--store")
    t0 = time.perf_counter()
    summary = run_study(cfg, args.data, args.backend, args.workers, args.address, args.quiet)
    states = ", ".join(sorted(set(summary.states.values()))) or "already ended"
    console.print(
        f"cell {cfg.spaces[0]} x {cfg.strategies[0]} x {cfg.estimators[0]}: {states} "
        f"in {time.perf_counter() - t0:.1f}s wall; store {cfg.store}"
    )
    return 0
