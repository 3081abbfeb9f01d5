"""An app for ``spoc run``: two workers as Ray actors on a local Ray the plugin starts (and shuts down)."""

from __future__ import annotations

import os

from ray_workers import Far
from spoc import Server
from spoc_ray import Ray


class Announced(Far):
    def main(self) -> None:
        print(f"READY {self.name} pid={os.getpid()}", flush=True)
        super().main()


server = Server("ray-app", plugins=[Ray(num_cpus=2, include_dashboard=False)])
server.add_worker(Announced("first", plugin_options={"ray_num_cpus": 1}))
server.add_worker(Announced("second", plugin_options={"ray_num_cpus": 1}))
