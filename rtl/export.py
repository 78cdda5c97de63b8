"""Verilog export of the accelerator's units.

Amaranth names a port of a ``wiring.Component`` by joining its signature path
with ``__`` (``input__valid``).  The usual Verilog style, and what
cocotbext-axi's ``AxiBus.from_prefix(dut, "m_axi")`` binds to, is a single
underscore (``m_axi_arvalid``, ``keys_valid``), so :func:`to_verilog` joins
with ``_``.
"""

from __future__ import annotations

import importlib

from amaranth.back import verilog
from amaranth.hdl import ValueCastable, Value
from amaranth.lib import wiring
from amaranth.hdl._ir import PortDirection

from ..config import HotlineConfig

__all__ = ["UNITS", "build_unit", "to_verilog", "unit_verilog"]

#: Unit name -> "module:class" (relative to hotline.rtl); the class takes a HotlineConfig.
UNITS = {
    "counter": "popularity:PopularityCounterArray",
    "reorder": "reorder:ReorderUnit",
    "gather": "gather:GatherDMA",
    "top": "top:HotlineTop",
    "uart_bridge": "uart_bridge:UartBridge",
}


def build_unit(name: str, cfg: HotlineConfig | None = None):
    """Instantiate the unit called ``name`` for ``cfg`` (default config if None)."""
    if name not in UNITS:
        raise ValueError(f"unknown unit {name!r}; choose one of: {', '.join(UNITS)}")
    module_name, cls_name = UNITS[name].split(":")
    try:
        module = importlib.import_module(f"hotline.rtl.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"hotline.rtl.{module_name}":
            raise ValueError(f"unit {name!r} is not implemented yet") from None
        raise
    return getattr(module, cls_name)(cfg if cfg is not None else HotlineConfig())


def to_verilog(component: wiring.Component, name: str, sep: str = "_", *,
               wrapper=None) -> str:
    """Verilog of a component, its ports named by joining signature paths with ``sep``.

    ``wrapper``, if given, is an elaboratable that holds ``component`` as a submodule
    and is converted in its place: the module still has exactly ``component``'s ports
    (and its domains' clock and reset).
    """
    ports = {}
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if isinstance(value, Value):
            direction = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
            port_name = sep.join(map(str, path))
            if port_name in ports:
                raise ValueError(f"two ports of {name} would both be called {port_name!r}")
            ports[port_name] = (value, direction)
    return verilog.convert(wrapper if wrapper is not None else component, name=name,
                           ports=ports, emit_src=False)


def unit_verilog(name: str, cfg: HotlineConfig | None = None, module_name: str | None = None) -> str:
    """Verilog of a named unit for ``cfg``; the module is ``hotline_<name>`` by default."""
    return to_verilog(build_unit(name, cfg), module_name or f"hotline_{name}")
