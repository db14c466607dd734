"""The ``swimraft`` command.

* ``swimraft demo [--nodes N]``: a local cluster on loopback; kills a node and shows detection.
* ``swimraft node``: one node configured by ``RINGRIFT_*`` variables (JSON-lines events on stdout).
* ``swimraft config``: prints the effective configuration (environment + preset), or the error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="swimraft", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a local cluster on 127.0.0.1 and show failure detection")
    demo.add_argument("--nodes", type=int, default=5, help="cluster size, 3-20 (default 5)")
    demo.add_argument("--preset", default="lan", choices=["lan", "local", "wan"])
    sub.add_parser("node", help="run one node configured by RINGRIFT_* variables")
    sub.add_parser("config", help="print the effective configuration")
    sub.add_parser("version", help="print the version")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args.nodes, args.preset)
    if args.command == "node":
        from .agent import main as agent_main

        return agent_main()
    if args.command == "config":
        from .config import Config
        from .errors import ConfigError

        try:
            print(json.dumps(Config().to_dict(), indent=2, sort_keys=True))
        except ConfigError as exc:
            print(f"configuration error: {exc}", file=sys.stderr)
            return 2
        return 0
    from . import __version__

    print(__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
