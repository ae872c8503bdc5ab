"""Errors that are the user's to fix: the CLI prints them as one line, without a traceback."""
from __future__ import annotations


class UserError(Exception):
    """A mistake in the input (config, files, environment) with a message that says how to fix it."""


class ConfigError(UserError):
    """A configuration value or key is wrong; the message starts with the key path."""


class LammpsError(UserError):
    """LAMMPS is missing or a LAMMPS run failed; the message names the log file."""
