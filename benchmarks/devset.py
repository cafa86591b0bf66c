"""A development set of non-speech, and of real speech with noisy tails, built from seeds.

Nothing here is a recording: every sound is synthesised with a fixed seed, so the set is the
same on every machine and costs no space in the repository. Speech comes from the real clips
the other benchmarks use; this module only adds what should give *no* words:

* digital silence and room tone (quiet pink noise with mains hum),
* white and pink noise at conversational loudness,
* tones and beeps, music-like chords with harmonics and envelopes,
* applause-like bursts (hundreds of short decaying noise claps),
* speech-like sound with no words in it: each speech clip played backwards, and a crowd's
  babble of several voices backwards,
* each speech clip followed (and preceded) by one of the noises above (not silence), so that
  words invented in a noisy tail show up as insertions against the reference,
* each speech clip with a pause cut into it between two words a second or so after its
  speech begins, so that a short phrase stands alone between two pauses, as when a speaker
  hesitates (where the words are is for the caller to say),
* the speech clips joined into one stream, full band and through a telephone's band (300 to
  3400 Hz), where voice activity detection is least sure of itself.

``python -m benchmarks.devset DIR`` writes the set as 16 kHz mono WAV files with a manifest, to
listen to. The engines benchmark builds it in memory.
"""

from __future__ import annotations

import sys
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

RATE = 16_000
SEED = 20_261_130

Samples = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Sound:
    """A dev-set item: audio, and the words it holds ("" for none)."""

    name: str
    pcm: bytes
    reference: str

    @property
    def duration(self) -> float:
        return len(self.pcm) / (2 * RATE)

    def write_raw(self, directory: Path) -> Path:
        """The sound as a raw PCM file in ``directory``, for an engine's batch recognition."""
        path = directory / f"{self.name}.raw"
        path.write_bytes(self.pcm)
        return path


def _dbfs(signal: Samples) -> float:
    rms = float(np.sqrt(np.mean(np.square(signal))))
    return 20 * float(np.log10(rms)) if rms else -120.0


def _at_dbfs(signal: Samples, dbfs: float) -> Samples:
    scaled: Samples = signal * 10 ** ((dbfs - _dbfs(signal)) / 20)
    return scaled


def _pink(rng: np.random.Generator, seconds: float) -> Samples:
    """1/f noise: white noise shaped in the frequency domain."""
    count = int(seconds * RATE)
    spectrum = np.fft.rfft(rng.normal(size=count))
    frequencies = np.fft.rfftfreq(count, 1 / RATE)
    spectrum[1:] /= np.sqrt(frequencies[1:])
    spectrum[0] = 0
    pink: Samples = np.fft.irfft(spectrum, n=count)
    return pink


def silence(rng: np.random.Generator, seconds: float) -> Samples:
    return np.zeros(int(seconds * RATE))


def room_tone(rng: np.random.Generator, seconds: float) -> Samples:
    t = np.arange(int(seconds * RATE)) / RATE
    hum = 0.3 * np.sin(2 * np.pi * 50 * t) + 0.1 * np.sin(2 * np.pi * 150 * t)
    return _at_dbfs(_pink(rng, seconds), -58) + _at_dbfs(hum, -62)


def white_noise(rng: np.random.Generator, seconds: float) -> Samples:
    return _at_dbfs(rng.normal(size=int(seconds * RATE)), -30)


def pink_noise(rng: np.random.Generator, seconds: float) -> Samples:
    return _at_dbfs(_pink(rng, seconds), -26)


def beeps(rng: np.random.Generator, seconds: float) -> Samples:
    """Beeps of random pitch and length with gaps, like a phone or a test signal."""
    out = np.zeros(int(seconds * RATE))
    position = 0
    while position < len(out):
        length = int(rng.uniform(0.15, 0.8) * RATE)
        t = np.arange(min(length, len(out) - position)) / RATE
        pitch = rng.choice([440.0, 660.0, 880.0, 1000.0, 1400.0])
        out[position : position + len(t)] = np.sin(2 * np.pi * pitch * t)
        position += len(t) + int(rng.uniform(0.1, 0.6) * RATE)
    return _at_dbfs(out, -22)


