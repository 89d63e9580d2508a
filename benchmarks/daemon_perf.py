"""Daemon performance on a few minutes of connected digit strings (issue 2's targets).

Prints: real-time factor of the whole pipeline on one core (greedy and beam decoders; also as
CPU ms per second of audio), peak resident memory of `edgevoice run` (and whether TensorFlow
was imported), start-up time to systemd READY=1 (and the daemon's own "ready in" figure), and
end of speech -> transcript received over MQTT while audio is streamed in real time.
Needs FSDD in ../shared/data/fsdd and mosquitto on PATH (or /usr/sbin).

    python benchmarks/daemon_perf.py [--minutes 3] [--bundle builtin:digits] [--quick]

--quick leaves out the memory and real-time latency runs (a minute of audio streamed each).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgevoice.startup import limit_blas_threads

limit_blas_threads()  # the daemon's own setting, before numpy loads in this process

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FSDD = REPO.parent / "shared" / "data" / "fsdd"
RATE = 16000


def compose_session(minutes: float, seed: int = 7
                    ) -> tuple[np.ndarray, list[float], list[tuple[float, str]]]:
    """Held-out digit strings separated by 1-2.5 s pauses; returns audio, speech end times and
    each string's (start time, text)."""
    from edgevoice.training.data import WordBank, heldout_utterances, read_fsdd

    clips = [c for c in read_fsdd(FSDD) if c.speaker == "nicolas"]
    bank = WordBank.from_clips(clips, RATE)
    rng = np.random.default_rng(seed)
    parts, ends, strings, t = [], [], [], 0.0
    n = int(minutes * 60 / 4.5) + 1
    for x, text in heldout_utterances(bank, n, seed, RATE):
        gap = np.zeros(int(rng.uniform(1.0, 2.5) * RATE), np.float32)
        parts += [gap, x]
        strings.append((t + len(gap) / RATE, text))
        t += (len(gap) + len(x)) / RATE
        ends.append(t)
        if t > minutes * 60:
            break
    parts.append(np.zeros(2 * RATE, np.float32))
    audio = np.concatenate(parts)
    audio += (rng.standard_normal(len(audio)) * 10 ** (-60 / 20)).astype(np.float32)
    return audio, ends, strings


