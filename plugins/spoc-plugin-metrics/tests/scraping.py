"""Scrape an endpoint over real HTTP and read its samples with prometheus_client's parsers."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from spoc_metrics import Metrics

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass
class Scrape:
    """One scrape: its content type, the families by name, and every sample."""

    content_type: str
    families: dict[str, str]
    samples: list[tuple[str, dict[str, str], float]]

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the sample `name` whose labels include `labels`; None when there is none."""
        found = [v for n, ls, v in self.samples if n == name and all(ls.get(k) == w for k, w in labels.items())]
        assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
        return found[0] if found else None

    def workers(self, name: str) -> set[str]:
        return {ls["worker"] for n, ls, _ in self.samples if n == name and "worker" in ls}


def scrape(target: str | Metrics, openmetrics: bool = False) -> Scrape:
    """Scrape `target`: a URL, or the endpoint a `Metrics` object serves (which it must be serving)."""
    url = target if isinstance(target, str) else target.url
    assert url is not None, f"{target!r} is not serving"
    request = urllib.request.Request(url, headers={"Accept": OPENMETRICS} if openmetrics else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode()
    families = list(parse_openmetrics(text) if openmetrics else parse_text(text))
    return Scrape(
        content_type,
        {family.name: family.type for family in families},
        [(s.name, dict(s.labels), s.value) for family in families for s in family.samples],
    )
