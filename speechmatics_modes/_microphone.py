"""Live audio from a PortAudio input device, as an async iterator of PCM chunks.

:class:`Microphone` is the audio source for real-time transcription of a live speaker. It wraps
PyAudio (the optional ``mic`` extra), imported only when a microphone is opened, so the rest of
the library works where PortAudio is not installed.

Decisions a reader would otherwise have to rediscover:

* **Capture never waits for the event loop.** PyAudio's callback mode runs our callback on
  PortAudio's own thread; the callback only hands the chunk to the loop with
  ``loop.call_soon_threadsafe`` and returns. Blocking reads on the loop would stall every other
  task, and blocking in the callback would make PortAudio overrun and lose audio anyway.
* **A slow consumer loses the oldest audio, not the newest.** Chunks wait in a buffer bounded by
  ``max_buffered_seconds``. When a consumer stalls (a slow network, a blocked task) and the buffer
  is full, the oldest chunk is dropped to make room and counted in
  :attr:`Microphone.dropped_seconds`. Memory stays bounded however long the stall, and when the
  consumer recovers it gets the most recent speech, which is what a live transcript is about.
  Overruns that PortAudio itself reports (its input overflow flag) are counted in
  :attr:`Microphone.input_overflows`.
* **Opening runs in a worker thread; closing does not.** Initialising PortAudio probes every host
  API (ALSA, JACK, ...) and can take a noticeable fraction of a second, so it leaves the loop.
  Closing aborts the stream rather than draining it, which takes milliseconds, and is done in
  place so that it completes even when the closing task is being cancelled.
* **Chunks are mono, 16-bit little-endian**, whatever ``channels`` the device is opened with:
  the real-time API takes one channel, and some devices only capture in stereo. PortAudio
  delivers native-endian samples, which is little-endian on every platform it commonly runs on.
"""

from __future__ import annotations

import asyncio
import logging
from array import array
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol

import anyio
from pydantic import ValidationError
from typing_extensions import Self

from speechmatics_modes._config import AudioFormat
from speechmatics_modes._exceptions import AudioSourceError, ConfigurationError

__all__ = ["InputDevice", "Microphone", "list_input_devices"]

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    'install it with `pip install "speechmatics-modes[mic]"`; building PyAudio needs the '
    "PortAudio headers (Debian/Ubuntu: `apt-get install portaudio19-dev`, "
    "macOS: `brew install portaudio`)"
)
"""How to get PyAudio, quoted in the error raised when it is missing."""

_BYTES_PER_SAMPLE = 2


@dataclass(frozen=True, slots=True)
class InputDevice:
    """A PortAudio device that can record, as offered to ``Microphone(device=...)``."""

    index: int
    """PortAudio's device index; valid until devices are plugged in or out."""
    name: str
    """The device's name as PortAudio reports it; stabler than the index across runs."""
    max_input_channels: int
    """How many channels the device can capture at most."""
    default_sample_rate: float
    """The rate the device prefers; other rates may be resampled by the host API."""
    is_default: bool
    """Whether this is the system's default input, used when no device is given."""


class _Stream(Protocol):
    """The part of ``pyaudio.PyAudio.Stream`` we use."""

    def close(self) -> None: ...


class _PortAudio(Protocol):
    """The part of ``pyaudio.PyAudio`` we use."""

    def get_device_count(self) -> int: ...

    def get_device_info_by_index(self, index: int) -> Mapping[str, Any]: ...

    def get_default_input_device_info(self) -> Mapping[str, Any]: ...

    def open(self, **kwargs: Any) -> _Stream: ...

    def terminate(self) -> None: ...


_StreamCallback = Callable[[bytes, int, Mapping[str, float], int], tuple[None, int]]
"""PyAudio's callback signature: (data, frame count, time info, status flags) -> (None, flag)."""


@dataclass(frozen=True, slots=True)
class _PyAudioApi:
    """The PyAudio entry point and constants, gathered once by :func:`_import_pyaudio`."""

    open_portaudio: Callable[[], _PortAudio]
    int16_format: int
    continue_flag: int
    abort_flag: int
    input_overflow_flag: int


def _import_pyaudio() -> _PyAudioApi:
    """Import PyAudio on first use, so that only microphone users need PortAudio installed."""
    try:
        import pyaudio
    except ImportError as exc:
        raise AudioSourceError(f"the microphone needs the PyAudio package: {INSTALL_HINT}") from exc
    return _PyAudioApi(
        open_portaudio=pyaudio.PyAudio,
        int16_format=pyaudio.paInt16,
        continue_flag=pyaudio.paContinue,
        abort_flag=pyaudio.paAbort,
        input_overflow_flag=pyaudio.paInputOverflow,
    )


def list_input_devices() -> list[InputDevice]:
    """Return every device PortAudio can record from, e.g. for a ``--device`` option.

    Raises:
        AudioSourceError: PyAudio is not installed.
    """
    portaudio = _import_pyaudio().open_portaudio()
    try:
        return _input_devices(portaudio)
    finally:
        portaudio.terminate()


