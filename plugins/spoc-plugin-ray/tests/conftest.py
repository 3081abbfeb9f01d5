"""Shared fixtures: a local Ray per test module (its files and HOME in a temporary directory), and spoc.testing's
check that no test leaves a process behind.

``ray`` is the plugin's optional dependency, in its ``test`` extra; without it every test is skipped, saying so
(under CI, ``SPOC_REQUIRE_RAY=1``, a missing Ray fails).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent

__all__ = ["local_ray", "ray_env"]


@pytest.fixture(autouse=True)
def _no_leftovers(spoc_no_leftovers: None) -> None:
    """No test may leave a process or a thread running (spoc.testing's check)."""


if os.environ.get("SPOC_REQUIRE_RAY") == "1":  # CI installs it: a missing Ray fails there, never skips
    import ray
else:
    ray = pytest.importorskip("ray", reason="spoc-plugin-ray's tests need ray: pip install 'spoc-plugin-ray[ray]'")


@pytest.fixture(scope="session")
def ray_env() -> Iterator[dict[str, str]]:
    """HOME and Ray's files in a temporary directory, for this process and the programs the tests start."""
    with tempfile.TemporaryDirectory(prefix="spoc-ray-") as home, pytest.MonkeyPatch.context() as patch:
        env = {
            "HOME": home,
            "RAY_TMPDIR": home,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        }
        for name, value in env.items():
            patch.setenv(name, value)
        yield env


@pytest.fixture(scope="module")
def local_ray(ray_env: dict[str, str]) -> Iterator[Any]:
    """A local Ray (4 CPUs) for a test module; the tests' worker classes importable in its actors (PYTHONPATH).
    One module at a time: this process is connected to one Ray at a time."""
    ray.init(num_cpus=4, include_dashboard=False, _temp_dir=ray_env["HOME"] + "/ray", log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
