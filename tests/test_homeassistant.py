"""Home Assistant over MQTT: the real daemon announces itself by MQTT discovery, and the
entities' topics and templates work on what it publishes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import REPO, Recorder, compose, edgevoice, need_fsdd
from test_daemon import one_line_error, write_config

from edgevoice.audio import read_wav, to_int16

NODE = "edgevoice_kitchen"
SENSOR = f"homeassistant/sensor/{NODE}/transcript/config"
SWITCH = f"homeassistant/switch/{NODE}/listening/config"


def render(template: str, payload: dict) -> str:
    """A value template as Home Assistant renders it: Jinja2 with the payload as value_json."""
    jinja2 = pytest.importorskip("jinja2")
    return jinja2.Environment().from_string(template).render(value_json=payload)


def wait(condition, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def retained(port: int, topic: str, count: int) -> dict[str, dict]:
    """What a client subscribing now gets: the broker's retained messages."""
    rec = Recorder(port, topic)
    try:
        wait(lambda: len(rec.messages) >= count)
        return dict(rec.messages)
    finally:
        rec.close()


def test_discovery_and_the_listening_switch(tmp_path: Path, bundle_dir, broker, recorder
                                            ) -> None:
    need_fsdd()
    samples, _ = read_wav(compose(tmp_path / "two.wav", ["3_george_1", "5_jackson_2",
                                                         "7_lucas_3"], groups=[2, 1]))
    audio = to_int16(samples).tobytes()
    cfg = write_config(tmp_path, bundle_dir, source={"name": "stdin", "sample_rate": 16000},
                       sinks=[{"name": "mqtt", "broker": broker.url, "homeassistant": True}])
    proc = subprocess.Popen([sys.executable, "-m", "edgevoice", "run", "--config", str(cfg)],
                            cwd=REPO, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        configs = retained(broker.port, "homeassistant/#", 2)
        states = retained(broker.port, "edgevoice/kitchen/+", 2)  # status and listening
        sensor, switch = configs[SENSOR], configs[SWITCH]
        for entity in (sensor, switch):
            assert entity["device"]["identifiers"] == [NODE]
            assert {"name", "model", "sw_version"} <= set(entity["device"])
            assert entity["availability_topic"] == "edgevoice/kitchen/status"
            status = states["edgevoice/kitchen/status"]
            assert render(entity["availability_template"], status) == \
                entity["payload_available"] == "online"
            assert entity["unique_id"].startswith(NODE)
        assert sensor["unique_id"] != switch["unique_id"]
        assert switch["command_topic"] == "edgevoice/kitchen/cmd/listen"
        assert switch["retain"] is False and (switch["payload_on"], switch["payload_off"]) == \
            ("on", "off")
        assert switch["state_topic"] == "edgevoice/kitchen/listening"
        listening = states["edgevoice/kitchen/listening"]
        assert render(switch["value_template"], listening) == switch["state_on"]

        assert proc.stdin is not None
        proc.stdin.write(audio)
        proc.stdin.flush()
        transcripts = recorder.wait_for("transcript", 2)
        assert sensor["state_topic"] == "edgevoice/kitchen/transcript"
        assert [render(sensor["value_template"], t) for t in transcripts] == \
            [t["text"] for t in transcripts]
        attributes = json.loads(render(sensor["json_attributes_template"], transcripts[0]))
        assert attributes["utterance_id"] == transcripts[0]["utterance_id"]

        # Home Assistant turns the switch off: the daemon stops transcribing and says so.
        recorder.client.publish(switch["command_topic"], switch["payload_off"], qos=1,
                                retain=switch["retain"])
        wait(lambda: recorder.topic("listening")[-1]["state"] == "off")
        assert render(switch["value_template"], recorder.topic("listening")[-1]) == \
            switch["state_off"]
        proc.stdin.write(audio)
        _, err = proc.communicate(timeout=60)  # end of input: all the audio was processed
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    assert len(recorder.topic("transcript")) == 2
    assert retained(broker.port, "edgevoice/kitchen/listening", 1)[
        "edgevoice/kitchen/listening"]["state"] == "off"


def test_a_wildcard_discovery_prefix_is_one_clear_error(tmp_path: Path, bundle_dir) -> None:
    cfg = write_config(tmp_path, bundle_dir, sinks=[
        {"name": "mqtt", "homeassistant": True, "discovery_prefix": "homeassistant/#"}])
    for args in (["check-config", str(cfg)], ["run", "--config", str(cfg)]):
        out = edgevoice(*args)
        assert out.returncode == 2
        line = one_line_error(out.stderr)
        assert "sinks[0]" in line and "discovery_prefix 'homeassistant/#': MQTT wildcards" \
            in line, out.stderr