def _input_devices(portaudio: _PortAudio) -> list[InputDevice]:
    default_index = _default_input_index(portaudio)
    devices = (portaudio.get_device_info_by_index(i) for i in range(portaudio.get_device_count()))
    return [
        InputDevice(
            index=int(info["index"]),
            name=str(info["name"]),
            max_input_channels=int(info["maxInputChannels"]),
            default_sample_rate=float(info["defaultSampleRate"]),
            is_default=int(info["index"]) == default_index,
        )
        for info in devices
        if int(info["maxInputChannels"]) > 0
    ]


def _default_input_index(portaudio: _PortAudio) -> int | None:
    try:
        return int(portaudio.get_default_input_device_info()["index"])
    except OSError:  # PyAudio's way of saying "there is no default input device"
        return None


def _resolve_device(portaudio: _PortAudio, device: int | str | None) -> InputDevice:
    """Find the requested input device: an index, an exact name, or a unique part of a name."""
    devices = _input_devices(portaudio)
    if device is None:
        found = [d for d in devices if d.is_default]
    elif isinstance(device, int):
        found = [d for d in devices if d.index == device]
    else:
        found = [d for d in devices if d.name == device] or [
            d for d in devices if device.casefold() in d.name.casefold()
        ]
    if len(found) != 1:
        wanted = "the default input device" if device is None else f"input device {device!r}"
        problem = "matches several devices" if found else "was not found"
        raise AudioSourceError(f"{wanted} {problem}; available input devices: {_describe(devices)}")
    return found[0]


def _describe(devices: list[InputDevice]) -> str:
    if not devices:
        return "none (PortAudio found no device that can record)"
    return ", ".join(f"{d.index}: {d.name!r}" for d in devices)


def _chunk_format(sample_rate: int, chunk_ms: int) -> AudioFormat:
    """The real-time format of chunks of ``chunk_ms``, refusing what the API cannot take."""
    if (sample_rate * chunk_ms) % 1000:
        raise ConfigurationError(
            f"chunk_ms={chunk_ms} is not a whole number of samples at {sample_rate} Hz"
        )
    frames = sample_rate * chunk_ms // 1000
    try:
        return AudioFormat(
            encoding="pcm_s16le", sample_rate=sample_rate, chunk_size=frames * _BYTES_PER_SAMPLE
        )
    except ValidationError as exc:
        raise ConfigurationError(
            f"sample_rate={sample_rate} with chunk_ms={chunk_ms} is not a real-time audio "
            f"format: {exc.errors()[0]['msg']}"
        ) from exc


