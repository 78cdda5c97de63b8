"""cocotb testbenches of the accelerator's units and the glue that builds and runs them."""
