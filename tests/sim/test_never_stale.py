"""Never stale, under faults: the seeded simulation of tests/sim/simulation.py.

Three in-process workers share one real redis-server (each through its own proxy) and the
embedded store. `make test` runs a fixed seed for a bounded time; `SIM_STEPS=5000
SIM_SECONDS=1800 SIM_SEED=7` runs longer or other seeds, `SIM_ONLY=blip,write,read` some
kinds of step only.
"""
import os
import time

import pytest

from .simulation import Simulation

STEPS = int(os.environ.get("SIM_STEPS", "400"))
SECONDS = float(os.environ.get("SIM_SECONDS", "120"))
SEED = int(os.environ.get("SIM_SEED", "20261201"))
ONLY = [name for name in os.environ.get("SIM_ONLY", "").split(",") if name]  # e.g. blip,write


@pytest.mark.slow
def test_no_read_is_older_than_a_returned_write(workers, tmp_path):
    sim = Simulation(workers, tmp_path / "var", SEED)
    sim.setup()
    sim.run(STEPS, time.monotonic() + SECONDS, ONLY)
    print(f"\n{sim.step_no} steps, seed {SEED}")
    assert not sim.violations, f"in {sim.step_no} steps:\n{sim.report()}"
