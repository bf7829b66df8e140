"""Command-line flags that several commands share: the data flags, one flag per
field of a config dataclass, and the one grammar of module options.

Module options take one flag on every command that builds modules:
`--opt KIND.KEY=VALUE` (repeatable), e.g. `--opt strategy.lr=0.01`,
`--opt estimator.proxy=snip`, `--opt space.channels=8`, `--opt model.width=4`.
A value is read as JSON where it parses (numbers, booleans, lists), else as text.
The old per-kind flags (`--space-opt`, `--strategy-opt`, `--model-opt`, `--estimator-opt`)
still work as deprecated aliases: each use prints a one-line notice.

Example:
    >>> import argparse
    >>> p = argparse.ArgumentParser()
    >>> add_opt_flag(p, ("space", "strategy"))
    >>> module_options(p.parse_args(["--opt", "space.layers=3", "--opt", "strategy.lr=0.1"]))
    {'space': {'layers': 3}, 'strategy': {'lr': 0.1}}
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from nasmix.data import DatasetArrays, check_path_use, load_dataset, with_subsets
from nasmix.errors import ConfigError, UnknownNameError
from nasmix.options import build_config, parse_options


class _DeprecatedOpt(argparse.Action):
    """`--KIND-opt KEY=VALUE`: the old spelling of `--opt KIND.KEY=VALUE`, with a notice."""

    def __init__(self, option_strings: Sequence[str], dest: str, kind: str = "", **kwargs: Any) -> None:
        self.kind = kind
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"nasmix: {option_string} is deprecated; use --opt {self.kind}.KEY=VALUE", file=sys.stderr)
        pairs = list(getattr(namespace, self.dest, None) or [])
        pairs.append(f"{self.kind}.{values}")
        setattr(namespace, self.dest, pairs)


def add_opt_flag(parser: argparse.ArgumentParser, kinds: Sequence[str]) -> None:
    """Add `--opt KIND.KEY=VALUE` for the module kinds a command builds, and the
    deprecated `--KIND-opt KEY=VALUE` aliases.

    Args:
        parser: the command's parser.
        kinds: the module kinds whose options the command takes, e.g. ("space", "strategy").
    """
    examples = {"space": "space.channels=8", "strategy": "strategy.lr=0.01", "model": "model.width=8"}
    example = examples.get(kinds[0], f"{kinds[0]}.KEY=VALUE")
    parser.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="KIND.KEY=VALUE",
        help=f"an option of the {', '.join(kinds)} (repeatable), e.g. --opt {example}",
    )
    for kind in kinds:
        old = f"--{kind}-opt"
        parser.add_argument(old, action=_DeprecatedOpt, dest="opt", kind=kind, help=argparse.SUPPRESS)
    parser.set_defaults(opt_kinds=tuple(kinds))


def module_options(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The `--opt` values of a parsed command line, by module kind.

    Returns:
        kind -> option name -> value; a kind without options is absent.

    Raises:
        ConfigError: a pair that is not KIND.KEY=VALUE, or a kind this command does not build.
    """
    kinds: tuple[str, ...] = getattr(args, "opt_kinds", ())
    out: dict[str, dict[str, Any]] = {}
    for pair in getattr(args, "opt", None) or ():
        head, eq, _ = pair.partition("=")
        kind, dot, key = head.partition(".")
        if not eq or not dot or not key.strip():
            raise ConfigError(f"--opt {pair!r} must look like KIND.KEY=VALUE, e.g. --opt {kinds[0]}.x=1")
        if kind not in kinds:
            raise ConfigError(UnknownNameError("module kind in --opt", kind, kinds).__str__())
        out.setdefault(kind, {}).update(parse_options([pair[len(kind) + 1 :]], kind))
    return out


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    """--dataset, --data, --train-subset, --test-subset and --device: the same in every command."""
    parser.add_argument("--dataset", default="cifar10", help="dataset name (nasmix list dataset)")
    parser.add_argument("--data", default=None, help="dataset location (default: $NASMIX_DATA)")
    parser.add_argument("--train-subset", type=int, default=None, help="class-balanced training subset size")
    parser.add_argument("--test-subset", type=int, default=None, help="class-balanced test subset size")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def load_data(args: argparse.Namespace) -> DatasetArrays:
    """The dataset of the data flags, with its subsets applied."""
    check_path_use([args.dataset], args.data, "--data")
    return with_subsets(load_dataset(args.dataset, args.data), args.train_subset, args.test_subset)


def add_dataclass_flags(parser: argparse.ArgumentParser, config_type: type, skip: Sequence[str] = ()) -> None:
    """One --flag per field of a frozen config dataclass (kept in step with the code)."""
    group = parser.add_argument_group(config_type.__name__)
    for f in dataclasses.fields(config_type):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        if kind == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            convert = {"int": int, "float": float}.get(kind, str)
            group.add_argument(flag, type=convert, default=None, metavar=kind.upper())


def dataclass_from_flags(args: argparse.Namespace, config_type: type, base: dict | None = None) -> Any:
    """Build a config from the flags the user gave, over `base` values, over the defaults."""
    values = dict(base or {})
    given = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(config_type)}
    values.update({k: v for k, v in given.items() if v is not None})
    return build_config(config_type, values, config_type.__name__)
