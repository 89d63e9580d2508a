"""Inputs that are not a plain WAV file or a microphone: FIFOs, pipes, /dev/stdin, a closed
stdin, damaged headers, no sound card; and how signals end a run. The real CLI as a
subprocess, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from support import REPO, compose, edgevoice, free_port, need_fsdd
from test_audio import wav_bytes
from test_daemon import one_line_error

from edgevoice.audio import WavReader, read_wav, to_int16, write_wav

SIGTERM_EXIT, SIGINT_EXIT = 128 + signal.SIGTERM, 128 + signal.SIGINT


def config(tmp: Path, bundle: Path, **extra: object) -> Path:
    path = tmp / "edgevoice.yaml"
    path.write_text(yaml.safe_dump({"bundle": str(bundle), "site_id": "kitchen",
                                    "sinks": [{"name": "stdout"}], **extra}))
    return path


def cli(*args: str, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "edgevoice", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)  # type: ignore[call-overload]


def finish(proc: subprocess.Popen[str], timeout: float = 15) -> tuple[int, str, str]:
    """Exit code, stdout, stderr; a process that does not end in time fails the test."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"still running after {timeout} s; it logged:\n{err}")
    return proc.returncode, out, err


def feed_fifo(path: Path, data: bytes) -> threading.Thread:
    """A writer for a FIFO, as `cat x.wav > fifo` in another shell."""
    def write() -> None:
        with open(path, "wb") as f:
            f.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def digits_wav(tmp_path: Path) -> Path:
    need_fsdd()
    return compose(tmp_path / "two.wav", ["3_george_1", "5_jackson_2", "7_lucas_3",
                                          "1_yweweler_4", "9_nicolas_5"], groups=[3, 2])


# -- FIFOs and other streams ------------------------------------------------------------------

def test_run_on_a_fifo_without_writer_stops_on_sigterm(tmp_path, bundle_dir, broker, recorder
                                                       ) -> None:
    fifo = tmp_path / "in.wav"
    os.mkfifo(fifo)
    cfg = config(tmp_path, bundle_dir, sinks=[{"name": "mqtt", "broker": broker.url}])
    proc = cli("run", "--config", str(cfg), "--input", str(fifo))
    try:
        # online: the sink is up and the daemon waits in open() for the FIFO's writer
        assert recorder.wait_for("status")[-1]["state"] == "online"
        proc.send_signal(signal.SIGTERM)
        code, _, err = finish(proc, 10)
    finally:
        proc.kill()
    assert code == SIGTERM_EXIT and "Traceback" not in err, err
    assert recorder.wait_for("status", 2)[-1]["state"] == "offline"


def blocked_signals(pid: int, tid: int) -> set[int]:
    """The signals thread `tid` of process `pid` blocks (SigBlk in /proc, a hex bit mask)."""
    status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    mask = int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("SigBlk:")), 16)
    return {n for n in range(1, 65) if mask >> (n - 1) & 1}


