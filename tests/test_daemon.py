"""End to end: the real daemon as a subprocess, from YAML and a WAV file to MQTT messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from support import REPO, Recorder, compose, edgevoice, free_port, need_fsdd

from edgevoice.audio import write_wav

HOOK_PLUGIN = '''
import json, os
from edgevoice import hookimpl
LOG = os.environ["HOOK_LOG"]

def _log(name, **data):
    with open(LOG, "a") as f:
        f.write(json.dumps({"hook": name, **data}, default=str) + "\\n")

@hookimpl
def on_startup(config): _log("on_startup", site=config.site_id)
@hookimpl
def on_shutdown(reason): _log("on_shutdown", reason=reason)
@hookimpl
def on_utterance_start(event): _log("on_utterance_start", id=event.utterance_id)
@hookimpl
def on_utterance_end(event): _log("on_utterance_end", id=event.utterance_id)
@hookimpl
def on_transcript(transcript): _log("on_transcript", text=transcript.text)
@hookimpl
def on_error(error, where): _log("on_error", where=where, error=str(error))
'''


def write_config(tmp: Path, bundle: Path, **extra) -> Path:  # type: ignore[no-untyped-def]
    cfg = {"bundle": str(bundle), "site_id": "kitchen", **extra}
    path = tmp / "edgevoice.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert errors, stderr
    return errors[-1]


def start_live_daemon(cfg: Path, broker, recorder) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
    """`edgevoice run` on a stdin source, returned once it has announced itself online."""
    proc = subprocess.Popen([sys.executable, "-m", "edgevoice", "run", "--config", str(cfg),
                             "--broker", broker.url], cwd=REPO, stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not recorder.topic("status") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert recorder.topic("status")[-1]["state"] == "online"
    return proc


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, expect a clean exit (128 + SIGTERM: stopped by a signal), return what it
    logged."""
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(20) == 128 + signal.SIGTERM
        return proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()


@pytest.fixture
def digits_wav(tmp_path: Path) -> Path:
    need_fsdd()
    return compose(tmp_path / "two.wav", ["3_george_1", "5_jackson_2", "7_lucas_3",
                                          "1_yweweler_4", "9_nicolas_5"], groups=[3, 2])


def test_wav_to_mqtt_transcripts(tmp_path, bundle_dir, broker, recorder, digits_wav) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "recorder.py").write_text(HOOK_PLUGIN)
    cfg = write_config(tmp_path, bundle_dir, plugin_dirs=[str(hooks)])
    log = tmp_path / "hooks.jsonl"
    out = edgevoice("run", "--config", str(cfg), "--input", str(digits_wav),
                    "--broker", broker.url, env={**os.environ, "HOOK_LOG": str(log)})
    assert out.returncode == 0, out.stderr
    transcripts = recorder.wait_for("transcript", 2)
    assert len(transcripts) == 2
    for t in transcripts:
        assert t["version"] == 1 and t["site_id"] == "kitchen"
        assert set(t) >= {"text", "confidence", "utterance_id", "start", "end", "model",
                          "words", "nbest"}
        assert 0.0 <= t["confidence"] <= 1.0
        assert t["end"] > t["start"] >= 0
        assert t["model"]["name"] and t["model"]["version"]
    first, second = transcripts
    assert first["start"] < 1.0 < first["end"] < second["start"]
    assert first["utterance_id"] != second["utterance_id"]
    partials = recorder.topic("partial")
    assert partials, "no partial results while speaking"
    for p in partials:
        final = next(t for t in transcripts if t["utterance_id"] == p["utterance_id"])
        assert p["text"] and len(p["text"]) <= len(final["text"]) + 2
    vad = recorder.wait_for("vad", 4)
    assert [v["event"] for v in vad] == ["start", "stop", "start", "stop"]
    states = [s["state"] for s in recorder.topic("status")]
    assert states[0] == "online" and states[-1] == "offline"
    calls = [json.loads(line)["hook"] for line in log.read_text().splitlines()]
    assert calls[0] == "on_startup" and calls[-1] == "on_shutdown"
    assert calls.count("on_utterance_start") == calls.count("on_utterance_end") == 2
    assert calls.count("on_transcript") == 2


