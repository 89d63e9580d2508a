"""The MQTT spool: damaged lines, private files, ages, and a replay that loses nothing."""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import free_port

from edgevoice.components import StageContext
from edgevoice.stages.mqtt import MqttOptions, MqttSink
from edgevoice.stages.spool import Spool, Spooled, parse_line


def sink(url: str, spool_dir: Path, **options) -> MqttSink:  # type: ignore[no-untyped-def]
    return MqttSink(MqttOptions(broker=url, spool_dir=str(spool_dir), **options),
                    StageContext("kitchen", 16000, 160))


def spool_of(s: MqttSink) -> Path:
    assert s.spool_file is not None
    return s.spool_file


def item(n: int, age: float = 5.0) -> Spooled:
    made = time.time() - age
    return Spooled("edgevoice/kitchen/transcript", json.dumps({"text": f"t{n}", "time": made}),
                   1, made)


def texts(messages: list[dict]) -> list[str]:
    return [m["text"] for m in messages]


CORRUPT = {
    "random bytes": b"\x8f\x00\xff{\"topic\"",
    "a JSON list": b"[1, 2]",
    "QoS 5": item(0).line().replace(b'"qos": 1', b'"qos": 5'),
    "a wildcard topic": item(0).line().replace(b"kitchen/transcript", b"+/transcript"),
    "time x": item(0).line().replace(b'"time": ', b'"time": "x", "t": '),
    "a cut-off last line": item(0).line()[:30],
}


@pytest.mark.parametrize("bad", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_damaged_line_is_quarantined_and_the_rest_is_sent(tmp_path, broker, recorder, caplog,
                                                           bad) -> None:
    s = sink(broker.url, tmp_path / "spool")
    path = spool_of(s)
    path.parent.mkdir()
    path.write_bytes(item(1).line() + bad.rstrip(b"\n") + b"\n" + item(2).line())
    s.open()
    try:
        assert texts(recorder.wait_for("transcript", 2)) == ["t1", "t2"]
        assert s.flush(5) == 0
    finally:
        s.close()
    bad_file = path.with_name(path.name + ".bad")
    assert bad_file.read_bytes() == bad.rstrip(b"\n") + b"\n"
    assert stat.S_IMODE(bad_file.stat().st_mode) == 0o600
    assert [r.message for r in caplog.records].count(
        f"mqtt: 1 damaged line(s) in the spool {path} were not sent; they are kept in "
        f"{bad_file}") == 1
    assert not path.exists() and not path.with_suffix(".replaying").exists()


valid_items = st.builds(
    Spooled, topic=st.text(st.characters(exclude_characters="#+\0", exclude_categories=["Cs"]),
                           min_size=1, max_size=20),
    payload=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5),
                            max_size=3).map(json.dumps),
    qos=st.integers(0, 2), time=st.floats(0, 2e9))
junk = (st.binary(max_size=40) | st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=8).map(lambda v: json.dumps(v).encode())
        ).map(lambda b: b.replace(b"\n", b" ")).filter(lambda b: b.strip())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(lines=st.lists(valid_items.map(lambda i: (True, i)) | junk.map(lambda b: (False, b)),
                      max_size=12))
def test_spool_lines_are_kept_or_quarantined_never_lost(tmp_path_factory, lines) -> None:
    """Whatever the file holds: no exception, every valid line back in order, every other line
    in `.bad` (a junk line that happens to be a valid one counts as valid)."""
    directory = tmp_path_factory.mktemp("spool")
    path = directory / "s.jsonl"
    path.write_bytes(b"".join(v.line() if ok else v + b"\n" for ok, v in lines))
    expected = [v if ok else parse_line(v) for ok, v in lines]
    got = Spool(path).take(max_age=float("inf"))
    assert got == [e for e in expected if e is not None]
    bad = path.with_name("s.jsonl.bad")
    quarantined = [v + b"\n" for (ok, v), e in zip(lines, expected, strict=True) if e is None]
    assert (bad.read_bytes() if bad.exists() else b"") == b"".join(quarantined)


