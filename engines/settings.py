"""The one error for a setting or an installation that cannot be used (the CLI's exit 3).

Ground floor: engines below the stages (the outbound policy's HAECHI_FETCH_ALLOW, say) raise it
without importing the command line, and haechi/cli.py turns it into a sentence and exit 3.
"""

from __future__ import annotations


class ConfigurationError(Exception):
    """The installation or its environment is not set up for this command (exit 3)."""