def test_digits_are_recognised(tmp_path, bundle_dir, broker, recorder, digits_wav) -> None:
    cfg = write_config(tmp_path, bundle_dir)
    out = edgevoice("run", "--config", str(cfg), "--input", str(digits_wav),
                    "--broker", broker.url)
    assert out.returncode == 0, out.stderr
    texts = [t["text"] for t in recorder.wait_for("transcript", 2)]
    from edgevoice.training.evaluate import edit_distance

    words = " ".join(texts).split()
    digits = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
    assert set(words) <= digits, texts  # the bundle's closed vocabulary holds
    # 5 digits, one of them from a speaker the model never heard: at most one word wrong
    # (the model's held-out WER is about 20 %, see its card)
    assert edit_distance("three five seven one nine".split(), words) <= 1, texts



def test_unreachable_broker_is_reported_not_lost(tmp_path, bundle_dir, digits_wav, broker
                                                 ) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "recorder.py").write_text(HOOK_PLUGIN)
    log = tmp_path / "hooks.jsonl"
    port = free_port()  # nothing listens here
    cfg = write_config(tmp_path, bundle_dir, delivery_timeout=1.0, plugin_dirs=[str(hooks)],
                       sinks=[{"name": "mqtt", "broker": f"mqtt://127.0.0.1:{port}",
                               "spool_dir": str(tmp_path / "spool")}])
    out = edgevoice("run", "--config", str(cfg), "--input", str(digits_wav),
                    env={**os.environ, "HOOK_LOG": str(log)})
    assert out.returncode == 3
    line = one_line_error(out.stderr)
    assert "sink mqtt: " in line and "could not be delivered within 1 s" in line
    assert "undelivered message(s) saved to" in out.stderr
    # why, at once: not only "could not be delivered" at the end
    why = f"cannot connect to 127.0.0.1:{port}: connection refused"
    assert why in out.stderr and out.stderr.index(why) < out.stderr.index(line), out.stderr
    errors = [json.loads(x) for x in log.read_text().splitlines() if '"on_error"' in x]
    assert errors and errors[0]["where"] == "sink mqtt"
    (spool,) = (tmp_path / "spool").iterdir()
    saved = [json.loads(x) for x in spool.read_text().splitlines()]
    assert sum(1 for s in saved if s["topic"].endswith("/transcript")) == 2
    assert sum(1 for s in saved if s["topic"].endswith("/vad")) == 4  # none "too old"

    # The broker is back at that address: the next run delivers what the first one kept.
    broker.stop()
    broker.port = port
    broker.conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker.start()
    rec = Recorder(port, "edgevoice/+/transcript")
    try:
        quiet = tmp_path / "quiet.wav"
        write_wav(quiet, np.zeros(16000, np.float32), 16000)
        out = edgevoice("run", "--config", str(cfg), "--input", str(quiet))
        assert out.returncode == 0, out.stderr
        got = rec.wait_for("transcript", 2)
    finally:
        rec.close()
    assert [t["text"] for t in got] == [json.loads(s["payload"])["text"] for s in saved
                                        if s["topic"].endswith("/transcript")]
    assert all(t["replayed"] for t in got)
    assert not list((tmp_path / "spool").iterdir())  # neither the spool nor its replay copy


