"""Argument checks shared by the hardware units."""

from __future__ import annotations

from ..config import HotlineConfig

__all__ = ["require_config"]


def require_config(component, cfg) -> HotlineConfig:
    """Return ``cfg`` if it is a :class:`HotlineConfig`, else raise :class:`TypeError`.

    A rejected component is never elaborated; silence Amaranth's "created but
    never used" warning for it, which would otherwise fire later, at garbage
    collection, in some unrelated place.
    """
    if not isinstance(cfg, HotlineConfig):
        component._MustUse__silence = True
        raise TypeError(f"cfg must be a HotlineConfig, not {type(cfg).__name__}")
    return cfg
