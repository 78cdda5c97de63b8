"""Amaranth hardware of the accelerator.

Units are listed in :data:`UNITS` (name -> ``module:class``); each class takes
a :class:`~hotline.config.HotlineConfig`.  :func:`to_verilog` writes any of
them as Verilog with ``prefix_member`` port names.
"""

from .export import UNITS, build_unit, to_verilog, unit_verilog

__all__ = ["UNITS", "build_unit", "to_verilog", "unit_verilog"]
