"""`python -m testkit.testweb`: serve a test web until killed."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from testkit.testweb.model import WebPlan
from testkit.testweb.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--served-log", type=Path)
    for spec in fields(WebPlan):
        flag = "--" + spec.name.replace("_", "-")
        if spec.type in ("bool", bool):
            parser.add_argument("--no-" + spec.name.replace("_", "-"), dest=spec.name,
                                action="store_false")
        else:
            parser.add_argument(flag, type=type(spec.default), default=spec.default)
    args = parser.parse_args()
    plan = WebPlan(**{spec.name: getattr(args, spec.name) for spec in fields(WebPlan)})
    serve(plan, args.port, args.served_log)


if __name__ == "__main__":
    main()
