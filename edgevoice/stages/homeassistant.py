"""Home Assistant MQTT discovery: the configs that make a daemon appear as a device.

The mqtt sink publishes them retained on every connection (a broker restarted without
persistence forgets retained messages). The entities read what the daemon publishes anyway:
the last transcript from `<prefix>/transcript`, the listening switch from `<prefix>/listening`
(its commands go to `<prefix>/cmd/listen`), availability from the retained `<prefix>/status`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from edgevoice import __version__

NODE_ID = re.compile(r"[^A-Za-z0-9_-]")  # what Home Assistant takes as a node id


def discovery_configs(*, discovery_prefix: str, prefix: str, site_id: str,
                      model: str | None, listen_switch: bool) -> list[tuple[str, str]]:
    """(retained topic, JSON config, or "" to remove the entity) for each entity.

    The switch is announced only when the sink takes `cmd/listen`; otherwise its config is
    cleared, so that a switch left by an earlier config does not sit there doing nothing."""
    node = NODE_ID.sub("_", f"edgevoice_{site_id}")
    device = {"identifiers": [node], "name": f"edgevoice {site_id}",
              "manufacturer": "edgevoice", "model": f"edgevoice ({model})" if model else
              "edgevoice", "sw_version": __version__}
    common: dict[str, Any] = {
        "device": device, "availability_topic": f"{prefix}/status",
        "availability_template": "{{ value_json.state }}",
        "payload_available": "online", "payload_not_available": "offline", "qos": 1}
    sensor = {
        **common, "name": "Last transcript", "unique_id": f"{node}_transcript",
        "icon": "mdi:account-voice", "state_topic": f"{prefix}/transcript",
        # a sensor's state is at most 255 characters: longer transcripts are cut
        "value_template": "{{ value_json.text[:255] }}",
        "json_attributes_topic": f"{prefix}/transcript",
        "json_attributes_template": "{{ {'confidence': value_json.confidence, 'rejected': "
                                    "value_json.rejected, 'utterance_id': "
                                    "value_json.utterance_id} | tojson }}"}
    switch = {
        **common, "name": "Listening", "unique_id": f"{node}_listening",
        "icon": "mdi:microphone", "command_topic": f"{prefix}/cmd/listen",
        "payload_on": "on", "payload_off": "off",
        # the daemon ignores retained commands: Home Assistant must not retain its own
        "retain": False, "state_topic": f"{prefix}/listening",
        "value_template": "{{ value_json.state }}", "state_on": "on", "state_off": "off"}
    return [(f"{discovery_prefix}/sensor/{node}/transcript/config", json.dumps(sensor)),
            (f"{discovery_prefix}/switch/{node}/listening/config",
             json.dumps(switch) if listen_switch else "")]
