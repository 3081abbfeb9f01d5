"""spoc-plugin-ray: workers as Ray actors anywhere in a cluster (see the docs page "Ray")."""

from __future__ import annotations

from ._backend import RayBackend
from ._plugin import ADDRESS_ENV, Ray, plugin
from ._settings import Placement

__all__ = ["ADDRESS_ENV", "Placement", "Ray", "RayBackend", "plugin"]
