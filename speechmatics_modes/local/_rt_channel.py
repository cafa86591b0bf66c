"""One audio channel of a local real-time session: its decoder, its sentences, its last words.

An ordinary session has one channel, with no label; a multichannel session (``diarization:
"channel"``, audio in ``AddChannelAudio``) has one per label, each decoded and recognised on
its own, and every message it produces names its channel, as the service's do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from speechmatics_modes.local._audio import FileStreamConverter, StreamConverter
from speechmatics_modes.local._engine import ENGINE_SAMPLE_RATE, EngineWord, StreamUpdate
from speechmatics_modes.local._results import Sentencer, transcript_message

__all__ = ["ChannelTrack"]

_BYTES_PER_SECOND = ENGINE_SAMPLE_RATE * 2
_SAMPLE_SECONDS = 1 / ENGINE_SAMPLE_RATE


@dataclass
class ChannelTrack:
    """What one channel has received and said; the session decides when it speaks."""

    label: str | None
    """The channel's name in a multichannel session; ``None`` in an ordinary one."""
    converter: StreamConverter | FileStreamConverter
    sentencer: Sentencer
    seq_no: int = 0
    """Audio messages read on this channel (the last ``AudioAdded``/``ChannelAudioAdded``)."""
    ended: bool = False
    """EndOfChannel (or EndOfStream) arrived: later audio is ignored with a warning."""
    engine_bytes: int = 0
    last_partial: tuple[EngineWord, ...] = ()
    speech_since_eou: bool = False
    utterance_closed: bool = False
    """The engine closed an utterance with speech in it; EndOfUtterance is due once the
    trigger's worth of audio has followed its last word."""
    last_final_end: float = 0.0

    @property
    def seconds(self) -> float:
        """Seconds of this channel's audio decoded for the engine so far."""
        return self.engine_bytes / _BYTES_PER_SECOND

    def decode(self, data: bytes) -> bytes:
        """Engine PCM for an audio message (may be empty while a header arrives).

        Raises:
            AudioDecodeError: The audio is not what ``audio_format`` said, or damaged.
        """
        pcm = self.converter.convert(data)
        self.engine_bytes += len(pcm)
        return pcm

    def tail(self) -> bytes:
        """The decoder's last PCM, once the channel has ended.

        This may wait for a compressed stream's decoder to catch up, so the server calls it
        in a worker thread; it touches only the decoder and the byte count.

        Raises:
            AudioDecodeError: The stream ended inside a header, or is damaged.
        """
        tail = self.converter.finish()
        self.engine_bytes += len(tail)
        return tail

    def close(self) -> None:
        """Release the decoder (a thread, for compressed files)."""
        if isinstance(self.converter, FileStreamConverter):
            self.converter.close()

    def finals(self, update: StreamUpdate, *, forced: bool) -> dict[str, Any] | None:
        """The ``AddTranscript`` for words the engine made final, if there is anything to say.

        An utterance's end closes its sentence as a pause does in batch
        (:meth:`~speechmatics_modes.local._results.Sentencer.end_sentence`).
        """
        finals = _after(update.finals, self.last_final_end)
        results = self.sentencer.words(finals)
        if finals:
            self.speech_since_eou = True
            self.last_final_end = finals[-1].end
        if update.utterance_ended or forced:
            results += self.sentencer.end_sentence(self.last_final_end)
        if not results and not forced:
            return None
        start = results[0]["start_time"] if results else self.last_final_end
        end = results[-1]["end_time"] if results else self.engine_bytes / _BYTES_PER_SECOND
        message = transcript_message("AddTranscript", results, start=start, end=end, forced=forced)
        return self._tagged(message)

    def partial(self, words: tuple[EngineWord, ...]) -> dict[str, Any]:
        """The ``AddPartialTranscript`` for the current hypothesis."""
        self.last_partial = words
        results = self.sentencer.preview(words)
        start = words[0].start if words else self.last_final_end
        end = words[-1].end if words else self.last_final_end
        message = transcript_message("AddPartialTranscript", results, start=start, end=end)
        return self._tagged(message)

    def end_of_utterance_due(self, update: StreamUpdate, trigger: float) -> bool:
        """Whether EndOfUtterance is due after ``update`` (not forced), for a ``trigger``.

        The trigger counts *audio* time after the last word: engines close utterances at their
        own pause length, which may be shorter than the trigger, and wall time depends on how
        fast the client sends. A partial means the speaker went on: nothing is due.
        """
        if update.partial:
            self.utterance_closed = False
        elif update.utterance_ended and self.speech_since_eou:
            self.utterance_closed = True
        silence = self.seconds - self.last_final_end
        return self.utterance_closed and trigger > 0 and silence >= trigger - _SAMPLE_SECONDS

    def end_of_utterance(self, *, forced: bool) -> dict[str, Any]:
        """``EndOfUtterance`` at the end of the last final word."""
        self.speech_since_eou = self.utterance_closed = False
        moment = round(self.last_final_end, 3)
        message: dict[str, Any] = {
            "message": "EndOfUtterance",
            "metadata": {"start_time": moment, "end_time": moment},
        }
        if forced:
            message["forced"] = True
        return self._tagged(message)

    def acknowledgement(self) -> dict[str, Any]:
        """The answer to one audio message."""
        if self.label is None:
            return {"message": "AudioAdded", "seq_no": self.seq_no}
        return {"message": "ChannelAudioAdded", "channel": self.label, "seq_no": self.seq_no}

    def _tagged(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.label is not None:
            message["channel"] = self.label
        return message


def _after(words: Sequence[EngineWord], end: float) -> list[EngineWord]:
    """``words``, none starting before ``end`` or before the word ahead of it.

    Output up to a final's ``end_time`` is final, whatever an engine's word times say.
    """
    shaped = []
    for word in words:
        if word.start < end:
            word = EngineWord(word.text, end, max(end, word.end), word.confidence, word.punctuation)
        shaped.append(word)
        end = word.end
    return shaped
