"""Subcommands of `haechi`, one module per area, each exposing add_commands(subparsers)."""
