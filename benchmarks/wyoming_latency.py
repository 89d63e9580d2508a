"""Latency from `audio-stop` to `transcript` over Wyoming, on the shipped model.

Starts the real `edgevoice-wyoming` server (plugins/edgevoice-wyoming, installed) on a free
port and sends it the held-out FSDD speaker's recordings (nicolas) one at a time with the
wyoming library's own client, as Home Assistant does: `transcribe`, `audio-start`, 64 ms
`audio-chunk`s paced in real time (the default) or as fast as possible (`--fast`),
`audio-stop`. Prints the median and 90th percentile of audio-stop -> transcript, and the
accuracy as a check that the server heard the digits. Needs FSDD in ../shared/data/fsdd.

    python benchmarks/wyoming_latency.py [--files 100] [--fast] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FSDD = REPO.parent / "shared" / "data" / "fsdd"
CHUNK_MS = 64
WORDS = "zero one two three four five six seven eight nine".split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(uri: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    from wyoming.client import AsyncClient
    from wyoming.info import Describe

    deadline = time.monotonic() + 30
    while True:
        try:
            async with AsyncClient.from_uri(uri, read_timeout=10) as client:
                await client.write_event(Describe().event())
                if await client.read_event() is not None:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the server did not start:\n{log.read_text()}")
        await asyncio.sleep(0.1)


async def one(uri: str, path: Path, fast: bool) -> tuple[float, str]:
    """Seconds from writing audio-stop to reading the transcript, and its text."""
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioStop, wav_to_chunks
    from wyoming.client import AsyncClient

    with wave.open(str(path), "rb") as wav:
        samples = int(wav.getframerate() * CHUNK_MS / 1000)
        events = list(wav_to_chunks(wav, samples, start_event=True))
    async with AsyncClient.from_uri(uri, read_timeout=30) as client:
        await client.write_event(Transcribe(language="en").event())
        for event in events:
            await client.write_event(event.event())
            if not fast:
                await asyncio.sleep(CHUNK_MS / 1000)
        t0 = time.perf_counter()
        await client.write_event(AudioStop().event())
        while (event := await client.read_event()) is not None:
            if Transcript.is_type(event.type):
                return time.perf_counter() - t0, Transcript.from_event(event).text
        raise RuntimeError(f"{path.name}: no transcript")


async def measure(uri: str, files: list[Path], fast: bool) -> tuple[list[float], int]:
    latencies, right = [], 0
    for path in files:
        seconds, text = await one(uri, path, fast)
        latencies.append(seconds)
        right += text == WORDS[int(path.name[0])]
    return latencies, right


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=100, help="recordings to send (of 500)")
    p.add_argument("--fast", action="store_true", help="send audio as fast as possible")
    p.add_argument("--bundle", default="builtin:digits", help="model bundle (default shipped)")
    args = p.parse_args()
    every = sorted(FSDD.glob("*_nicolas_*.wav")) if FSDD.is_dir() else []
    files = every[::max(1, len(every) // max(args.files, 1))][:args.files]  # all ten digits
    if not files:
        print(f"skipped: the held-out FSDD recordings (*_nicolas_*.wav) are not in {FSDD}")
        return 0
    try:
        import edgevoice_wyoming  # noqa: F401
    except ImportError:
        sys.exit("pip install -e plugins/edgevoice-wyoming first")
    uri = f"tcp://127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "edgevoice_wyoming.cli", "--uri", uri,
                                     "--bundle", args.bundle], stdout=out,
                                    stderr=subprocess.STDOUT, cwd=REPO)
        try:
            asyncio.run(wait_ready(uri, proc, log))
            latencies, right = asyncio.run(measure(uri, files, args.fast))
        finally:
            proc.terminate()
            proc.wait(15)
    ms = sorted(x * 1000 for x in latencies)
    pace = "as fast as possible" if args.fast else "in real time"
    print(f"{len(files)} held-out recordings (speaker nicolas), {CHUNK_MS} ms chunks sent {pace}")
    print(f"audio-stop -> transcript: median {statistics.median(ms):.1f} ms, "
          f"90th percentile {ms[int(0.9 * (len(ms) - 1))]:.1f} ms, max {ms[-1]:.1f} ms")
    print(f"digits heard right: {right} / {len(files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
