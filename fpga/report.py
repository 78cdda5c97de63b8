"""Read build reports back and print them as a table (``hotline fpga report``)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["find_reports", "format_reports"]

_COLUMNS = (("lut4", "LUT4"), ("ff", "FF"), ("dp16kd", "DP16KD"), ("mult18", "MULT18"),
            ("dram", "DPRAM"))


def find_reports(path) -> list[dict]:
    """Every ``report.json`` written by ``hotline fpga build`` at or under ``path``."""
    path = Path(path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(path.rglob("report.json"))
    else:
        raise FileNotFoundError(f"no such file or folder: {str(path)!r}")
    reports = []
    for f in files:
        try:
            data = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{f} is not a readable build report: {exc}") from None
        if isinstance(data, dict) and "resources" in data and "clocks" in data:
            data["_path"] = str(f.parent)
            reports.append(data)
    if not reports:
        raise FileNotFoundError(f"no build report (report.json from 'hotline fpga build') in {path}")
    return reports


def _cell(r: dict) -> str:
    used, avail = r["used"], r["available"]
    return f"{used:,} ({100 * used / avail:.0f} %)" if avail else f"{used:,}"


def format_reports(reports: list[dict]) -> str:
    """A Markdown table: one row per build, Fmax against the constraint and utilisation."""
    head = ["build", "unit", "board / part", "Fmax MHz (constraint)", *[c for _, c in _COLUMNS],
            "fits", "tool time"]
    rows = []
    for rep in reports:
        clocks = "; ".join(f"{c['achieved_mhz']:.1f} ({c['constraint_mhz']:.0f}) "
                           f"{'met' if c['met'] else 'FAIL'}" for c in rep["clocks"].values())
        part = rep.get("board_part", {})
        wall = rep.get("wall_s", {})
        rows.append([
            Path(rep.get("_path", "")).name, rep.get("unit", "?"),
            f"{rep.get('board', '?')} / {part.get('device', '?')}-{part.get('speed', '?')}"
            f"{' ' + part['package'] if part.get('package') else ''}",
            clocks or "-",
            *[_cell(rep["resources"][k]) for k, _ in _COLUMNS],
            "yes" if rep.get("fits_profile_limit") else "NO",
            f"yosys {wall.get('yosys', '?')} s, nextpnr {wall.get('nextpnr', '?')} s",
        ])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    paths = [_path_line(rep, cp) for rep in reports for cp in rep.get("critical_paths", [])
             if cp["from"] == cp["to"] and "async" not in str(cp["from"])]
    if paths:
        lines += ["", "Critical paths (register to register, per clock):", *paths]
    return "\n".join(lines)


def _path_line(rep: dict, cp: dict) -> str:
    worst = cp["longest_routes"][0] if cp["longest_routes"] else None
    far = f"; longest route {worst[0]} {worst[1]:.2f} ns" if worst else ""
    return (f"- {Path(rep.get('_path', '')).name}: {cp['delay_ns']:.2f} ns "
            f"({cp['logic_ns']:.2f} logic + {cp['routing_ns']:.2f} routing, {cp['cells']} cells) "
            f"{cp['start']} -> {cp['end']}{far}")
