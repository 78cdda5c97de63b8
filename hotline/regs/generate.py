"""Generate the register map's artefacts from ``hotline/regs/hotline.rdl``.

``python -m hotline.regs.generate [--check]`` compiles the SystemRDL source with
``systemrdl-compiler`` and writes:

* ``hotline/regmap.py``: opcode and status enums, one :class:`Register` per
  register with its fields (offset, bits, reset value, access kind), and an
  address constant per register: the driver's constants, and the table from
  which :class:`hotline.rtl.csr.CSRBlock` builds the hardware;
* ``docs/registers.md``: the Markdown reference (``peakrdl-markdown``);
* ``include/hotline_regs.h``: the C header (``peakrdl-cheader``).

With ``--check`` nothing is written; the exit status is 1 when a file differs
from what the RDL file gives (the test suite runs this).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

__all__ = ["RDL_FILE", "OUTPUTS", "compile_rdl", "field_kind", "render_regmap", "generate"]

PACKAGE = Path(__file__).resolve().parents[1]            # hotline/
ROOT = PACKAGE.parent                                     # the checkout
RDL_FILE = PACKAGE / "regs" / "hotline.rdl"
#: Output name -> path relative to the checkout.
OUTPUTS = {
    "regmap": Path("hotline/regmap.py"),
    "markdown": Path("docs/registers.md"),
    "cheader": Path("include/hotline_regs.h"),
}


def compile_rdl(path: Path = RDL_FILE):
    """The elaborated top ``addrmap`` node of the RDL file."""
    from systemrdl import RDLCompiler
    rdlc = RDLCompiler()
    rdlc.compile_file(str(path))
    return rdlc.elaborate().top


def field_kind(f) -> str:
    """How the CSR block implements a field.

    ``const``: read-only constant (its reset value); ``status``: read-only,
    driven by hardware; ``storage``: software read/write, seen by hardware;
    ``pulse``: write-only, a one-cycle pulse of the written bits; ``w1c``:
    sticky bits set by a hardware pulse, cleared by writing 1.
    """
    from systemrdl.rdltypes import OnWriteType
    sw_w, sw_r, hw_w = f.is_sw_writable, f.is_sw_readable, f.is_hw_writable
    if f.get_property("onwrite") == OnWriteType.woclr and f.get_property("hwset"):
        return "w1c"
    if sw_w and not sw_r and f.get_property("singlepulse"):
        return "pulse"
    if sw_w and sw_r and not hw_w and f.get_property("onwrite") is None:
        return "storage"
    if not sw_w and sw_r and hw_w:
        return "status"
    if not sw_w and sw_r and not hw_w:
        return "const"
    raise ValueError(f"field {f.get_path()} has an access mode the CSR block does not build")


def _enum_source(name: str, enum_cls, doc: str) -> list[str]:
    lines = [f"class {name}(enum.IntEnum):", f'    """{doc}"""']
    for member in enum_cls:
        desc = (member.rdl_desc or "").replace('"', "'")
        lines.append(f"    {member.name} = {member.value}  #: {desc}")
    return lines + ["", ""]


def render_regmap(top) -> str:
    """The source of ``hotline/regmap.py`` for the compiled map ``top``."""
    enums = {}
    regs = []
    for reg in top.registers():
        fields = []
        for f in reg.fields():
            enc = f.get_property("encode")
            if enc is not None:
                enums[enc.type_name] = enc
            reset = f.get_property("reset")
            fields.append((f.inst_name, f.lsb, f.width, field_kind(f),
                           int(reset) if reset is not None else 0,
                           enc.type_name if enc is not None else None,
                           (f.get_property("desc") or "").strip()))
        regs.append((reg.inst_name, reg.absolute_address, reg.get_property("name") or reg.inst_name,
                     fields))
    out = [
        '"""The register map of the Hotline accelerator.',
        "",
        "GENERATED from hotline/regs/hotline.rdl by ``python -m hotline.regs.generate``:",
        "do not edit; tests/test_regs.py fails when this file is stale.  The driver takes",
        "its constants from here and :class:`hotline.rtl.csr.CSRBlock` builds the",
        "hardware from :data:`REGISTERS`.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import enum",
        "from dataclasses import dataclass",
        "",
        '__all__ = ["Opcode", "Status", "Field", "Register", "REGISTERS", "BY_NAME", '
        '"ADDRESS_BITS", "MAGIC"]',
        "",
        "",
    ]
    pretty = {"opcode_e": ("Opcode", "Command opcodes (CMD_OPCODE.OPCODE)."),
              "status_e": ("Status", "Completion status codes (DONE_HEAD.STATUS).")}
    for type_name, enc in sorted(enums.items()):
        name, doc = pretty.get(type_name, (type_name, f"Encoding {type_name}."))
        out += _enum_source(name, enc, doc)
    out += [
        "@dataclass(frozen=True)",
        "class Field:",
        '    """One field: bits ``[lsb + width - 1 : lsb]`` of its register.',
        "",
        "    ``kind`` is how hardware implements it: ``const``, ``status`` (driven by",
        "    hardware), ``storage`` (software read/write), ``pulse`` (write-only, one",
        "    cycle) or ``w1c`` (set by hardware, write 1 to clear).",
        '    """',
        "    name: str",
        "    lsb: int",
        "    width: int",
        "    kind: str",
        "    reset: int",
        "    encode: str | None",
        "    desc: str",
        "",
        "    @property",
        "    def mask(self) -> int:",
        "        return ((1 << self.width) - 1) << self.lsb",
        "",
        "    def get(self, word: int) -> int:",
        '        """This field\'s value in a register word."""',
        "        return (word >> self.lsb) & ((1 << self.width) - 1)",
        "",
        "    def put(self, value: int) -> int:",
        '        """``value`` placed in this field (a one-line error if it does not fit)."""',
        "        if not 0 <= value < (1 << self.width):",
        '            raise ValueError(f"{value} does not fit in field {self.name} '
        '({self.width} bits)")',
        "        return value << self.lsb",
        "",
        "",
        "@dataclass(frozen=True)",
        "class Register:",
        '    """One 32-bit register at byte ``offset``."""',
        "    name: str",
        "    offset: int",
        "    title: str",
        "    fields: tuple",
        "",
        "    def field(self, name: str) -> Field:",
        "        for f in self.fields:",
        "            if f.name == name:",
        "                return f",
        '        raise KeyError(f"register {self.name} has no field {name!r}")',
        "",
        "    @property",
        "    def reset(self) -> int:",
        "        return sum(f.reset << f.lsb for f in self.fields if f.kind != 'status')",
        "",
        "",
        "REGISTERS = (",
    ]
    for name, addr, title, fields in regs:
        out.append(f"    Register({name!r}, 0x{addr:03X}, {title!r}, (")
        for fname, lsb, width, kind, reset, enc, desc in fields:
            out.append(f"        Field({fname!r}, {lsb}, {width}, {kind!r}, 0x{reset:X}, {enc!r},")
            out.append(f"              {desc!r}),")
        out.append("    )),")
    out += [")", "", "#: Register name -> Register.",
            "BY_NAME = {r.name: r for r in REGISTERS}", ""]
    size = top.size
    out.append(f"#: Address bits the map decodes (byte addresses).")
    out.append(f"ADDRESS_BITS = {max(2, (size - 1).bit_length())}")
    out.append(f"MAGIC = 0x{regs[0][3][0][4]:08X}")
    out.append("")
    out.append("# Byte address of every register.")
    for name, addr, _title, _fields in regs:
        out.append(f"{name} = 0x{addr:03X}")
    return "\n".join(out) + "\n"


def _render_all(top, workdir: Path) -> dict:
    from peakrdl_cheader.exporter import CHeaderExporter
    from peakrdl_markdown import MarkdownExporter
    texts = {"regmap": render_regmap(top)}
    md = workdir / "registers.md"
    MarkdownExporter().export(top, str(md), input_files=["hotline/regs/hotline.rdl"])
    texts["markdown"] = md.read_text()
    h = workdir / "hotline_regs.h"
    CHeaderExporter().export(top, str(h), generate_bitfields=True)
    texts["cheader"] = h.read_text()
    return texts


def generate(root: Path = ROOT, check: bool = False) -> list[Path]:
    """Write (or with ``check`` compare) every output; returns the stale or written paths."""
    top = compile_rdl()
    with tempfile.TemporaryDirectory() as tmp:
        texts = _render_all(top, Path(tmp))
    changed = []
    for key, rel in OUTPUTS.items():
        path = root / rel
        old = path.read_text() if path.exists() else None
        if old != texts[key]:
            changed.append(path)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(texts[key])
    return changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if a generated file is stale")
    args = ap.parse_args(argv)
    changed = generate(check=args.check)
    for path in changed:
        print(f"{'stale' if args.check else 'wrote'}: {path}", file=sys.stderr)
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
