"""Subcommands of `haechi`, one module per area, each exposing add_commands(subparsers).

`haechi --help` builds every module's parsers, so a module's top level defines arguments with
the standard library and engines.inputs only; whatever running a command needs (Scrapy,
SQLAlchemy, FAISS, the takedown app...) is imported inside the function that runs it.

A command says which exit code family its failure is in with the exceptions below;
haechi/cli.py prints their message as a sentence and exits with the family's code.
"""

from __future__ import annotations

from engines.settings import ConfigurationError

__all__ = ["EXIT_CONFIGURATION", "EXIT_INPUTS_FAILED", "EXIT_USAGE", "ConfigurationError",
           "UsageError", "require_redis_url"]

# The exit code families every command shares (the matcher's contract in README.md).
EXIT_INPUTS_FAILED = 1  # the command ran, but some of its inputs could not be processed
EXIT_USAGE = 2  # the command line cannot be done as written (argparse uses 2 too)
EXIT_CONFIGURATION = 3  # the installation or its environment is not set up for the command


class UsageError(Exception):
    """The command line asks for something that cannot be done as written (exit 2)."""


def require_redis_url(because: str) -> str:
    """REDIS_URL, which a cluster-mode command needs `because` (said in its error); unset is
    a configuration error."""
    from engines.settings import current

    url = current().redis_url
    if url is None:
        raise ConfigurationError(f"REDIS_URL is not set: {because}")
    return url