def test_broker_restart_loses_nothing(tmp_path, bundle_dir, broker) -> None:
    need_fsdd()
    wav = compose(tmp_path / "four.wav", ["2_george_3", "4_jackson_5", "6_lucas_7", "8_george_9"],
                  groups=[1, 1, 1, 1], utterance_gap_s=1.6)
    rec = Recorder(broker.port, "edgevoice/+/transcript")
    rec.client.reconnect_delay_set(0.05, 0.2)
    cfg = write_config(tmp_path, bundle_dir, sinks=[{
        "name": "mqtt", "broker": broker.url, "reconnect_min": 1.5, "reconnect_max": 2.0}])
    proc = subprocess.Popen([sys.executable, "-m", "edgevoice", "run", "--config", str(cfg),
                             "--input", str(wav), "--realtime"], cwd=REPO,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert len(rec.wait_for("transcript", 1, timeout=30)) >= 1
        broker.stop()  # the broker goes away mid-stream...
        down = time.time()
        time.sleep(2.5)
        broker.start()  # ...and comes back
        up = time.time()
        assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
        got = rec.wait_for("transcript", 4, timeout=20)
    finally:
        proc.kill()
        rec.close()
    assert len({t["utterance_id"] for t in got}) == 4
    # at least one transcript was produced while there was no broker, and still arrived
    assert any(down < t["time"] < up for t in got), [t["time"] for t in got]


def test_sigterm_stops_cleanly_and_publishes_offline(tmp_path, bundle_dir, broker, recorder
                                                     ) -> None:
    cfg = write_config(tmp_path, bundle_dir, source={"name": "stdin"})
    err = stop(start_live_daemon(cfg, broker, recorder))
    assert "Traceback" not in err
    time.sleep(0.3)
    assert recorder.topic("status")[-1]["state"] == "offline"


def test_stdin_source_and_stdout_sink(tmp_path, bundle_dir, digits_wav) -> None:
    from edgevoice.audio import read_wav, to_int16

    samples, _ = read_wav(digits_wav)
    cfg = write_config(tmp_path, bundle_dir, source={"name": "stdin", "sample_rate": 16000},
                       sinks=[{"name": "stdout"}])
    out = subprocess.run([sys.executable, "-m", "edgevoice", "run", "--config", str(cfg)],
                         input=to_int16(samples).tobytes(), capture_output=True, cwd=REPO,
                         timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    lines = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert len(lines) == 2 and all(line["site_id"] == "kitchen" for line in lines)


def test_mqtt_commands(tmp_path, bundle_dir, broker, recorder) -> None:
    cfg = write_config(tmp_path, bundle_dir, source={"name": "stdin"})
    proc = start_live_daemon(cfg, broker, recorder)

    def command(name: str, payload: bytes = b"") -> None:
        recorder.client.publish(f"edgevoice/kitchen/cmd/{name}", payload, qos=1)
        time.sleep(1.2)

    cfg.write_text(cfg.read_text() + "decoder: {name: greedy}\n")
    command("reload")
    cfg.write_text(cfg.read_text().replace("name: greedy", "name: gredy"))
    command("reload")
    command("hotwords", b'["tobias"]')
    command("listen", b"off")
    command("dance")
    err = stop(proc)
    assert "reloaded: model" in err
    assert "reload failed, keeping the running configuration" in err and "did you mean" in err
    # the failed reload kept the running (greedy) decoder, which has no hot words
    assert "hotwords: the greedy decoder does not support hot words" in err
    assert "listening off" in err
    assert "unknown command 'dance'" in err
    assert "Traceback" not in err


def test_hotwords_over_mqtt(tmp_path, bundle_dir, broker, recorder) -> None:
    cfg = write_config(tmp_path, bundle_dir, source={"name": "stdin"})
    proc = start_live_daemon(cfg, broker, recorder)
    for payload in (b'["tobias", {"phrase": "call mum", "boost": 3}]', b"not json",
                    '["café"]'.encode()):
        recorder.client.publish("edgevoice/kitchen/cmd/hotwords", payload, qos=1)
    time.sleep(1.5)
    err = stop(proc)
    assert "hotwords set: tobias, call mum" in err
    assert err.count("hotwords: rejected") == 2 and "Traceback" not in err


def test_a_retained_command_is_ignored_and_the_allow_list_holds(tmp_path, bundle_dir, broker,
                                                                recorder, digits_wav) -> None:
    """Anyone may leave a retained `listen off` on the broker: it must not mute every later
    start. Commands outside the config's `commands` list are not taken."""
    from edgevoice.audio import read_wav, to_int16

    recorder.client.publish("edgevoice/kitchen/cmd/listen", b"off", qos=1, retain=True)
    sink = {"name": "mqtt", "broker": broker.url, "commands": ["listen"]}
    cfg = write_config(tmp_path, bundle_dir, source={"name": "stdin", "sample_rate": 16000},
                       sinks=[sink])
    proc = subprocess.Popen([sys.executable, "-m", "edgevoice", "run", "--config", str(cfg)],
                            cwd=REPO, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not recorder.topic("status") and time.monotonic() < deadline:
            time.sleep(0.05)
        recorder.client.publish("edgevoice/kitchen/cmd/reload", b"", qos=1)
        time.sleep(0.5)  # both commands have reached the daemon before the audio does
        samples, _ = read_wav(digits_wav)
        _, err = proc.communicate(to_int16(samples).tobytes(), timeout=60)
    finally:
        proc.kill()
    log = err.decode()
    assert proc.returncode == 0, log
    assert len(recorder.wait_for("transcript", 2)) == 2, log
    assert "ignored a retained cmd/listen" in log
    assert "cmd/reload is not in this config's `commands` list" in log
    assert "reloaded" not in log and "listening off" not in log


@pytest.mark.parametrize("case", ["not_wav", "empty", "truncated", "missing"])
def test_bad_input_files(tmp_path, bundle_dir, case) -> None:
    from test_audio import wav_bytes

    path = tmp_path / "in.wav"
    content = {"not_wav": b"ID3 this is an mp3", "empty": b"",
               "truncated": wav_bytes(b"\x00\x01" * 10, data_size=5000)}.get(case)
    if content is not None:
        path.write_bytes(content)
    cfg = write_config(tmp_path, bundle_dir, sinks=[{"name": "stdout"}])
    out = edgevoice("run", "--config", str(cfg), "--input", str(path))
    assert out.returncode == 2
    assert str(path) in one_line_error(out.stderr)


@pytest.mark.parametrize("kind", ["8bit", "stereo", "float", "rate44k", "pcm24"])
def test_unusual_wavs_are_converted(tmp_path, bundle_dir, kind) -> None:
    from test_audio import wav_bytes

    from edgevoice.audio import resample

    need_fsdd()
    src = compose(tmp_path / "src.wav", ["3_george_1", "5_jackson_2"])
    pcm = np.frombuffer(src.read_bytes()[44:], "<i2")
    x = pcm.astype(np.float32) / 32768
    if kind == "stereo":  # left: the signal, right: silence -> the mix is half as loud
        data = wav_bytes(np.stack([pcm, np.zeros_like(pcm)], 1).tobytes(), channels=2)
    elif kind == "float":
        data = wav_bytes(x.astype("<f4").tobytes(), fmt=3, bits=32)
    elif kind == "pcm24":
        wide = (pcm.astype("<i4") << 8).view(np.uint8).reshape(-1, 4)[:, :3]
        data = wav_bytes(wide.tobytes(), bits=24)
    elif kind == "8bit":
        data = wav_bytes((np.round(x * 127) + 128).astype(np.uint8).tobytes(), bits=8)
    else:
        up = resample(x, 16000, 44100)
        data = wav_bytes((up * 32767).astype("<i2").tobytes(), rate=44100)
    path = tmp_path / f"{kind}.wav"
    path.write_bytes(data)
    out = edgevoice("transcribe", "--bundle", str(bundle_dir), str(src), str(path))
    assert out.returncode == 0, out.stderr
    reference, result = (json.loads(line) for line in out.stdout.splitlines())
    assert "converted_from" not in reference and result["converted_from"]
    assert abs(result["duration"] - reference["duration"]) < 0.01
    if kind in ("float", "pcm24"):  # lossless: the very same transcript
        assert result["text"] == reference["text"]
    else:  # lossy (8-bit, resampled, -6 dB): the same number of words, most of them equal
        ref, hyp = reference["text"].split(), result["text"].split()
        assert len(hyp) == len(ref)
        assert sum(a == b for a, b in zip(ref, hyp, strict=True)) >= len(ref) // 2


def test_missing_and_corrupt_models(tmp_path, bundle_dir, digits_wav) -> None:
    import shutil

    out = edgevoice("transcribe", "--bundle", str(tmp_path / "nope"), str(digits_wav))
    assert out.returncode == 2 and "no such directory" in one_line_error(out.stderr)

    bad = tmp_path / "bad"
    shutil.copytree(bundle_dir, bad)
    model = bad / "model.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    out = edgevoice("run", "--bundle", str(bad), "--input", str(digits_wav),
                    "--broker", "mqtt://127.0.0.1:1")
    assert out.returncode == 2 and "sha256 mismatch" in one_line_error(out.stderr)

    from edgevoice.bundle import write_manifest

    model.write_bytes(b"TFL3 garbage that is not a flatbuffer" * 10)
    meta = yaml.safe_load((bad / "bundle.yaml").read_text())
    write_manifest(bad, meta)
    out = edgevoice("transcribe", "--bundle", str(bad), str(digits_wav))
    assert out.returncode == 2
    assert "not a usable TFLite model" in one_line_error(out.stderr)


def test_unknown_plugin_and_bad_yaml(tmp_path, bundle_dir) -> None:
    cfg = write_config(tmp_path, bundle_dir, vad={"name": "silero"})
    out = edgevoice("run", "--config", str(cfg))
    assert out.returncode == 2
    assert "vad.name: unknown vad 'silero'" in one_line_error(out.stderr)
    cfg.write_text("site_id: [unclosed\n")
    out = edgevoice("check-config", str(cfg))
    assert out.returncode == 2 and "line 2, column 1: invalid YAML" in out.stderr


def test_no_microphone(tmp_path, bundle_dir) -> None:
    cfg = write_config(tmp_path, bundle_dir, source={"name": "mic", "device": "no-such-mic-xyz"},
                       sinks=[{"name": "stdout"}])
    out = edgevoice("run", "--config", str(cfg))
    assert out.returncode == 2
    line = one_line_error(out.stderr)
    assert "source mic: no" in line and ("no microphone found" in line
                                         or "no input device 'no-such-mic-xyz'" in line)


def test_transcribe_json_lines(tmp_path, bundle_dir, digits_wav) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"junk")
    out = edgevoice("transcribe", "--bundle", str(bundle_dir), str(digits_wav), str(junk))
    assert out.returncode == 1
    good, bad = (json.loads(line) for line in out.stdout.splitlines())
    assert set(good) >= {"file", "text", "confidence", "duration"}
    assert good["file"] == str(digits_wav) and good["duration"] > 3
    assert bad["file"] == str(junk) and "not a WAV file" in bad["error"]


def test_check_config_reports_model(tmp_path, bundle_dir) -> None:
    cfg = write_config(tmp_path, bundle_dir)
    out = edgevoice("check-config", str(cfg))
    assert out.returncode == 0 and ": OK (source mic" in out.stdout


def test_check_config_builds_every_component(tmp_path, bundle_dir) -> None:
    """Problems only a component can see (an unset secret, a missing file) are found too."""
    cfg = write_config(tmp_path, bundle_dir, sinks=[
        {"name": "mqtt", "password_env": "EDGEVOICE_NO_SUCH_VAR", "username": "u"},
        {"name": "file"}])
    out = edgevoice("check-config", str(cfg))
    assert out.returncode == 2, out.stdout
    assert "2 problems" in out.stderr
    assert "$EDGEVOICE_NO_SUCH_VAR is not set" in out.stderr
    assert "sinks[1]: `path` is required" in out.stderr


def test_check_config_reports_every_problem_in_one_run(tmp_path) -> None:
    """Config, bundle and component problems together, not one run per mistake."""
    cfg = write_config(tmp_path, tmp_path / "no-bundle", sinks=[
        {"name": "mqtt", "ca_file": str(tmp_path / "none.pem"), "username": "u",
         "password_env": "EDGEVOICE_NO_SUCH_VAR", "topic_prefix": "a/#/+"},
        {"name": "file"}], decoder={"name": "beam", "hotwords": [{"phrase": "x",
                                                                 "boost": float("nan")}]})
    out = edgevoice("check-config", str(cfg))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    for why in ("ca_file", "$EDGEVOICE_NO_SUCH_VAR is not set", "MQTT wildcards",
                "sinks[1]: `path` is required", "bundle:", "hotwords[0].boost: must be a "
                "finite number"):
        assert why in out.stderr, (why, out.stderr)


@pytest.mark.parametrize("text, why", [
    ("a: " + "[" * 20000 + "]" * 20000, "nested more than"),
    ("a0: &a0 [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9))
     + "log_level: *a8\n", "expands to more than"),
    ("site_id: x\n" + "#" * (2 << 20), "not a config file"),
], ids=["deep", "alias-bomb", "huge"])
def test_hostile_yaml_is_one_line_not_a_crash(tmp_path, text, why) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    out = edgevoice("check-config", str(cfg))
    assert out.returncode == 2 and why in out.stderr and len(out.stderr) < 500, out.stderr[:2000]


def test_transcribe_hears_recordings_trimmed_tight_to_the_word(bundle_dir) -> None:
    """FSDD clips end (and start) right at the word; without the faint lead-in and tail the
    transcriber adds, the causal model emitted nothing for these. Word times stay the file's."""
    names = ["3_lucas_17", "1_lucas_4", "7_yweweler_8", "8_yweweler_24", "3_yweweler_12",
             "1_yweweler_5"]
    paths = [str(need_fsdd() / f"{n}.wav") for n in names]
    out = edgevoice("transcribe", "--bundle", str(bundle_dir), *paths)
    assert out.returncode == 0, out.stderr
    assert "binary file" not in out.stderr  # kenlm's advice on every ARPA load is dropped
    results = [json.loads(line) for line in out.stdout.splitlines()]
    words = "zero one two three four five six seven eight nine".split()
    right = [r["text"] == words[int(Path(r["file"]).name[0])] for r in results]
    assert sum(right) >= len(names) - 1, [r["text"] for r in results]
    for r in results:
        for w in r["words"]:
            assert 0.0 <= w["start"] <= w["end"] <= r["duration"]