def test_stale_messages_are_reported_with_their_true_age(tmp_path, broker, recorder, caplog
                                                         ) -> None:
    s = sink(broker.url, tmp_path / "spool", spool_max_age=3600.0)
    path = spool_of(s)
    path.parent.mkdir()
    path.write_bytes(item(1, age=7200).line() + item(2, age=70).line()
                     + item(3, age=3 * 3600).line())
    s.open()
    try:
        assert texts(recorder.wait_for("transcript", 1)) == ["t2"]
    finally:
        s.close()
    assert ("mqtt: 2 spooled message(s) were discarded, 2.0 h to 3.0 h old: older than "
            "spool_max_age (60.0 min)") in caplog.text
    assert not path.exists()


def test_a_large_spool_is_replayed_whole_at_the_pace_of_the_queue(tmp_path, broker, recorder,
                                                                   caplog) -> None:
    n = 10_000
    s = sink(broker.url, tmp_path / "spool", queue_size=100)
    path = spool_of(s)
    path.parent.mkdir()
    path.write_bytes(b"".join(item(k).line() for k in range(n)))
    s.open()
    try:
        deadline = time.monotonic() + 60
        while s.undelivered and time.monotonic() < deadline:  # (wait_for is slow for 10,000)
            time.sleep(0.1)
        assert s.flush(5) == 0
        got = recorder.wait_for("transcript", n, timeout=60)  # the recorder may lag the broker
        assert not path.with_suffix(".replaying").exists()  # gone once all were acknowledged
    finally:
        s.close()
    assert texts(got) == [f"t{k}" for k in range(n)] and all(m["replayed"] for m in got)
    assert "queue full" not in caplog.text and not path.exists()


def test_what_a_run_could_not_send_stays_spooled(tmp_path, caplog) -> None:
    """The broker never came: the spool and this run's own messages are all kept, in order."""
    from edgevoice.messages import Partial, VadEvent

    s = sink(f"mqtt://127.0.0.1:{free_port()}", tmp_path / "spool", queue_size=10)
    path = spool_of(s)
    path.parent.mkdir()
    earlier = [item(k, age=1000 - k) for k in range(500)]
    path.write_bytes(b"".join(i.line() for i in earlier))
    s.open()
    s.publish(VadEvent("kitchen", "u1", "start", 1.0, time=time.time()))
    s.publish(Partial("kitchen", "u1", "one", time.time()))  # QoS 0: not kept
    assert s.flush(0.2) == 501
    s.close()
    saved = [parse_line(line) for line in path.read_bytes().splitlines()]
    assert saved[:500] == earlier
    assert saved[500] is not None and json.loads(saved[500].payload)["event"] == "start"
    assert len(saved) == 501 and not path.with_suffix(".replaying").exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_spool_files_are_private(tmp_path, broker, recorder) -> None:
    from edgevoice.messages import VadEvent

    url = f"mqtt://127.0.0.1:{free_port()}"
    s = sink(url, tmp_path / "state" / "spool")
    s.open()
    s.publish(VadEvent("kitchen", "u1", "start", 1.0, time=time.time()))
    s.close()
    path = spool_of(s)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    path.chmod(0o644)  # left by an older version: made private when it is next used
    s = sink(url, tmp_path / "state" / "spool")
    s.open()
    assert stat.S_IMODE(path.with_suffix(".replaying").stat().st_mode) == 0o600
    s.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("link", ["spool", "replaying"])
def test_a_symlink_in_the_spool_dir_is_not_followed(tmp_path, caplog, link) -> None:
    from edgevoice.messages import VadEvent

    s = sink(f"mqtt://127.0.0.1:{free_port()}", tmp_path / "shared")
    path = spool_of(s)
    path.parent.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's file\n")
    (path if link == "spool" else path.with_suffix(".replaying")).symlink_to(victim)
    s.open()
    s.publish(VadEvent("kitchen", "u1", "start", 1.0, time=time.time()))
    s.close()
    assert victim.read_text() == "someone else's file\n"
    assert "is a symbolic link; not followed" in caplog.text
    assert "lost" in caplog.text or link == "replaying"  # a link in the spool's own place


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory of another user")
def test_spool_dir_linked_to_another_users_directory_is_refused(tmp_path, caplog) -> None:
    from edgevoice.messages import VadEvent

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    (tmp_path / "spool").symlink_to(theirs)
    s = sink(f"mqtt://127.0.0.1:{free_port()}", tmp_path / "spool")
    s.open()
    s.publish(VadEvent("kitchen", "u1", "start", 1.0, time=time.time()))
    with caplog.at_level(logging.ERROR):
        s.close()
    assert not list(theirs.iterdir())
    assert "a symbolic link to a directory of another user" in caplog.text