def _mix_to_mono(data: bytes, channels: int) -> bytes:
    """Average interleaved 16-bit frames into one channel."""
    samples = array("h", data)
    per_channel = [samples[channel::channels] for channel in range(channels)]
    return array(
        "h", [sum(frame) // channels for frame in zip(*per_channel, strict=True)]
    ).tobytes()


class Microphone:
    """Live audio from an input device: an async iterator of mono s16le chunks of ``chunk_ms``.

    Use it as an async context manager, which opens the device on entry and always closes it
    (and releases PortAudio) on exit, also when the task is cancelled::

        async with Microphone() as mic:
            async for chunk in mic:
                ...

    Iterating without ``async with`` opens the device on first use and closes it when the
    iteration fails or is cancelled; after a ``break``, call :meth:`aclose` (or wrap the
    microphone in :func:`contextlib.aclosing`). Closing from another task ends the iteration.

    Capture does not wait for the consumer. Up to ``max_buffered_seconds`` of audio waits for
    a consumer that falls behind; beyond that the oldest chunks are dropped and counted in
    :attr:`dropped_seconds` (and a warning is logged once per stall), so memory stays bounded
    and PortAudio's thread is never blocked. A microphone is opened once; create a new one to
    record again.

    Args:
        sample_rate: Samples per second to capture; PortAudio or the host API resamples when
            the device runs at another rate.
        chunk_ms: Milliseconds of audio per chunk. Smaller chunks cut latency, larger ones cut
            per-message overhead; it must give a whole number of samples.
        device: Input device index, name, or a unique part of its name; ``None`` for the
            system's default input. See :func:`list_input_devices`.
        channels: Channels to open the device with; they are mixed down to mono.
        max_buffered_seconds: Audio kept for a consumer that falls behind, after which the
            oldest is dropped (see :attr:`dropped_seconds`).

    Raises:
        ConfigurationError: The arguments cannot describe a stream the real-time API accepts.
    """

    def __init__(
        self,
        sample_rate: int = 16_000,
        chunk_ms: int = 100,
        device: int | str | None = None,
        channels: int = 1,
        max_buffered_seconds: float = 10.0,
    ) -> None:
        self._audio_format = _chunk_format(sample_rate, chunk_ms)
        if channels < 1:
            raise ConfigurationError(f"channels must be at least 1, not {channels}")
        if max_buffered_seconds * 1000 < chunk_ms:
            raise ConfigurationError(
                f"max_buffered_seconds={max_buffered_seconds} must hold at least one "
                f"chunk of {chunk_ms} ms"
            )
        self._frames_per_chunk = self._audio_format.chunk_size // _BYTES_PER_SAMPLE
        self._chunk_ms = chunk_ms
        self._device = device
        self._channels = channels
        self._buffer: deque[bytes] = deque(maxlen=int(max_buffered_seconds * 1000 // chunk_ms))
        self._state: Literal["new", "open", "closed"] = "new"
        self._closes_with_iteration = False
        self._portaudio: _PortAudio | None = None
        self._stream: _Stream | None = None
        self._chunk_arrived = asyncio.Event()
        self._dropped_chunks = 0
        self._input_overflows = 0
        self._stalled = False

    @property
    def sample_rate(self) -> int:
        """Samples per second of the chunks."""
        return self._audio_format.sample_rate

    @property
    def audio_format(self) -> AudioFormat:
        """The format to announce to the real-time API for these chunks."""
        return self._audio_format

    @property
    def dropped_seconds(self) -> float:
        """Audio discarded because the consumer fell more than ``max_buffered_seconds`` behind."""
        return self._dropped_chunks * self._chunk_ms / 1000

    @property
    def buffered_seconds(self) -> float:
        """Audio captured but not yet taken by the consumer: how far behind live it is."""
        return len(self._buffer) * self._chunk_ms / 1000

    @property
    def input_overflows(self) -> int:
        """How many chunks PortAudio flagged as following lost input (its own overrun)."""
        return self._input_overflows

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        if self._state == "new":
            self._closes_with_iteration = True
            await self._open()
        try:
            return await self._next_chunk()
        except BaseException:
            if self._closes_with_iteration:
                self._close()
            raise

    async def aclose(self) -> None:
        """Stop capturing and release the device and PortAudio; safe to call more than once."""
        self._close()

    async def _open(self) -> None:
        if self._state != "new":
            raise RuntimeError("this Microphone was already opened; create a new one")
        self._state = "open"
        api = _import_pyaudio()
        callback = self._make_callback(asyncio.get_running_loop(), api)
        try:
            await anyio.to_thread.run_sync(self._open_stream, api, callback)
        except BaseException:
            self._close()
            raise

    def _open_stream(self, api: _PyAudioApi, callback: _StreamCallback) -> None:
        """Initialise PortAudio and start the input stream (blocking: run in a worker thread)."""
        self._portaudio = api.open_portaudio()
        device = _resolve_device(self._portaudio, self._device)
        try:
            self._stream = self._portaudio.open(
                format=api.int16_format,
                channels=self._channels,
                rate=self.sample_rate,
                input=True,
                input_device_index=device.index,
                frames_per_buffer=self._frames_per_chunk,
                stream_callback=callback,
            )
        except OSError as exc:
            raise AudioSourceError(
                f"could not record from input device {device.index}: {device.name!r} at "
                f"{self.sample_rate} Hz, {self._channels} channel(s): {exc}"
            ) from exc

    def _make_callback(self, loop: asyncio.AbstractEventLoop, api: _PyAudioApi) -> _StreamCallback:
        """Build the callback PortAudio's thread calls: hand the chunk over and return at once."""

        def on_audio(
            data: bytes, frame_count: int, time_info: Mapping[str, float], status: int
        ) -> tuple[None, int]:
            overflowed = bool(status & api.input_overflow_flag)
            try:
                loop.call_soon_threadsafe(self._receive, data, overflowed)
            except RuntimeError:  # the loop is closed: nobody will ever read this audio
                return None, api.abort_flag
            return None, api.continue_flag

        return on_audio

    def _receive(self, data: bytes, overflowed: bool) -> None:
        """Buffer one chunk on the loop, dropping the oldest when the consumer is behind."""
        if self._state != "open":
            return
        if overflowed:
            self._input_overflows += 1
        if len(self._buffer) == self._buffer.maxlen:
            self._dropped_chunks += 1
            if not self._stalled:
                logger.warning(
                    "microphone consumer is more than %.1f s behind; dropping the oldest audio",
                    self.buffered_seconds,
                )
            self._stalled = True
        self._buffer.append(data)
        self._chunk_arrived.set()

    async def _next_chunk(self) -> bytes:
        while not self._buffer:
            if self._state == "closed":
                raise StopAsyncIteration
            self._chunk_arrived.clear()
            await self._chunk_arrived.wait()
        self._stalled = False
        chunk = self._buffer.popleft()
        return chunk if self._channels == 1 else _mix_to_mono(chunk, self._channels)

    def _close(self) -> None:
        self._state = "closed"
        stream, self._stream = self._stream, None
        portaudio, self._portaudio = self._portaudio, None
        if stream is not None:
            stream.close()
        if portaudio is not None:
            portaudio.terminate()
        self._buffer.clear()
        self._chunk_arrived.set()
