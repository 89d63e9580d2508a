"""CPU cost of the rnnoise denoiser: milliseconds of CPU per second of audio, fed as the
pipeline feeds it (16 kHz, 20 ms int16 frames), on Speech Commands words in exercise-bike
noise. RNNoise is cheaper on digital silence, so the figure is taken on noisy speech.

    python plugins/edgevoice-rnnoise/benchmarks/cpu.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from edgevoice_rnnoise import RnnoiseDenoise, RnnoiseOptions

from edgevoice.audio import read_wav
from edgevoice.components import StageContext

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "speech-commands"
RATE, FRAME = 16000, 320


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    words = sorted(DATA.glob("words/*/*.wav"))
    if not words:
        raise SystemExit(f"Speech Commands sample not found at {DATA}")
    need = int(args.seconds * RATE) // FRAME * FRAME
    speech = np.resize(np.concatenate([read_wav(p)[0] for p in words[:: max(1, len(words) // 30)]]),
                       need)
    noise = np.resize(read_wav(DATA / "background_noise" / "exercise_bike.wav")[0], need)
    pcm = (np.clip(speech + 0.3 * noise, -1, 32767 / 32768) * 32768).astype(np.int16)
    print(f"{need / RATE:.0f} s of noisy speech, {FRAME}-sample frames at {RATE} Hz")
    for mix in (0.0, 0.2):
        d = RnnoiseDenoise(RnnoiseOptions(mix=mix), StageContext("bench", RATE, FRAME))
        start = time.process_time()
        for k in range(0, need, FRAME):
            d.process(pcm[k : k + FRAME])
        cpu = time.process_time() - start
        print(f"mix {mix}: {1000 * cpu / (need / RATE):.1f} ms CPU per second of audio, "
              f"delay {1000 * d.delay_samples / RATE:.0f} ms")
        d.close()


if __name__ == "__main__":
    main()
