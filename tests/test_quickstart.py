"""The README's quick start, run as a new user runs it: its first command, as a subprocess on the
built-in data (a smaller preset and data size, so that it takes seconds), must exit 0 and print
the results table and the test accuracy, with no traceback or warning."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    """The commands of the README's ``## Quick start`` section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [c.strip() for c in re.findall(r"```\n(.*?)\n```", section, re.S)]


def test_the_quick_start_has_exactly_an_install_and_run_and_a_test_command():
    first, second = quick_start_commands()
    assert first.startswith("pip install -e . && automl-chars bohb --dataset glyphs-")
    assert second == 'pip install -e ".[test]" && python -m pytest'


@pytest.mark.slow
def test_the_quick_start_command_runs_and_prints_its_table(tmp_path):
    install, run = quick_start_commands()[0].split(" && ")
    assert install == "pip install -e ."  # this suite runs in that installation
    argv = shlex.split(run)
    assert argv[0] == "automl-chars"
    preset = argv.index("--preset") + 1
    argv[preset] = "2_1_2_1"  # 2 trials instead of the demo's 17
    argv += ["--samples-per-class", "8"]
    env = {**os.environ, "AUTOML_CHARS_RESULTS": str(tmp_path / "results"),
           "AUTOML_CHARS_DATA": str(tmp_path / "data"), "HOME": str(tmp_path)}
    env.pop("RAY_ADDRESS", None)
    script = str(Path(sys.executable).with_name("automl-chars"))
    out = subprocess.run([script, *argv[1:]], capture_output=True, text=True, env=env,
                         timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Validation Accuracy" in out.stdout and "Test Accuracy" in out.stdout
    assert re.search(r"Incumbent: \{", out.stdout)
    assert "Ray: started a local instance" in out.stdout
    assert f"Results store: {tmp_path / 'results' / 'store'}" in out.stdout
    for noise in ("Traceback", "Warning", "WARNING", "Exception ignored"):
        assert noise not in out.stdout + out.stderr, out.stdout[-3000:] + out.stderr[-3000:]
