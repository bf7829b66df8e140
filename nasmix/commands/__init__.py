"""The subcommands of `nasmix`, one file each.

Each module defines `add_parser(subparsers)`, which adds its subcommand and
sets `func` (the handler taking the parsed arguments and returning an exit
code); `nasmix.cli` imports every module here. Flags several commands share
(data, module options) come from nasmix.flags.
"""
