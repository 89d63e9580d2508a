"""Health stats: the real daemon publishes them retained over MQTT, with values that add up,
and serves them to Prometheus."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from support import REPO, compose, edgevoice, free_port, need_fsdd
from test_daemon import write_config
from test_homeassistant import retained, wait

from edgevoice.audio import read_wav, to_int16


def test_stats_are_retained_and_add_up(tmp_path: Path, bundle_dir, broker, recorder) -> None:
    need_fsdd()
    samples, _ = read_wav(compose(tmp_path / "three.wav", ["3_george_1", "5_jackson_2",
                                                           "7_lucas_3"], groups=[1, 1, 1]))
    # a threshold most results fall below: the stats must count the rejected ones apart
    cfg = write_config(tmp_path, bundle_dir, source={"name": "stdin", "sample_rate": 16000},
                       decoder={"name": "beam", "reject_threshold": 0.9},
                       sinks=[{"name": "mqtt", "broker": broker.url, "stats_interval": 0.5}])
    proc = subprocess.Popen([sys.executable, "-m", "edgevoice", "run", "--config", str(cfg)],
                            cwd=REPO, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None
        proc.stdin.write(to_int16(samples).tobytes())
        proc.stdin.flush()
        transcripts = recorder.wait_for("transcript", 3)
        wait(lambda: any(s["utterances"] == 3 for s in recorder.topic("stats")))
        latest = retained(broker.port, "edgevoice/kitchen/stats", 1)["edgevoice/kitchen/stats"]
        proc.stdin.close()
        assert proc.wait(60) == 0, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        proc.kill()
    stats = recorder.topic("stats")
    assert len(transcripts) == 3
    assert latest["utterances"] == 3 and latest["site_id"] == "kitchen"
    assert latest["rejected"] == sum(t["rejected"] for t in transcripts)
    assert latest["model"] == transcripts[0]["model"]
    assert latest["listening"] is True and latest["dropped_seconds"] == 0.0
    # the intervals' audio adds up (to the last word heard, at most what was fed), and was
    # processed faster than it would be heard
    upto = next(i for i, s in enumerate(stats) if s["utterances"] == 3) + 1
    heard = sum(s["audio_seconds"] for s in stats[:upto])
    assert transcripts[-1]["end"] <= heard <= len(samples) / 16000 + 0.01, stats
    busy = [s for s in stats if s["audio_seconds"] > 0]
    assert busy and all(0 < s["rtf"] < 1 for s in busy), busy
    assert all(s["rtf"] is None for s in stats if s["audio_seconds"] == 0)
    assert all(0.4 < s["interval"] < 5 and s["queue_seconds"] >= 0 for s in stats)
    uptimes = [s["uptime"] for s in stats]
    assert uptimes == sorted(uptimes) and uptimes[0] > 0
    assert [s["utterances"] for s in stats] == sorted(s["utterances"] for s in stats)


def test_prometheus_endpoint_on_localhost(tmp_path: Path, bundle_dir) -> None:
    pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families

    need_fsdd()
    samples, _ = read_wav(compose(tmp_path / "one.wav", ["3_george_1", "5_jackson_2"]))
    port = free_port()
    cfg = write_config(tmp_path, bundle_dir, source={"name": "stdin", "sample_rate": 16000},
                       sinks=[{"name": "stdout"}, {"name": "prometheus", "stats_interval": 0.3,
                                                   "listen": f"127.0.0.1:{port}"}])
    proc = subprocess.Popen([sys.executable, "-m", "edgevoice", "run", "--config", str(cfg)],
                            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)

    def scrape() -> dict[str, float]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return {}
        return {s.name: s.value for f in text_string_to_metric_families(text)
                for s in f.samples if s.labels.get("site_id") == "kitchen"}

    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(to_int16(samples).tobytes())
        proc.stdin.flush()
        transcript = json.loads(proc.stdout.readline())
        wait(lambda: scrape().get("edgevoice_utterances_total") == 1)
        metrics = scrape()
        proc.stdin.close()
        assert proc.wait(60) == 0, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        proc.kill()
    assert metrics["edgevoice_rejected_total"] == int(transcript["rejected"])
    assert metrics["edgevoice_audio_dropped_seconds_total"] == 0
    assert metrics["edgevoice_listening"] == 1 and metrics["edgevoice_uptime_seconds"] > 0
    assert metrics["edgevoice_model_info"] == 1
    assert 0 < metrics.get("edgevoice_real_time_factor", 0.5) < 1


def test_prometheus_listen_must_be_host_and_port(tmp_path: Path, bundle_dir) -> None:
    cfg = write_config(tmp_path, bundle_dir, sinks=[{"name": "prometheus", "listen": "9464"}])
    out = edgevoice("check-config", str(cfg))
    assert out.returncode == 2 and "sinks[0]: listen '9464': expected HOST:PORT" in out.stderr
