"""`python -m grid_mgmt.runner …`: the runner's subcommands without the full `grid-mgmt` command."""

from __future__ import annotations

import argparse
import sys

from grid_mgmt.runner.cli import register


def main(argv: list[str] | None = None) -> int:
    """Parse the runner subcommands and run one."""
    parser = argparse.ArgumentParser(prog="python -m grid_mgmt.runner")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
