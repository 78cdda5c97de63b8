"""hotline: an open, synthesizable Hotline-style accelerator for DLRM training.

Packages: :mod:`hotline.rtl` (Amaranth hardware), :mod:`hotline.host` (golden
models, driver, trainer, data), :mod:`hotline.testbench` (cocotb benches and
runner glue), :mod:`hotline.fpga` (board builds).  Shared by all of them:
:mod:`hotline.config` (every size) and :mod:`hotline.hashing` (every hash).
"""

from .config import HotlineConfig, default_config

__all__ = ["HotlineConfig", "default_config"]
__version__ = "0.1.0"
