"""The suite's xdist groups take effect (tests/conftest.py): a Ray test runs in its group's
worker, so each worker starts one Ray and computes each session fixture once. They silently
stop working when pytest-xdist cannot tag the items (pytest 9.2 with xdist 3.8,
pytest-dev/pytest-xdist#1386) or when xdist reads the items before the conftest marks them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ray_tests_carry_their_xdist_group_and_quick_ones_none():
    tests = ["tests/test_experiments.py::test_every_experiment_is_covered",  # slow: ray2
             "tests/test_registry.py::test_duplicate_name_raises"]  # quick: no group
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o",
                          "addopts=", "-n", "2", "--dist", "loadgroup", "-v", *tests],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"PASSED {tests[0]}@ray2" in out.stdout, out.stdout[-3000:]
    assert re.search(rf"PASSED {re.escape(tests[1])}\s*$", out.stdout, re.M), out.stdout[-3000:]
