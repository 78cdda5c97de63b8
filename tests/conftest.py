"""Suite-wide settings.

Idle OpenMP worker threads that spin-wait steal the few cores a shared CI machine
has (steps ran ~10x slower under load); ask them to sleep instead.  This must
happen before torch is imported, hence here.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
