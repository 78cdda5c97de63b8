"""ECP5 PLL (EHXPLLL) settings for a wanted output clock."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockSignal, Instance, Signal

__all__ = ["PLLSettings", "ecp5_pll_settings", "ecp5_pll"]

# ECP5 sysCLOCK PLL limits (Lattice TN1263): phase detector input 3.125-400 MHz,
# VCO 400-800 MHz, output 3.125-400 MHz; dividers CLKI 1-128, CLKFB 1-80, CLKOP 1-128.
_PFD = (3.125, 400.0)
_VCO = (400.0, 800.0)


@dataclass(frozen=True)
class PLLSettings:
    clki_div: int
    clkfb_div: int
    clkop_div: int
    f_in_mhz: float
    f_out_mhz: float

    @property
    def f_vco_mhz(self) -> float:
        return self.f_out_mhz * self.clkop_div


def ecp5_pll_settings(f_in_mhz: float, f_out_mhz: float, tolerance: float = 0.005) -> PLLSettings:
    """Dividers that give the output closest to ``f_out_mhz`` (feedback from CLKOP).

    Raises :class:`ValueError` when nothing within ``tolerance`` (relative) exists.
    """
    if not (3.125 <= f_out_mhz <= 400):
        raise ValueError(f"an ECP5 PLL output must be 3.125 to 400 MHz, not {f_out_mhz}")
    best = None
    for clki in range(1, 129):
        pfd = f_in_mhz / clki
        if not _PFD[0] <= pfd <= _PFD[1]:
            continue
        for fb in range(1, 81):
            out = pfd * fb
            for op in range(1, 129):
                vco = out * op
                if not _VCO[0] <= vco <= _VCO[1]:
                    continue
                err = abs(out - f_out_mhz)
                # prefer the smallest error, then a higher VCO (less jitter)
                key = (round(err, 9), -vco)
                if best is None or key < best[0]:
                    best = (key, PLLSettings(clki, fb, op, f_in_mhz, out))
    if best is None or best[0][0] > tolerance * f_out_mhz:
        raise ValueError(f"no ECP5 PLL setting gives {f_out_mhz} MHz from {f_in_mhz} MHz")
    return best[1]


def ecp5_pll(settings: PLLSettings, clk_in, domain: str = "sync"):
    """An ``EHXPLLL`` instance driving ``ClockSignal(domain)``; returns ``(instance, locked)``."""
    locked = Signal(name=f"{domain}_pll_locked")
    inst = Instance(
        "EHXPLLL",
        a_FREQUENCY_PIN_CLKI=f"{settings.f_in_mhz:g}",
        a_FREQUENCY_PIN_CLKOP=f"{settings.f_out_mhz:g}",
        a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
        a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
        p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
        p_CLKI_DIV=settings.clki_div, p_CLKFB_DIV=settings.clkfb_div,
        p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=settings.clkop_div,
        p_CLKOP_CPHASE=settings.clkop_div - 1, p_CLKOP_FPHASE=0,
        p_FEEDBK_PATH="CLKOP",
        i_RST=0, i_STDBY=0, i_CLKI=clk_in, i_CLKFB=ClockSignal(domain),
        o_CLKOP=ClockSignal(domain), o_LOCK=locked,
        i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
        i_PLLWAKESYNC=0, i_ENCLKOP=0,
    )
    return inst, locked
