"""nasmix: mix NAS search spaces, strategies and performance estimators, and
measure how much accuracy each buys per unit of compute."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """Lazy re-exports: `nasmix.load_model` and `nasmix.create_model` (nasmix.export) load on first use."""
    if name in ("load_model", "create_model"):
        from nasmix.export import hub

        return getattr(hub, name)
    raise AttributeError(f"module 'nasmix' has no attribute {name!r}")
