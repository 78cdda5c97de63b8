"""Build the gather DMA with Verilator and run its cocotb bench, one build per bus width.

Each parameter set also stresses a different corner: short bursts with few
outstanding reads and a read buffer of barely one row (64 bit), the default
sizes (128 bit), and short bursts over a wide bus (512 bit).
"""

import pytest

from hotline.config import HotlineConfig
from hotline.testbench.runner import run_bench

PARAMS = {
    "w64": {"data_bits": 64, "max_burst_beats": 4, "max_outstanding": 4,
            "max_row_bytes": 256, "rbuf_beats": 40},
    "w128": {"data_bits": 128},
    "w512": {"data_bits": 512, "max_burst_beats": 2, "max_outstanding": 8, "rbuf_beats": 24},
}


@pytest.mark.cosim
@pytest.mark.parametrize("name", list(PARAMS), ids=list(PARAMS))
def test_gather_cosim(name):
    cfg = HotlineConfig().replace(gather=PARAMS[name])
    run_bench("gather", cfg, "hotline.testbench.gather_tb", f"gather_{name}")


def test_verilog_ports_match_cocotbext_axi():
    """Every signal cocotbext-axi's AxiBus.from_prefix(dut, "m_axi") needs is a port."""
    import re

    from cocotbext.axi.axi_channels import AxiARBus, AxiAWBus, AxiBBus, AxiRBus, AxiWBus

    from hotline.rtl.export import unit_verilog

    cfg = HotlineConfig().replace(gather={"data_bits": 64, "id_bits": 3})
    text = unit_verilog("gather", cfg)
    header = text[:text.index(");")]
    ports = set(re.findall(r"\b(m_axi_\w+)", header))
    widths = {name: int(msb or 0) + 1 for msb, name in re.findall(
        r"(?:input|output)\s+(?:reg\s+)?(?:\[(\d+):0\]\s+)?(m_axi_\w+)", text)}
    for bus in (AxiAWBus, AxiWBus, AxiBBus, AxiARBus, AxiRBus):
        for sig in bus._signals:
            assert f"m_axi_{sig}" in ports, f"port m_axi_{sig} missing"
    for sig in ("awlock", "awcache", "awprot", "awqos", "arlock", "arcache", "arprot", "arqos",
                "wstrb", "bresp", "rresp"):
        assert f"m_axi_{sig}" in ports, f"port m_axi_{sig} missing"
    assert widths["m_axi_wdata"] == 64 and widths["m_axi_wstrb"] == 8
    assert widths["m_axi_arid"] == 3 and widths["m_axi_araddr"] == 64
    assert widths["m_axi_awlen"] == 8 and widths["m_axi_bresp"] == 2
    assert widths["m_axi_rvalid"] == 1


def test_constructor_and_signature_checks():
    from hotline.rtl.axi import AXI4LiteSignature, AXI4Signature
    from hotline.rtl.gather import GatherDMA

    with pytest.raises(TypeError, match="cfg"):
        GatherDMA({"data_bits": 64})
    with pytest.raises(ValueError, match="data_width"):
        AXI4Signature(addr_width=64, data_width=96, id_width=4)
    with pytest.raises(TypeError, match="id_width"):
        AXI4Signature(addr_width=64, data_width=64, id_width="4")
    with pytest.raises(ValueError, match="data_width"):
        AXI4LiteSignature(addr_width=16, data_width=128)
    a = AXI4Signature(addr_width=64, data_width=128, id_width=4)
    assert a == AXI4Signature(addr_width=64, data_width=128, id_width=4)
    assert a != AXI4Signature(addr_width=64, data_width=64, id_width=4)
    assert set(a.flip().members) == set(a.members)
