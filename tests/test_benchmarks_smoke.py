"""``python3 -m benchmarks`` runs and prints its table: the rows, a target and a verdict column. Speed is
never asserted here (benchmarks/ measures it as ratios); this only proves the command works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_extract_rows_are_printed(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--no-install",
            "--only",
            "extract",
            "--keep",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert out.startswith("machine: ")
    assert "| row " in out and "| target " in out and "| verdict " in out
    for row in (
        "dry run, whole process: lines/s",
        "dry run vs bare read loop (the limit)",
        "dry run vs naive (every re.search)",
        "dry run vs mtail --one_shot",
        "dry run vs pygtail iteration",
        "gzip dry run vs zcat | read loop",
    ):
        assert f"| {row} " in out, row
    assert "failed" not in out
