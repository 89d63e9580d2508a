"""Health stats: the real daemon publishes them retained, with values that add up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import REPO, compose, need_fsdd
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
