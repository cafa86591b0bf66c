"""Where speech starts and stops in a live stream, from Silero VAD's frame probabilities.

Whisper has no notion of "nothing was said": given room tone, music or applause it writes the
sentences it saw most in training ("Thank you for watching"). The real-time Whisper stream
therefore decodes only audio this detector calls speech, and cuts utterances at the pauses it
finds, so each decode covers whole phrases rather than fragments.

:class:`SpeechDetector` is sans I/O: it takes samples and a probability function, and keeps
the hysteresis that turns per-frame probabilities into utterances. :class:`SileroFrames` is that
function for the Silero model faster-whisper ships, carried across calls so a stream fed in
100 ms chunks gets the probabilities the whole file would (the model is recurrent).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from speechmatics_modes.local._engine import ENGINE_SAMPLE_RATE

__all__ = [
    "FRAME_SAMPLES",
    "FRAME_SECONDS",
    "MIN_SPEECH_SECONDS",
    "SileroFrames",
    "SpeechDetector",
    "Utterance",
]

Audio = npt.NDArray[np.float32]
FrameProbabilities = Callable[[Audio], npt.NDArray[np.float32]]
"""Speech probability of each :data:`FRAME_SAMPLES` frame of the samples given (in order)."""

FRAME_SAMPLES = 512
"""Silero VAD's frame at 16 kHz."""
FRAME_SECONDS = FRAME_SAMPLES / ENGINE_SAMPLE_RATE

SPEECH_THRESHOLD = 0.3
"""A frame this likely to be speech starts (or continues) an utterance.

Below Silero's own default (0.5), which is set for full-band audio. Through a telephone's band
(300-3400 Hz) Silero scores speech 0.3-0.8 and often under 0.5 for a second at a time, and with
0.5 a quarter of the speech was taken for pauses: utterances were cut mid-phrase and the words
of their soft starts never decoded (real-time WER 0.158 against batch 0.057 on the clips as one
stream). Non-speech stays below: 99 % of the dev set's noise, tone, music and applause frames
score under 0.2, full band or telephone band (one chord frame in 20 s reaches 0.65, above
either threshold), and the words of a decode must still pass Whisper's own checks.
"""
SILENCE_THRESHOLD = 0.15
"""A frame less likely than this counts towards a pause; between the two thresholds a frame
continues speech only straight after a speech frame (Silero's own gap: 0.15 below)."""
MIN_SPEECH_SECONDS = 0.25
"""An utterance with fewer speech frames than this is a click or a cough, not decoded."""
QUIET_DB = 25.0
"""A speech frame this far below the utterance's loudest :data:`SUSTAIN_FRAMES` is *quiet*.

Silero often calls the breath or echo after a phrase speech (0.6-0.9 for 0.45 s after
"strange" in a LibriSpeech clip, 40 dB below the phrase's loudest frame), which held the
utterance open, and EndOfUtterance with it, until the breath ended. A quiet stretch is only
a hint of a pause: the stream decodes there early and ends the utterance only if Whisper heard
the last word end a whole pause before (:attr:`SpeechDetector.quiet_seconds`). In noisy audio
the noise floor lies within this of the speech, so nothing is quiet and Silero alone decides.
"""
SUSTAIN_FRAMES = 3
"""An utterance's level is the loudest it held for this many frames (96 ms, a short vowel): a
click or a knock 40 dB above soft speech made the speech after it seem quiet, and lost."""

_CONTEXT_SAMPLES = 64


class SileroFrames:
    """Silero VAD over a stream, its recurrent state carried from one call to the next.

    faster-whisper's ``SileroVADModel`` starts from a blank state on every call; for a stream
    fed in small chunks that gave a different speech/non-speech answer than the whole file on
    8 % of frames. Running its ONNX session with the state kept agrees with the whole file on
    every frame.
    """

    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model

        # The one reach into faster-whisper's internals: its loaded ONNX session. A test of
        # this module fails the day it moves.
        self._session = get_vad_model().session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._previous = np.zeros(_CONTEXT_SAMPLES, dtype=np.float32)

    def __call__(self, audio: Audio) -> npt.NDArray[np.float32]:
        """Probabilities of whole frames of ``audio`` (its length a multiple of the frame)."""
        frames = audio.reshape(-1, FRAME_SAMPLES)
        if not len(frames):
            return np.zeros(0, dtype=np.float32)
        context = np.concatenate((self._previous[None], frames[:-1, -_CONTEXT_SAMPLES:]))
        self._previous = frames[-1, -_CONTEXT_SAMPLES:].copy()
        batch = np.concatenate((context, frames), axis=1)
        output, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        probabilities: npt.NDArray[np.float32] = np.asarray(output, dtype=np.float32).reshape(-1)
        return probabilities

    def fork(self) -> SileroFrames:
        """A copy that goes on from this one's state, sharing the model.

        A call replaces the state's arrays and never changes them, so a shallow copy is
        independent.
        """
        return copy.copy(self)


@dataclass(frozen=True, slots=True)
class Utterance:
    """Speech between two pauses, in seconds of the stream."""

    start: float
    """Start of the first speech frame."""
    end: float
    """End of the last speech frame."""


