"""``hpc-botan completion SHELL``: a shell completion script generated from the parser."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "completion", help="print a shell completion script (bash, zsh or tcsh)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print a completion script for hpc-botan's commands and options, generated from this "
                    "parser (shtab).",
        epilog="examples:\n  hpc-botan completion bash > ~/.local/share/bash-completion/completions/hpc-botan\n"
               "  hpc-botan completion zsh > ~/.zfunc/_hpc-botan   (with fpath+=~/.zfunc in ~/.zshrc)")
    p.add_argument("shell", choices=("bash", "zsh", "tcsh"))
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import shtab  # imported here: only this command needs it

    # the whole parser, which lists this module: imported when the command runs
    from hpc_botan.cli import build_parser

    print(shtab.complete(build_parser(), shell=args.shell))
    return 0