def chords(rng: np.random.Generator, seconds: float) -> Samples:
    """Music-like: triads with harmonics, plucked envelopes, a bass note and a little vibrato."""
    out = np.zeros(int(seconds * RATE))
    beat = int(0.5 * RATE)
    roots = [220.0, 246.9, 261.6, 293.7, 329.6, 196.0]
    for start in range(0, len(out), beat):
        t = np.arange(min(beat * 2, len(out) - start)) / RATE
        root = roots[int(rng.integers(len(roots)))]
        envelope = np.exp(-3.0 * t)
        note = np.zeros(len(t))
        for ratio in (1.0, 1.26, 1.5, 0.5):
            for harmonic, weight in ((1, 1.0), (2, 0.4), (3, 0.2)):
                vibrato = 1 + 0.003 * np.sin(2 * np.pi * 5 * t)
                note += weight * np.sin(2 * np.pi * root * ratio * harmonic * vibrato * t)
        out[start : start + len(t)] += envelope * note
    return _at_dbfs(out, -22)


def applause(rng: np.random.Generator, seconds: float) -> Samples:
    """Hundreds of claps: short, decaying, band-limited noise bursts at random times."""
    out = np.zeros(int(seconds * RATE))
    clap = int(0.03 * RATE)
    decay = np.exp(-np.arange(clap) / (0.006 * RATE))
    for _ in range(int(40 * seconds)):
        at = int(rng.integers(0, len(out) - clap))
        burst = np.diff(rng.normal(size=clap + 1)) * decay * rng.uniform(0.3, 1.0)
        out[at : at + clap] += burst
    return _at_dbfs(out, -24)


NON_SPEECH: dict[str, Callable[[np.random.Generator, float], Samples]] = {
    "silence": silence,
    "room-tone": room_tone,
    "white-noise": white_noise,
    "pink-noise": pink_noise,
    "beeps": beeps,
    "chords": chords,
    "applause": applause,
}
"""Every kind of non-speech in the set, by name."""


def _pcm(samples: Samples) -> bytes:
    clipped = np.clip(samples, -1.0, 32767 / 32768)
    return (clipped * 32768).astype("<i2").tobytes()


def _speech_samples(pcm: bytes) -> Samples:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768


def non_speech(seconds: float = 6.0) -> list[Sound]:
    """One clip of each kind of non-speech, ``seconds`` long."""
    return [
        Sound(name, _pcm(make(np.random.default_rng([SEED, index]), seconds)), "")
        for index, (name, make) in enumerate(NON_SPEECH.items())
    ]


def noisy_tails(speech: list[Sound], tail_seconds: float = 3.0) -> list[Sound]:
    """Each speech clip with non-speech before (1 s) and after it, cycling through the kinds.

    The noise runs under the speech too, 20 dB below it, as a room's would.
    """
    kinds = [name for name in NON_SPEECH if name != "silence"]
    sounds = []
    for index, clip in enumerate(speech):
        kind = kinds[index % len(kinds)]
        rng = np.random.default_rng([SEED, 1000 + index])
        voice = _speech_samples(clip.pcm)
        head, tail = int(1.0 * RATE), int(tail_seconds * RATE)
        total = head + len(voice) + tail
        bed = NON_SPEECH[kind](rng, total / RATE)[:total]
        voice_rms = float(np.sqrt(np.mean(np.square(voice)))) or 1.0
        bed_rms = float(np.sqrt(np.mean(np.square(bed)))) or 1.0
        under = bed * min(1.0, (voice_rms / 10) / bed_rms)
        mixed = under.copy()
        mixed[:head] = bed[:head]
        mixed[head + len(voice) :] = bed[head + len(voice) :]
        mixed[head : head + len(voice)] += voice
        sounds.append(Sound(f"{clip.name}+{kind}", _pcm(mixed), clip.reference))
    return sounds


BABBLE_TALKERS = (2, 3, 4, 6)
"""How many voices each babble clip mixes: two or three can still be told apart, six are a crowd."""


def speech_like(speech: list[Sound], seconds: float = 8.0) -> list[Sound]:
    """Sound as close to speech as sound without words gets: voices played backwards.

    Each clip backwards (one voice: every sound of speech, no word of English), and a crowd's
    babble: :data:`BABBLE_TALKERS` clips backwards, each looped from a random point, at equal
    loudness. A voice activity detector calls both speech, so only the recogniser's own
    evidence keeps it from reading sentences into them.
    """
    voices = [_speech_samples(clip.pcm)[::-1] for clip in speech]
    sounds = [
        Sound(f"{clip.name}+reversed", _pcm(voice), "")
        for clip, voice in zip(speech, voices, strict=True)
    ]
    rng = np.random.default_rng([SEED, 2000])
    count = int(seconds * RATE)
    for talkers in BABBLE_TALKERS:
        crowd = _crowd(rng, voices, talkers, count)
        sounds.append(Sound(f"babble-{talkers}", _pcm(_at_dbfs(crowd, -26)), ""))
    return sounds


