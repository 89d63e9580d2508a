"""Soak: `edgevoice run --realtime` for minutes against a real Mosquitto killed and restarted.

A WAV of held-out digit strings (speaker nicolas, daemon_perf's session) is streamed in real
time to the mqtt sink while the broker is SIGKILLed `--kills` times at spread-out moments and
started again on the same port `--down` s later; a recorder subscribed throughout counts the
transcripts, and the daemon's RSS and CPU time are read from /proc every 2 s.

The broker keeps nothing across a kill (no persistence): what the daemon had not had
acknowledged must come from its own QoS 1 retry. The recorder reconnects within 0.2 s and
re-subscribes on every connect, before the daemon's backoff (0.5 s doubling) brings it back:
4 s down puts the daemon's try at 7.5 s; with 3 s down it comes 0.3 s after the recorder, and a
recorder slower than that would miss what the broker passes on before it is back.
A file sink beside the mqtt one records what the daemon produced, so a transcript lost on the
way is told apart from an utterance the VAD split, merged or heard nothing in.
Needs FSDD in ../shared/data/fsdd and mosquitto; skipped without them.

    python benchmarks/soak.py [--seconds 512] [--kills 3] [--down 4] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
from daemon_perf import FSDD, RATE, REPO, compose_session  # noqa: E402
from support import Broker, Recorder  # noqa: E402

SAMPLE_EVERY = 2.0  # s
WARM = 60.0  # s: start-up and first allocations are over by then


@dataclass(frozen=True)
class Sample:
    t: float  # s since the daemon was started
    rss_mib: float
    hwm_mib: float  # peak RSS so far
    cpu_s: float  # user + system


def read_proc(pid: int, t: float) -> Sample | None:
    """RSS and CPU time of a running process; None once it has exited (a zombie has no RSS)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    kib = {k: int(v.split()[0]) for k, v in
           (line.split(":", 1) for line in status.splitlines()) if k in ("VmRSS", "VmHWM")}
    if "VmRSS" not in kib:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    return Sample(t, kib["VmRSS"] / 1024, kib["VmHWM"] / 1024,
                  ticks / os.sysconf("SC_CLK_TCK"))


def sample(pid: int, t0: float, out: list[Sample], stop: threading.Event) -> None:
    while not stop.is_set():
        s = read_proc(pid, time.monotonic() - t0)
        if s is not None:
            out.append(s)
        stop.wait(SAMPLE_EVERY)


def exited(pid: int) -> bool:
    """Whether the child has exited, leaving it unreaped for os.wait4 to collect its usage."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def write_config(tmp: Path, bundle: str, broker: Broker) -> Path:
    cfg = tmp / "soak.yaml"
    cfg.write_text(json.dumps({  # JSON is YAML
        "bundle": bundle, "site_id": "soak", "log_level": "info",
        "sinks": [{"name": "mqtt", "broker": broker.url, "spool_dir": str(tmp / "spool")},
                  {"name": "file", "path": str(tmp / "produced.jsonl")}]}))
    return cfg


def kill_and_restart(broker: Broker, down: float) -> tuple[float, float]:
    """SIGKILL the broker, restart it on its port `down` s later; wall times of both."""
    assert broker.proc is not None
    broker.proc.send_signal(signal.SIGKILL)
    broker.proc.wait()
    killed = time.time()
    broker.proc = None
    time.sleep(down)
    broker.start()
    return killed, time.time()


def log_times(log: str, text: str) -> list[float]:
    """Wall times of the daemon's log lines containing `text` (its asctime, to the ms)."""
    return [datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            for line in log.splitlines() if text in line]


@dataclass
class Run:
    rc: int = -1
    cpu_s: float = 0.0  # the daemon's user + system time, from its rusage
    wall0: float = 0.0  # wall time the daemon was started
    samples: list[Sample] = field(default_factory=list)
    outages: list[tuple[float, float]] = field(default_factory=list)  # (killed, up), wall


def run_daemon(cmd: list[str], log: Path, seconds: float, broker: Broker,
               args: argparse.Namespace) -> Run:
    """The daemon to its end, sampled, with the broker killed at spread-out moments."""
    run = Run(wall0=time.time())
    t0 = time.monotonic()
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, stderr=err)
    stop = threading.Event()
    sampler = threading.Thread(target=sample, args=(proc.pid, t0, run.samples, stop),
                               daemon=True)
    sampler.start()
    try:
        for k in range(1, args.kills + 1):
            at = t0 + seconds * k / (args.kills + 1)
            while time.monotonic() < at and not exited(proc.pid):
                time.sleep(0.2)
            if exited(proc.pid):
                break
            run.outages.append(kill_and_restart(broker, args.down))
        _, status, usage = os.wait4(proc.pid, 0)  # rusage: the CPU of the whole run, exactly
        proc.returncode = run.rc = os.waitstatus_to_exitcode(status)
        run.cpu_s = usage.ru_utime + usage.ru_stime
    finally:
        stop.set()
        sampler.join()
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    return run


