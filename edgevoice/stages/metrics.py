"""The `prometheus` sink: the daemon's health Stats as a Prometheus text endpoint.

Optional (`pip install 'edgevoice[metrics]'`, prometheus-client, imported when the sink starts).
It serves the latest Stats; a scrape between two of them sees the same values. Bound to
localhost by default: the endpoint has no authentication.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from edgevoice.components import Closeable, StageContext
from edgevoice.errors import SinkError
from edgevoice.messages import Message, Stats
from edgevoice.options import opt

log = logging.getLogger("edgevoice.metrics")


@dataclass(frozen=True)
class PrometheusOptions:
    listen: str = opt("127.0.0.1:9464", "HOST:PORT of the /metrics endpoint (no "
                      "authentication: keep it on localhost or behind a proxy)")
    stats_interval: float = opt(15.0, "s between updates of the figures", min=0.1)

    def __post_init__(self) -> None:
        host, _, port = self.listen.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"listen {self.listen!r}: expected HOST:PORT, e.g. 127.0.0.1:9464")


class PrometheusSink(Closeable):
    """Serves the latest Stats as edgevoice_* metrics, labelled with the site id."""

    name = "prometheus"
    kind = "sink"
    Options = PrometheusOptions

    def __init__(self, options: PrometheusOptions, ctx: StageContext) -> None:
        self.options = options
        self.stats_interval = options.stats_interval
        self.latest: Stats | None = None
        self._server: Any = None

    def open(self) -> None:
        try:
            from prometheus_client import CollectorRegistry, start_http_server
        except ImportError:
            raise SinkError("sink prometheus: prometheus-client is not installed: "
                            "pip install 'edgevoice[metrics]'") from None
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)  # type: ignore[arg-type]
        host, _, port = self.options.listen.rpartition(":")
        try:
            self._server, _ = start_http_server(int(port), host.strip("[]"), registry)
        except OSError as exc:
            raise SinkError(f"sink prometheus: cannot listen on {self.options.listen}: "
                            f"{exc.strerror or exc}") from None
        log.info("prometheus metrics on http://%s/metrics", self.options.listen)

    def publish(self, message: Message) -> None:
        if isinstance(message, Stats):
            self.latest = message  # one reference, swapped atomically for the HTTP thread

    def collect(self) -> Iterator[Any]:
        """prometheus-client's HTTP thread, at each scrape."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.latest
        if s is None:
            return
        labels = ["site_id"]

        def metric(kind: Any, name: str, doc: str, value: float) -> Any:
            family = kind(f"edgevoice_{name}", doc, labels=labels)
            family.add_metric([s.site_id], value)
            return family

        if s.rtf is not None:  # no audio in the interval (muted): no figure, rather than 0
            yield metric(GaugeMetricFamily, "real_time_factor", "processing CPU s per s of "
                         "audio over the last interval", s.rtf)
        yield metric(GaugeMetricFamily, "queue_seconds", "audio waiting to be processed, s",
                     s.queue_seconds)
        yield metric(CounterMetricFamily, "audio_dropped_seconds", "audio lost because "
                     "processing fell behind, s", s.dropped_seconds)
        yield metric(CounterMetricFamily, "utterances", "transcripts made", s.utterances)
        yield metric(CounterMetricFamily, "rejected", "transcripts below the reject "
                     "threshold", s.rejected)
        yield metric(GaugeMetricFamily, "listening", "1 while transcribing", float(s.listening))
        yield metric(GaugeMetricFamily, "uptime_seconds", "s since the daemon started",
                     s.uptime)
        info = GaugeMetricFamily("edgevoice_model_info", "the model bundle in use",
                                 labels=[*labels, "name", "version"])
        info.add_metric([s.site_id, s.model.name, s.model.version], 1.0)
        yield info

    def flush(self, timeout: float) -> int:
        return 0

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