def test_only_the_main_thread_can_take_a_stop_signal_while_a_fifo_waits(
        tmp_path, bundle_dir, broker, recorder) -> None:
    """The kernel gives a process's signal to any thread that does not block it. Were it given
    to the MQTT client's thread, the main thread would stay in the FIFO's open() and SIGTERM
    would go unheard (the race behind a 1-in-20 hang of the test above): every thread the
    daemon starts blocks the stop signals, so the main thread alone can take them."""
    fifo = tmp_path / "in.wav"
    os.mkfifo(fifo)
    cfg = config(tmp_path, bundle_dir, sinks=[{"name": "mqtt", "broker": broker.url}])
    proc = cli("run", "--config", str(cfg), "--input", str(fifo))
    stop = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    try:
        assert recorder.wait_for("status")[-1]["state"] == "online"
        deadline = time.monotonic() + 10  # the sink is up; the main thread unblocks, then opens
        while stop & blocked_signals(proc.pid, proc.pid):
            assert time.monotonic() < deadline, "the main thread still blocks the stop signals"
            time.sleep(0.01)
        others = [int(t) for t in os.listdir(f"/proc/{proc.pid}/task") if int(t) != proc.pid]
        assert others, "the MQTT sink runs a thread of its own"
        for tid in others:
            try:
                assert stop <= blocked_signals(proc.pid, tid), tid
            except FileNotFoundError:  # a short-lived thread ended meanwhile
                continue
    finally:
        proc.send_signal(signal.SIGTERM)
        code, _, err = finish(proc, 10)
    assert code == SIGTERM_EXIT, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_transcribe_on_a_fifo_without_writer_stops_on_a_signal(tmp_path, bundle_dir, signum
                                                                ) -> None:
    fifo = tmp_path / "in.wav"
    os.mkfifo(fifo)
    first = tmp_path / "first.wav"
    write_wav(first, np.zeros(8000, np.float32), 16000)
    # SIG_IGN for SIGINT, as a shell leaves it for `edgevoice transcribe fifo &`
    proc = cli("transcribe", "--bundle", str(bundle_dir), str(first), str(fifo),
               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["file"] == str(first)  # now in the FIFO
        proc.send_signal(signum)
        code, _, err = finish(proc, 10)
    finally:
        proc.kill()
    assert code == 128 + signum and "Traceback" not in err, err


def test_transcribe_reads_streams_front_to_back(tmp_path, bundle_dir, digits_wav) -> None:
    """/dev/stdin from a pipe, a FIFO with a writer (as `<(cat x.wav)` is) and the plain file
    give one transcript each, the same one; a stream error does not end the batch."""
    data = digits_wav.read_bytes()
    fifo = tmp_path / "fifo.wav"
    os.mkfifo(fifo)
    writer = feed_fifo(fifo, data)
    out = subprocess.run([sys.executable, "-m", "edgevoice", "transcribe", "--bundle",
                          str(bundle_dir), "/dev/stdin", str(fifo), str(digits_wav)],
                         input=data, capture_output=True, cwd=REPO, timeout=60)
    writer.join(5)
    assert out.returncode == 0 and b"Traceback" not in out.stderr, out.stderr.decode()
    results = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["file"] for r in results] == ["/dev/stdin", str(fifo), str(digits_wav)]
    assert len({r["text"] for r in results}) == 1 and results[0]["text"]
    assert len({r["duration"] for r in results}) == 1