def soak(args: argparse.Namespace, tmp: Path) -> None:
    from edgevoice.audio import write_wav

    audio, _, strings = compose_session(args.seconds / 60)
    wav = tmp / "soak.wav"
    write_wav(wav, audio, RATE)
    seconds = len(audio) / RATE
    broker = Broker(tmp)
    broker.start()
    try:
        rec = Recorder(broker.port, "edgevoice/+/transcript")
        rec.client.reconnect_delay_set(0.05, 0.2)
        subscribed: list[float] = []
        rec.client.on_subscribe = lambda *a: subscribed.append(time.time())
        try:
            cmd = [sys.executable, "-m", "edgevoice", "run", "-c",
                   str(write_config(tmp, args.bundle, broker)), "--input", str(wav), "--realtime"]
            run = run_daemon(cmd, tmp / "daemon.log", seconds, broker, args)
            produced = [json.loads(line)
                        for line in (tmp / "produced.jsonl").read_text().splitlines()]
            rec.wait_for("transcript", len(produced), timeout=20)
            got = rec.topic("transcript")
        finally:
            rec.close()
    finally:
        broker.stop()
    spooled = sum(len(f.read_text().splitlines()) for f in (tmp / "spool").glob("*")
                  if f.is_file())
    print(f"audio: {seconds:.1f} s, {len(strings)} utterances in the WAV (held-out speaker "
          f"nicolas); broker SIGKILLed {len(run.outages)} time(s), {args.down:g} s down each; "
          f"wall {time.time() - run.wall0:.0f} s")
    delivery(strings, produced, got, run.rc, spooled)
    memory_and_cpu(run.samples, run.cpu_s, seconds)
    timeline(run.outages, subscribed, produced, (tmp / "daemon.log").read_text(), run.wall0)


def delivery(strings: list, produced: list[dict], got: list[dict], rc: int, spooled: int
             ) -> None:
    ids = {p["utterance_id"] for p in got}
    missing = [p for p in produced if p["utterance_id"] not in ids]
    print(f"transcripts produced (file sink): {len(produced)}")
    print(f"transcripts received over MQTT: {len(ids)} unique utterance_id, "
          f"{len(got) - len(ids)} duplicates, "
          f"{sum(1 for p in got if p.get('replayed'))} replayed")
    print(f"lost: {len(strings) - len(ids)} (WAV utterances - received; VAD splits, merges and "
          f"'nothing recognised' count here), {len(missing)} in delivery (produced, never "
          f"received); left in the spool: {spooled}")
    for p in missing:
        print(f"  lost in delivery: {p['utterance_id']} made at {p['time']:.3f} "
              f"({p.get('text')!r}, audio {p['start']:.1f}-{p['end']:.1f} s)")
    print(f"exit code: {rc}")


def memory_and_cpu(samples: list[Sample], cpu_s: float, seconds: float) -> None:
    import numpy as np

    if not samples:
        print("no RSS samples (the daemon ended at once?)")
        return
    at_warm = min(samples, key=lambda s: abs(s.t - WARM))
    late = [s for s in samples if s.t >= WARM]
    slope = "n/a (too short)"
    if len(late) >= 2:
        mib_h = np.polyfit([s.t / 3600 for s in late], [s.rss_mib for s in late], 1)[0]
        slope = f"{mib_h:+.2f} MiB/hour ({len(late)} samples, every {SAMPLE_EVERY:g} s)"
    print(f"RSS MiB: {at_warm.rss_mib:.1f} at {at_warm.t:.0f} s, {samples[-1].rss_mib:.1f} at "
          f"the end ({samples[-1].t:.0f} s), max {max(s.hwm_mib for s in samples):.1f} (VmHWM); "
          f"slope after {WARM:.0f} s: {slope}")
    by_minute = [next(s for s in samples if s.t >= m) for m in range(60, int(samples[-1].t), 60)]
    print("RSS MiB each minute from 1 min: " + " ".join(f"{s.rss_mib:.1f}" for s in by_minute))
    steady = ""
    if len(late) >= 2:  # real time: a second of wall is a second of audio
        rate = (late[-1].cpu_s - late[0].cpu_s) / (late[-1].t - late[0].t)
        steady = f"; {1000 * rate:.2f} ms/s after {WARM:.0f} s (start-up left out)"
    print(f"CPU: {cpu_s:.2f} s user+system, {1000 * cpu_s / seconds:.2f} ms per second of "
          f"audio{steady}")


def timeline(outages: list[tuple[float, float]], subscribed: list[float], produced: list[dict],
             log: str, wall0: float) -> None:
    """When each outage began and ended, when the recorder and the daemon were back, and how
    many transcripts were made while the daemon had no broker (the ones its retry carried)."""
    back = log_times(log, "mqtt: connected to")
    for k, (killed, up) in enumerate(outages, 1):
        rec = next((t for t in subscribed if t >= up), float("nan"))
        daemon = next((t for t in back if t >= killed), float("nan"))
        cut_off = sum(1 for p in produced if killed <= p["time"] <= daemon)
        print(f"kill {k} at {killed - wall0:.1f} s: broker up again {up - killed:.1f} s later, "
              f"recorder subscribed +{rec - killed:.2f} s, daemon reconnected "
              f"+{daemon - killed:.2f} s; {cut_off} transcript(s) made in between")
    for line in log.splitlines():
        if " WARNING " in line or " ERROR " in line:
            print(f"  daemon: {line}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=512.0, help="audio length, s")
    ap.add_argument("--kills", type=int, default=3, help="broker SIGKILLs, spread out")
    ap.add_argument("--down", type=float, default=4.0, help="s the broker stays down")
    ap.add_argument("--bundle", default="builtin:digits")
    ap.add_argument("--quick", action="store_true", help="120 s and one kill")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.kills = 120.0, 1
    if not FSDD.is_dir():
        print(f"skipped: FSDD not found at {FSDD} (this benchmark needs ../shared/data/fsdd)")
        return
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        print("skipped: mosquitto is not installed (`apt-get install mosquitto`)")
        return
    with tempfile.TemporaryDirectory() as d:
        soak(args, Path(d))


if __name__ == "__main__":
    main()
