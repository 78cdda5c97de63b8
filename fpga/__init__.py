"""FPGA board builds of the accelerator (amaranth-boards)."""
