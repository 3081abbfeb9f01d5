"""Imported by multiprocessing's fork server when spoc starts it; nothing else should import it.

multiprocessing's fork server imports its preload modules before it records
the SIGINT disposition it restores in each child. Ignoring the shutdown
signals here means every child it forks is born with Ctrl+C and SIGTERM
ignored until spoc's child code installs its own handlers: a Ctrl+C that lands
while a worker is still starting cannot kill it or raise KeyboardInterrupt in it.
"""

import signal

for _signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR2):
    signal.signal(_signum, signal.SIG_IGN)
