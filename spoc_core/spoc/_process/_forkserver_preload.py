"""Imported by multiprocessing's fork server when spoc starts it; nothing else should import it.

multiprocessing's fork server imports its preload modules before it records
the SIGINT disposition it restores in each child. Ignoring the child signals
here means every child it forks is born with Ctrl+C, SIGTERM and spoc's own
signals ignored until spoc's child code installs its handlers: a Ctrl+C that
lands while a worker is still starting cannot kill it or raise
KeyboardInterrupt in it.
"""

import signal

from spoc._signals import CHILD_SIGNALS

for _signum in CHILD_SIGNALS:
    signal.signal(_signum, signal.SIG_IGN)