@dataclass
class SpeechDetector:
    """Turns frame probabilities into utterances: speech, then a pause of ``pause`` seconds.

    Args:
        probabilities: The frame classifier (:class:`SileroFrames`, or a fake in tests).
        pause: Seconds of non-speech that end an utterance.
    """

    probabilities: FrameProbabilities
    pause: float
    frames: int = 0
    """Frames classified so far."""
    speech_frames: list[bool] = field(default_factory=list)
    """Per frame since :attr:`kept_from`: was it speech?"""
    kept_from: int = 0
    """Index of the first frame still in :attr:`speech_frames`."""
    _pending: Audio = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    _start: int | None = None
    _last_speech: int = -2
    _last_loud: int = -2
    _speech_count: int = 0
    _peak: float = -np.inf
    """Level (dB) the open utterance held for :data:`SUSTAIN_FRAMES` at its loudest, or the
    one before it did if this one went straight on from it (closed in a quiet stretch, or by
    a flush)."""
    _recent: deque[float] = field(default_factory=lambda: deque(maxlen=SUSTAIN_FRAMES))
    """Levels (dB) of the last few frames."""
    _carried: bool = False
    """Whether the open utterance went straight on from the one before: its speech counts
    only where it is not quiet, so a breath after a closed phrase is not decoded as words."""

    @property
    def utterance_start(self) -> float | None:
        """When the open utterance began, if one is open."""
        return None if self._start is None else self._start * FRAME_SECONDS

    @property
    def speech_seconds(self) -> float:
        """Seconds of speech frames in the open utterance (0 if none is open)."""
        return 0.0 if self._start is None else self._speech_count * FRAME_SECONDS

    @property
    def silence_seconds(self) -> float:
        """Seconds of non-speech since the open utterance's last speech frame (0 if none)."""
        if self._start is None:
            return 0.0
        return (self.frames - 1 - self._last_speech) * FRAME_SECONDS

    @property
    def quiet_seconds(self) -> float:
        """Seconds since the open utterance's last speech frame that was not quiet (0 if none).

        At least :attr:`silence_seconds`; longer where Silero calls a quiet stretch speech.
        """
        if self._start is None:
            return 0.0
        return (self.frames - 1 - max(self._last_loud, self._start - 1)) * FRAME_SECONDS

    def push(self, audio: Audio) -> list[Utterance]:
        """Classify ``audio`` (any length); return the utterances a pause closed within it."""
        samples = np.concatenate((self._pending, audio))
        whole = len(samples) - len(samples) % FRAME_SAMPLES
        self._pending = samples[whole:]
        frames = samples[:whole].reshape(-1, FRAME_SAMPLES)
        levels = 10 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-12)
        ended: list[Utterance] = []
        for probability, level in zip(self.probabilities(samples[:whole]), levels, strict=True):
            utterance = self._frame(float(probability), float(level))
            if utterance is not None:
                ended.append(utterance)
        return ended

    def close(self) -> Utterance | None:
        """End the open utterance now (a flush), if it holds enough speech."""
        start = self._start
        self._start = None
        if start is None or self._speech_count * FRAME_SECONDS < MIN_SPEECH_SECONDS:
            return None
        return Utterance(start * FRAME_SECONDS, (self._last_speech + 1) * FRAME_SECONDS)

    def fork(self) -> SpeechDetector:
        """A copy to hear audio ahead with, leaving this detector as it is.

        The real-time stream hears, with a fork, the audio that arrives while it decodes
        (:meth:`~speechmatics_modes.local._whisper_stream.WhisperStream.arriving`), to see a
        pause begin before it has the audio itself. A probability function with a ``fork()``
        (:class:`SileroFrames`, which is recurrent) is forked with it; one without is taken
        to keep no state. The fork keeps no record of which frames were speech.
        """
        fork: Callable[[], FrameProbabilities] | None = getattr(self.probabilities, "fork", None)
        return replace(
            self,
            probabilities=self.probabilities if fork is None else fork(),
            speech_frames=[],
            kept_from=self.frames,
            _recent=deque(self._recent, maxlen=SUSTAIN_FRAMES),
        )

    def had_speech(self, start: float, end: float) -> bool:
        """Whether any frame overlapping ``start``..``end`` (seconds) was speech."""
        first = max(int(start / FRAME_SECONDS), self.kept_from)
        last = min(int(np.ceil(end / FRAME_SECONDS)), self.frames)
        return any(self.speech_frames[first - self.kept_from : last - self.kept_from])

    def forget_before(self, seconds: float) -> None:
        """Drop the per-frame record before ``seconds``: memory stays bounded."""
        first = min(int(seconds / FRAME_SECONDS), self.frames)
        if first > self.kept_from:
            del self.speech_frames[: first - self.kept_from]
            self.kept_from = first

    def _frame(self, probability: float, level: float) -> Utterance | None:
        index = self.frames
        self.frames += 1
        speech = probability >= SPEECH_THRESHOLD or (
            self._start is not None
            and probability >= SILENCE_THRESHOLD
            and index - self._last_speech <= 1
        )
        self.speech_frames.append(speech)
        self._recent.append(level)
        if speech:
            sustained = min(self._recent)
            if self._start is None:
                self._start, self._speech_count = index, 0
                self._carried = index == self._last_speech + 1
                if not self._carried:
                    self._peak = sustained
            self._peak = max(self._peak, sustained)
            loud = level >= self._peak - QUIET_DB
            if loud:
                self._last_loud = index
            self._last_speech = index
            if loud or not self._carried:
                self._speech_count += 1
            return None
        if self._start is None or (index - self._last_speech) * FRAME_SECONDS < self.pause:
            return None
        return self.close()
