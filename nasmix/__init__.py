"""nasmix: mix NAS search spaces, strategies and performance estimators, and
measure how much accuracy each buys per unit of compute."""

__version__ = "0.1.0"