class Broker:
    def __init__(self, tmp: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        conf = tmp / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def rtf(wav: Path, bundle: str, decoder: str, duration: float) -> tuple[float, int]:
    """CPU seconds per audio second of the whole daemon pipeline, pinned to one core."""
    from edgevoice.config import load_settings
    from edgevoice.daemon import Daemon

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    raw = {"bundle": bundle, "source": {"name": "wav", "path": str(wav)},
           "decoder": {"name": decoder}, "sinks": [{"name": "file", "path": os.devnull}],
           "log_level": "warning"}
    settings, registry = load_settings(raw, "benchmark")
    daemon = Daemon(settings, registry)
    daemon.start()
    cpu0 = time.process_time()
    daemon.run()
    cpu = time.process_time() - cpu0
    return cpu / duration, daemon.pipeline.transcripts if daemon.pipeline else 0


def memory(wav: Path, bundle: str, broker: Broker, decoder: str) -> tuple[float, bool]:
    """Peak RSS (MiB) of `edgevoice run --input` publishing to a real broker; TF imported?

    Read from the child's own VmHWM: ru_maxrss of a child would also count this (large)
    benchmark process's pages, which the child shares between fork and exec."""
    code = ("import sys, json; from edgevoice.cli import main; rc = main(sys.argv[1:]); "
            "print(json.dumps({'rc': rc, 'tf': 'tensorflow' in sys.modules}))")
    proc = subprocess.Popen([sys.executable, "-c", code, "run", "--input", str(wav), "--bundle",
                             bundle, "--broker", broker.url, "--decoder", decoder],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    peak_kib = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kib = max(peak_kib, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    out, err = proc.communicate()
    info = json.loads(out.strip().splitlines()[-1])
    assert info["rc"] == 0, err
    return peak_kib / 1024, info["tf"]


STARTUP_RUNS = 9  # timed starts, after one that compiles the bytecode


def startup(tmp: Path, bundle: str, runs: int = STARTUP_RUNS) -> tuple[float, float, float]:
    """Median seconds from process start to READY=1 on NOTIFY_SOCKET (stdin source), and the
    median of what the daemon's own "ready in" log line says, both with Python's bytecode
    cached as on any start of an installed daemon but its first; and the seconds of that first
    start, which compiles every module it imports.

    The bytecode goes to a cache of its own (PYTHONPYCACHEPREFIX), so the first start is cold
    whatever this machine has cached, and PYTHONDONTWRITEBYTECODE (set in some development
    shells) cannot make every start compile edgevoice anew."""
    cfg = tmp / "stdin.yaml"
    cfg.write_text(f"bundle: {bundle}\nsource: {{name: stdin}}\nsinks: [{{name: stdout}}]\n"
                   "log_level: info\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    times, logged = [], []
    for i in range(runs + 1):
        path = str(tmp / f"notify{i}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            sock.settimeout(30)
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "edgevoice", "run", "-c", str(cfg)],
                                    stdin=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                                    env={**env, "NOTIFY_SOCKET": path})
            while b"READY=1" not in sock.recv(4096):
                pass
            times.append(time.perf_counter() - t0)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=10)
            if i:  # the first start compiled the bytecode the others read
                logged += [float(line.split("ready in ")[1].split()[0]) / 1000
                           for line in err.decode().splitlines() if "ready in " in line]
    return (statistics.median(times[1:]), statistics.median(logged) if logged else float("nan"),
            times[0])


def latency(tmp: Path, audio: np.ndarray, ends: list[float], bundle: str, broker: Broker,
            decoder: str, hangover_ms: int) -> tuple[list[float], list[float]]:
    """Audio is written to the daemon's stdin in real time; for each transcript received from
    the broker: seconds since the end of speech as the VAD placed it (payload `end`), and
    seconds since the true end of the utterance's last word (known from composition)."""
    import paho.mqtt.client as mqtt

    got: list[tuple[float, dict]] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = lambda c, u, m: got.append((time.perf_counter(), json.loads(m.payload)))
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("edgevoice/+/transcript", qos=1)
    sub.loop_start()
    cfg = tmp / "live.yaml"
    cfg.write_text(f"bundle: {bundle}\nsource: {{name: stdin, sample_rate: {RATE}}}\n"
                   f"decoder: {{name: {decoder}}}\nvad: {{name: webrtcvad, hangover_ms: "
                   f"{hangover_ms}}}\nsinks: [{{name: mqtt, broker: '{broker.url}'}}]\n"
                   "log_level: warning\n")
    proc = subprocess.Popen([sys.executable, "-m", "edgevoice", "run", "-c", str(cfg)],
                            stdin=subprocess.PIPE, cwd=REPO)
    time.sleep(2.0)  # let it start; stream time 0 is the first sample written below
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    block = RATE // 50
    assert proc.stdin is not None
    t0 = time.perf_counter()
    for i in range(0, len(pcm), block):
        # a microphone delivers a block once its last sample has been captured
        time.sleep(max(0.0, t0 + (i + block) / RATE - time.perf_counter()))
        proc.stdin.write(pcm[i : i + block].tobytes())
        proc.stdin.flush()
    proc.stdin.close()
    proc.wait(60)
    time.sleep(0.5)
    sub.loop_stop()
    vad, true = [], []
    for arrival, p in got:
        vad.append(arrival - (t0 + p["end"]))
        inside = [e for e in ends if p["start"] <= e <= p["end"] + 1.0]
        if inside:
            true.append(arrival - (t0 + inside[-1]))
    return sorted(vad), sorted(true)


def _summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    p90 = values[int(0.9 * (len(values) - 1))]
    return f"{1000 * statistics.median(values):.0f} / {1000 * p90:.0f} / {1000 * values[-1]:.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--bundle", default="builtin:digits")
    ap.add_argument("--hangover-ms", type=int, default=400)
    ap.add_argument("--quick", action="store_true", help="RTF and start-up only")
    args = ap.parse_args()
    if not FSDD.is_dir():
        sys.exit(f"FSDD not found at {FSDD}: this benchmark needs ../shared/data/fsdd")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        from edgevoice.audio import write_wav

        audio, ends, _ = compose_session(args.minutes)
        wav = tmp / "session.wav"
        write_wav(wav, audio, RATE)
        duration = len(audio) / RATE
        print(f"audio: {duration:.1f} s, {len(ends)} utterances (held-out speaker nicolas)")
        broker = Broker(tmp)
        try:
            print(f"{'decoder':8} {'RTF 1 core':>10} {'CPU ms/s':>9} {'peak RSS MiB':>13} "
                  f"{'TF imported':>12}   speech end -> transcript received, ms "
                  "(median / p90 / max)")
            for decoder in ("greedy", "beam"):
                factor, n = rtf(wav, args.bundle, decoder, duration)
                if args.quick:
                    print(f"{decoder:8} {factor:10.4f} {1000 * factor:9.2f}   ({n} transcripts)")
                    continue
                rss, tf = memory(wav, args.bundle, broker, decoder)
                vad, true = latency(tmp, audio[: 60 * RATE], ends, args.bundle, broker,
                                    decoder, args.hangover_ms)
                print(f"{decoder:8} {factor:10.4f} {1000 * factor:9.2f} {rss:13.1f} "
                      f"{str(tf):>12}   from VAD end: "
                      f"{_summary(vad)}; from last word's true end: {_summary(true)}"
                      f"   ({n} transcripts in the RTF run)")
            ready, logged, cold = startup(tmp, args.bundle)
            print(f"start-up to READY=1 (median of {STARTUP_RUNS}, bytecode cached): "
                  f"{ready:.3f} s (the daemon logs 'ready in' {logged:.3f} s); a start that "
                  "compiles every module "
                  f"it imports, numpy's and Python's too (worst case): {cold:.3f} s")
            print(f"targets: RTF <= 0.01 (CPU <= 2.0 ms/s), RSS <= 64 MiB, no TensorFlow, "
                  f"ready <= 0.25 s, "
                  f"EOS->publish <= hang-over {args.hangover_ms} ms + 30 ms")
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
