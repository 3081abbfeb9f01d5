"""The supervision page of spoc's docs runs with the plugin installed (it lives in the repository's docs/)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).parents[3] / "docs" / "supervision.md"


@pytest.mark.skipif(not PAGE.is_file(), reason="run from a checkout of the spoc repository, which has docs/")
def test_the_supervision_page_example_runs() -> None:
    (example,) = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.DOTALL)
    result = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
