"""Argument types that check their value where the arguments are parsed (a bad one is exit 2)."""

from __future__ import annotations

import argparse

from recengine.config.options import check_scheduler_address


class IntermixedParser(argparse.ArgumentParser):
    """A subcommand parser that takes options between and after positionals
    (``history like --user U TRACK``), as every CLI user expects."""

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._intermixing:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def count(text: str) -> int:
    """How many results: a whole number from 1 to 10000."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 10000:
        raise argparse.ArgumentTypeError(f"expected a number from 1 to 10000, got {value}")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more seconds, got {text}")
    return value


def tag_match(text: str) -> tuple[str, str]:
    """``FIELD=TEXT``."""
    field, sep, needle = text.partition("=")
    if not sep or not field.strip():
        raise argparse.ArgumentTypeError(f"expected FIELD=TEXT (e.g. genre=jazz), got {text!r}")
    return field.strip(), needle


def strategy_weight(text: str) -> tuple[str, float]:
    """``NAME`` or ``NAME=WEIGHT`` with a weight of 0 or more."""
    name, sep, weight = text.partition("=")
    if not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=WEIGHT, got {text!r}")
    try:
        value = float(weight) if sep else 1.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=WEIGHT with a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"a strategy's weight is 0 or more, got {text!r}")
    return name.strip(), value


def scheduler_address(text: str) -> str:
    """A Dask scheduler's address, ``scheme://host:port`` (checked as ``scan.dask.scheduler`` is)."""
    problem = check_scheduler_address(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text
