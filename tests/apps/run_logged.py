"""Run a Python file as __main__ with INFO logging on stderr, so tests can wait for spoc's log lines.

python tests/apps/run_logged.py PATH
"""

import logging
import runpy
import sys

logging.basicConfig(level=logging.INFO, format="LOG %(levelname)s %(message)s", stream=sys.stderr)
path = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(path, run_name="__main__")
