"""`make bench`'s harness at tiny sizes: it runs every section against the real stack and writes
every figure it promises. The figures themselves are never judged here (benchmarks assert
nothing); this guards the harness against rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.run_all import SECTIONS, Settings, expected_figures
from harness.stack import StackEndpoints

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SMOKE_ARGS = [
    "--quick",
    "--events", "600",
    "--single-events", "30",
    "--scale-events", "300",
    "--history", "0,1500",
    "--kpis-large", "400",
    "--rates", "40,120",
    "--latency-seconds", "3",
]  # fmt: skip


def test_tiny_bench_run_writes_every_figure_positive(
    endpoints: StackEndpoints, tmp_path: Path
) -> None:
    """A tiny run of every section exits 0 and its JSON holds every promised figure, each > 0,
    with the machine it was measured on."""
    out = tmp_path / "bench.json"
    env = {
        **os.environ,
        "SHINCHOKU_TEST_KAFKA": endpoints.kafka,
        "SHINCHOKU_TEST_MONGO": endpoints.mongo,
    }
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run_all", *SMOKE_ARGS, "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a bound on a hung run, not a performance judgement
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads(out.read_text())
    assert set(report["settings"]["sections"]) == set(SECTIONS)
    expected = expected_figures(Settings(**report["settings"]))
    assert {name.split(".")[0] for name in expected} >= {
        "baseline", "ingest", "pipeline", "latency", "scale", "memory", "horizontal"
    }  # fmt: skip
    figures = report["figures"]
    assert [name for name in expected if name not in figures] == []
    assert {name: figures[name] for name in expected if not figures[name] > 0} == {}
    machine = report["machine"]
    assert machine["cpus"] > 0
    assert machine["ram_gib"] > 0
    assert machine["hostname"]
    assert machine["cpu_model"]
    assert machine["date"]
    assert len(machine["git_commit"]) == 40