def _crowd(rng: np.random.Generator, voices: list[Samples], talkers: int, count: int) -> Samples:
    """``talkers`` of ``voices`` at equal loudness, each looped from a random point."""
    crowd = np.zeros(count)
    for index in rng.choice(len(voices), talkers, replace=False):
        looped = np.resize(voices[index], count)
        crowd += _at_dbfs(np.roll(looped, int(rng.integers(count))), -26)
    return crowd


def under_babble(speech: list[Sound], below_db: float = 5.0, talkers: int = 4) -> list[Sound]:
    """Each speech clip under the babble of ``talkers`` others played backwards, ``below_db``
    quieter: real speech the recogniser should hear where :func:`speech_like` is only sound."""
    rng = np.random.default_rng([SEED, 3000])
    sounds = []
    backwards = [_speech_samples(clip.pcm)[::-1] for clip in speech]
    for index, clip in enumerate(speech):
        voice = _speech_samples(clip.pcm)
        others = backwards[:index] + backwards[index + 1 :]
        crowd = _at_dbfs(_crowd(rng, others, talkers, len(voice)), _dbfs(voice) - below_db)
        name = f"{clip.name}+babble-{below_db:g}dB"
        sounds.append(Sound(name, _pcm(voice + crowd), clip.reference))
    return sounds


SNAP_SECONDS = 0.15
"""How far from a given cut :func:`phrase_alone` looks for the quietest point: word times
from a decoder are rough, and a pause cut into a word makes it two."""


def phrase_alone(speech: list[Sound], cuts: list[float], pause_seconds: float = 0.8) -> list[Sound]:
    """Each clip with ``pause_seconds`` of silence cut into it near its ``cuts`` (seconds; a
    boundary between two words, a second or so in), at the quietest 10 ms within
    :data:`SNAP_SECONDS`: its first words stand alone between two pauses, as in "And so, my
    fellow Americans: ask not, what your country can do for you", where a decoder hearing
    "ask not" alone may doubt it all."""
    sounds = []
    frame = RATE // 100
    for sound, cut in zip(speech, cuts, strict=True):
        voice = _speech_samples(sound.pcm)
        first = max(0, round((cut - SNAP_SECONDS) * RATE))
        near = voice[first : round((cut + SNAP_SECONDS) * RATE)]
        energy = np.square(near[: len(near) // frame * frame]).reshape(-1, frame).sum(axis=1)
        at = first + int(np.argmin(energy)) * frame + frame // 2
        paused = np.concatenate((voice[:at], np.zeros(round(pause_seconds * RATE)), voice[at:]))
        sounds.append(Sound(f"{sound.name}+pause", _pcm(paused), sound.reference))
    return sounds


def joined(speech: list[Sound]) -> Sound:
    """The clips one after another, as one stream: pauses between sentences are short."""
    return Sound(
        "speech-joined",
        b"".join(sound.pcm for sound in speech),
        " ".join(sound.reference for sound in speech),
    )


TELEPHONE_BAND_HZ = (300.0, 3400.0)
"""What a telephone line passes (ITU-T G.712); 8 kHz audio resampled for the engine has no more."""


def telephone(sound: Sound) -> Sound:
    """``sound`` through a telephone's band: all outside :data:`TELEPHONE_BAND_HZ` removed."""
    voice = _speech_samples(sound.pcm)
    spectrum = np.fft.rfft(voice)
    frequencies = np.fft.rfftfreq(len(voice), 1 / RATE)
    low, high = TELEPHONE_BAND_HZ
    spectrum[(frequencies < low) | (frequencies > high)] = 0
    return Sound(
        f"{sound.name}+telephone", _pcm(np.fft.irfft(spectrum, n=len(voice))), sound.reference
    )


def write(sounds: list[Sound], directory: Path) -> None:
    """Write ``sounds`` as WAV files with a ``manifest.tsv`` of names and references."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["filename\tduration_s\treference"]
    for sound in sounds:
        name = f"{sound.name}.wav"
        with wave.open(str(directory / name), "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(RATE)
            writer.writeframes(sound.pcm)
        lines.append(f"{name}\t{sound.duration:.3f}\t{sound.reference}")
    (directory / "manifest.tsv").write_text("\n".join(lines) + "\n")


def main() -> None:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "bench-results/devset")
    write(non_speech(), target)
    print(f"written to {target}")


if __name__ == "__main__":
    main()