def test_run_reads_a_wav_from_a_pipe(tmp_path, bundle_dir, digits_wav) -> None:
    cfg = config(tmp_path, bundle_dir)
    out = subprocess.run([sys.executable, "-m", "edgevoice", "run", "--config", str(cfg),
                          "--input", "/dev/stdin"], input=digits_wav.read_bytes(),
                         capture_output=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    assert len(out.stdout.decode().splitlines()) == 2


def test_reader_joins_a_pipes_short_reads(tmp_path: Path) -> None:
    """A pipe hands over what its writer wrote so far: odd-sized pieces, a length the header
    leaves open (0xFFFFFFFF, as streaming recorders write), all samples in order."""
    x = (np.sin(np.arange(48000) / 7.0) * 0.5).astype(np.float32)
    raw = to_int16(x).astype("<i2").tobytes()
    data = wav_bytes(raw, data_size=0xFFFFFFFF)
    read_end, write_end = os.pipe()

    def write() -> None:
        with os.fdopen(write_end, "wb", buffering=0) as f:
            for i in range(0, len(data), 1001):
                f.write(data[i : i + 1001])
                time.sleep(0.0005)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        samples, info = read_wav(f"/dev/fd/{read_end}")
    finally:
        os.close(read_end)
        thread.join(5)
    assert info.frames == 0  # not known up front
    assert np.array_equal(to_int16(samples), to_int16(x))


# -- damaged headers --------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [2_000_000_000, 4294967295, 400_000])
def test_impossible_sample_rates_are_refused(tmp_path, bundle_dir, rate) -> None:
    bad = tmp_path / "bad.wav"
    header = bytearray(wav_bytes(b"\x00\x01" * 1600))
    header[24:28] = struct.pack("<I", rate)  # the 'fmt ' chunk's sample rate
    bad.write_bytes(bytes(header))
    with pytest.raises(Exception, match=f"sample rate {rate} Hz is above the 384000 Hz"):
        WavReader(bad)
    out = edgevoice("transcribe", "--bundle", str(bundle_dir), str(bad))
    assert out.returncode == 1
    assert json.loads(out.stdout)["error"] == one_line_error(out.stderr).split("error: ", 1)[1]
    assert str(bad) in out.stderr and f"{rate} Hz" in out.stderr
    cfg = config(tmp_path, bundle_dir)
    out = edgevoice("run", "--config", str(cfg), "--input", str(bad))
    assert out.returncode == 2 and f"{bad}: sample rate {rate} Hz" in one_line_error(out.stderr)


def test_the_highest_real_rate_is_read(tmp_path: Path) -> None:
    good = tmp_path / "good.wav"
    good.write_bytes(wav_bytes(b"\x00\x01" * 3840, rate=384000))
    samples, info = read_wav(good)
    assert info.sample_rate == 384000 and len(samples) == 3840


# -- stdin --------------------------------------------------------------------------------------

def test_stdin_source_with_stdin_closed(tmp_path, bundle_dir) -> None:
    cfg = config(tmp_path, bundle_dir, source={"name": "stdin"})
    out = subprocess.run(["sh", "-c", 'exec "$0" "$@" <&-', sys.executable, "-m", "edgevoice",
                          "run", "--config", str(cfg)], capture_output=True, text=True,
                         cwd=REPO, timeout=60)
    assert out.returncode == 2
    assert "source stdin: standard input is closed" in one_line_error(out.stderr)


@pytest.fixture
def long_raw(tmp_path: Path) -> bytes:
    """About 19 s of raw PCM, six utterances: far more than a 0.1 s queue holds."""
    need_fsdd()
    names = ["3_george_1", "5_jackson_2", "7_lucas_3", "1_yweweler_4", "9_nicolas_5",
             "2_george_3"]
    wav = compose(tmp_path / "six.wav", names * 2, groups=[2] * 6)
    return to_int16(read_wav(wav)[0]).tobytes()


def test_a_file_piped_to_stdin_loses_nothing(tmp_path, bundle_dir, long_raw) -> None:
    """`cat x.raw | edgevoice run` with a queue far smaller than the file: the pipe waits."""
    cfg = config(tmp_path, bundle_dir, source={"name": "stdin"}, audio={"queue_seconds": 0.1})
    out = subprocess.run([sys.executable, "-m", "edgevoice", "run", "--config", str(cfg)],
                         input=long_raw, capture_output=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    assert b"dropped" not in out.stderr
    assert len(out.stdout.decode().splitlines()) == 6


def test_lost_audio_is_not_exit_0(tmp_path, bundle_dir, long_raw) -> None:
    """A live stdin (`live: true`, arecord) drops what processing cannot keep up with, and
    says so in its exit code."""
    cfg = config(tmp_path, bundle_dir, source={"name": "stdin", "live": True},
                 audio={"queue_seconds": 0.1})
    out = subprocess.run([sys.executable, "-m", "edgevoice", "run", "--config", str(cfg)],
                         input=long_raw, capture_output=True, cwd=REPO, timeout=120)
    assert out.returncode == 4, out.stderr.decode()
    assert "of audio were dropped" in one_line_error(out.stderr.decode())


# -- the end of a run ---------------------------------------------------------------------------

@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        sock.settimeout(60)
        yield sock


def test_a_signal_ends_the_final_delivery_at_once(tmp_path, bundle_dir, digits_wav,
                                                  notify_socket) -> None:
    """The broker is unreachable and delivery_timeout is a minute: SIGTERM while the daemon
    waits to deliver ends it within seconds, keeps the transcripts in the spool and exits
    128 + SIGTERM, not 0 like a complete run."""
    spool = tmp_path / "spool"
    cfg = config(tmp_path, bundle_dir, delivery_timeout=60.0, sinks=[
        {"name": "mqtt", "broker": f"mqtt://127.0.0.1:{free_port()}", "spool_dir": str(spool)}])
    proc = cli("run", "--config", str(cfg), "--input", str(digits_wav),
               env={**os.environ, "NOTIFY_SOCKET": notify_socket.getsockname()})
    try:
        while b"STOPPING=1" not in notify_socket.recv(4096):  # the input has ended
            pass
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        code, _, err = finish(proc, 15)
    finally:
        proc.kill()
    assert code == SIGTERM_EXIT, err
    assert time.monotonic() - t0 < 8, "the signal did not cut the delivery short"
    (saved,) = spool.iterdir()
    topics = [json.loads(line)["topic"] for line in saved.read_text().splitlines()]
    assert sum(t.endswith("/transcript") for t in topics) == 2


# -- no sound card ------------------------------------------------------------------------------

def test_no_sound_card_is_one_line(tmp_path, bundle_dir) -> None:
    pytest.importorskip("pyaudio")
    if Path("/dev/snd").exists():
        pytest.skip("this machine has a sound card")
    cfg = config(tmp_path, bundle_dir)  # the default source: the microphone
    out = edgevoice("run", "--config", str(cfg))
    assert out.returncode == 2
    assert out.stderr.splitlines() == [one_line_error(out.stderr)], out.stderr
    assert "source mic: no microphone found" in out.stderr
