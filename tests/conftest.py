"""Suite-wide settings.

Idle OpenMP worker threads that spin-wait steal the few cores a shared CI machine
has (steps ran ~10x slower under load); ask them to sleep instead.  This must
happen before torch is imported, hence here.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


import pytest


@pytest.fixture
def seed():
    """A random seed, printed by ``seed_from_env`` and shown with a failure; replay with HOTLINE_SEED."""
    from hotline.testbench.runner import seed_from_env
    return seed_from_env()


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for the module: tiny models run fastest so, and CPU
    index-add reductions are only bit-repeatable with one thread."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
