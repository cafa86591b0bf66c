"""Microphone: the real PortAudio path through a virtual PulseAudio microphone, and a fake.

The real tests record from a private PulseAudio null sink while ``paplay`` plays speech into it,
so PyAudio, PortAudio, ALSA and PulseAudio all run for real. What a real device cannot show on
demand (a consumer stalling for exactly N chunks, PortAudio flagging an overrun, PyAudio not
being installed, a machine without input devices) is shown with ``FakePyAudio``, a small
PyAudio-shaped stand-in installed as the ``pyaudio`` module, whose stream calls the
Microphone's callback from a worker thread as PortAudio's thread would.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import math
import os
import subprocess
import sys
import threading
import types
from array import array
from collections.abc import Iterator, Mapping
from contextlib import aclosing
from typing import Any

import anyio
import pytest

from speechmatics_modes import (
    AudioFormat,
    AudioSourceError,
    ConfigurationError,
    InputDevice,
    Microphone,
    list_input_devices,
)
from tests._virtual_mic import VirtualMicrophone, missing_tools, virtual_microphone
from tests.conftest import TEST_AUDIO

SPEECH = TEST_AUDIO / "librispeech-1988-24833-0000.wav"
"""3.3 s of LibriSpeech ("the two stray kittens gradually make themselves at home")."""

PA_INPUT_OVERFLOW = 2
PA_CONTINUE = 0
PA_ABORT = 2


# --- the fake --------------------------------------------------------------------------------


def _device(index: int, name: str, inputs: int) -> dict[str, Any]:
    return {
        "index": index,
        "name": name,
        "maxInputChannels": inputs,
        "maxOutputChannels": 2,
        "defaultSampleRate": 48000.0,
    }


class FakeStream:
    """An open input stream: records how it was opened, delivers chunks like PortAudio."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def deliver(self, chunks: list[bytes], status: int = 0) -> list[int]:
        """Call the Microphone's callback once per chunk; returns the flags it answered."""
        callback = self.options["stream_callback"]
        frames = self.options["frames_per_buffer"]
        return [callback(chunk, frames, {}, status)[1] for chunk in chunks]

    async def deliver_from_thread(self, chunks: list[bytes], status: int = 0) -> None:
        """Deliver from another thread, as PortAudio does; returns once the loop has them all.

        The callback's ``call_soon_threadsafe`` hands are queued on the loop before the worker
        thread's own completion, so by the time this returns every chunk has been received.
        """
        await anyio.to_thread.run_sync(self.deliver, chunks, status)


class FakePortAudio:
    """One ``pyaudio.PyAudio()``: devices, opened streams, whether it was terminated."""

    def __init__(self, owner: FakePyAudio) -> None:
        self.owner = owner
        self.streams: list[FakeStream] = []
        self.terminated = False
        owner.instances.append(self)

    def get_device_count(self) -> int:
        return len(self.owner.devices)

    def get_device_info_by_index(self, index: int) -> Mapping[str, Any]:
        return self.owner.devices[index]

    def get_default_input_device_info(self) -> Mapping[str, Any]:
        if self.owner.default_input is None:
            raise OSError(-9996, "No Default Input Device Available")
        return self.owner.devices[self.owner.default_input]

    def open(self, **options: Any) -> FakeStream:
        if self.owner.open_error is not None:
            raise self.owner.open_error
        stream = FakeStream(options)
        self.streams.append(stream)
        self.owner.opened.set()
        return stream

    def terminate(self) -> None:
        self.terminated = True


class FakePyAudio(types.ModuleType):
    """Stands in for the ``pyaudio`` module: its constants and its ``PyAudio`` class."""

    paInt16 = 8  # noqa: N815 - the constants keep pyaudio's names
    paContinue = PA_CONTINUE  # noqa: N815
    paAbort = PA_ABORT  # noqa: N815
    paInputOverflow = PA_INPUT_OVERFLOW  # noqa: N815

    def __init__(self) -> None:
        super().__init__("pyaudio")
        self.devices = [
            _device(0, "Built-in Speakers", inputs=0),
            _device(1, "USB Microphone", inputs=1),
            _device(2, "Webcam Microphone", inputs=2),
        ]
        self.default_input: int | None = 1
        self.open_error: OSError | None = None
        self.instances: list[FakePortAudio] = []
        self.opened = threading.Event()

    def PyAudio(self) -> FakePortAudio:  # noqa: N802 - pyaudio's name
        return FakePortAudio(self)

    @property
    def stream(self) -> FakeStream:
        """The one stream opened so far."""
        (instance,) = self.instances
        (stream,) = instance.streams
        return stream

    async def wait_for_stream(self) -> FakeStream:
        """The stream, once another task has opened it (in its worker thread)."""
        await anyio.to_thread.run_sync(self.opened.wait)
        return self.stream


@pytest.fixture
def fake_pyaudio(monkeypatch: pytest.MonkeyPatch) -> FakePyAudio:
    fake = FakePyAudio()
    monkeypatch.setitem(sys.modules, "pyaudio", fake)
    return fake


def _chunk(value: int, frames: int = 1600, channels: int = 1) -> bytes:
    return array("h", [value] * frames * channels).tobytes()


def _first_sample(chunk: bytes) -> int:
    return array("h", chunk[:2])[0]


# --- the real path ---------------------------------------------------------------------------


REQUIRE_REAL_MICROPHONE = os.environ.get("SPEECHMATICS_MODES_REQUIRE_MIC") == "1"
"""Set by CI (read at import: the autouse fixture clears SPEECHMATICS_* for each test)."""


def _cannot_record(reason: str) -> None:
    if REQUIRE_REAL_MICROPHONE:
        pytest.fail(f"{reason}, and SPEECHMATICS_MODES_REQUIRE_MIC=1 requires the real path")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def virtual_mic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualMicrophone]:
    missing = missing_tools()
    if "pulseaudio" in missing:
        _cannot_record("pulseaudio is not installed, so there is no virtual microphone to record")
    if importlib.util.find_spec("pyaudio") is None:
        _cannot_record("PyAudio is not installed (it needs PortAudio's headers to build)")
    assert not missing, f"PulseAudio is installed but not {missing} (pulseaudio-utils)"
    with (
        virtual_microphone(tmp_path_factory.mktemp("pulse")) as mic,
        pytest.MonkeyPatch.context() as patch,
    ):
        for name, value in mic.client_env.items():
            patch.setenv(name, value)
        yield mic


def _rms(chunk: bytes) -> float:
    samples = array("h", chunk)
    return math.sqrt(sum(sample * sample for sample in samples) / len(samples))


def _threads_outside_python() -> set[int]:
    """OS threads of this process that Python did not start: PortAudio's, ALSA's, libpulse's."""
    python_threads = {thread.native_id for thread in threading.enumerate()}
    return {int(task) for task in os.listdir("/proc/self/task")} - python_threads


async def _record_while_playing(mic: Microphone, player: subprocess.Popen[bytes]) -> list[bytes]:
    chunks = []
    with anyio.fail_after(60):
        while player.poll() is None:
            chunks.append(await anext(mic))
    return chunks


@pytest.mark.slow
@pytest.mark.anyio
async def test_real_microphone_hears_speech_played_into_the_virtual_sink(
    virtual_mic: VirtualMicrophone,
) -> None:
    before = _threads_outside_python()
    async with Microphone(chunk_ms=100) as mic:
        assert _threads_outside_python() - before, "PortAudio should be capturing on its thread"
        silence = [await anext(mic) for _ in range(5)]
        player = virtual_mic.play(SPEECH)
        try:
            speech = await _record_while_playing(mic, player)
        finally:
            player.wait()
    assert player.returncode == 0
    assert {len(chunk) for chunk in silence + speech} == {1600 * 2}
    silence_floor = max(_rms(chunk) for chunk in silence)
    assert silence_floor < 50
    loud_chunks = [chunk for chunk in speech if _rms(chunk) > 10 * silence_floor + 300]
    assert len(loud_chunks) >= 10, [round(_rms(chunk)) for chunk in speech]
    assert mic.dropped_seconds == 0
    assert _threads_outside_python() <= before, "closing must stop PortAudio's threads"


@pytest.mark.anyio
async def test_real_devices_are_listed_and_an_unknown_one_is_named(
    virtual_mic: VirtualMicrophone,
) -> None:
    devices = list_input_devices()
    names = {device.name for device in devices}
    assert {"pulse", "default"} <= names
    assert [device.name for device in devices if device.is_default] == ["default"]
    with pytest.raises(AudioSourceError, match=r"'no such mic' was not found.*'pulse'"):
        async with Microphone(device="no such mic"):
            pass


# --- buffering: a stalled consumer -----------------------------------------------------------


@pytest.mark.anyio
async def test_stalled_consumer_loses_the_oldest_audio_and_memory_stays_bounded(
    fake_pyaudio: FakePyAudio, caplog: pytest.LogCaptureFixture
) -> None:
    async with Microphone(chunk_ms=100, max_buffered_seconds=1.0) as mic:
        await fake_pyaudio.stream.deliver_from_thread([_chunk(i) for i in range(35)])
        assert mic.buffered_seconds == 1.0
        assert mic.dropped_seconds == pytest.approx(2.5)
        assert [_first_sample(await anext(mic)) for _ in range(10)] == list(range(25, 35))
        assert mic.buffered_seconds == 0
    stall_warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(stall_warnings) == 1
    assert "dropping the oldest audio" in stall_warnings[0].getMessage()


@pytest.mark.anyio
async def test_a_consumer_that_keeps_up_loses_nothing(fake_pyaudio: FakePyAudio) -> None:
    async with Microphone(max_buffered_seconds=0.2) as mic:
        received = []
        for batch in range(5):
            await fake_pyaudio.stream.deliver_from_thread(
                [_chunk(2 * batch), _chunk(2 * batch + 1)]
            )
            received += [_first_sample(await anext(mic)) for _ in range(2)]
    assert received == list(range(10))
    assert mic.dropped_seconds == 0


@pytest.mark.anyio
async def test_portaudio_input_overflows_are_counted(fake_pyaudio: FakePyAudio) -> None:
    async with Microphone() as mic:
        stream = fake_pyaudio.stream
        await stream.deliver_from_thread([_chunk(1)])
        await stream.deliver_from_thread([_chunk(2), _chunk(3)], status=PA_INPUT_OVERFLOW)
        assert [_first_sample(await anext(mic)) for _ in range(3)] == [1, 2, 3]
    assert mic.input_overflows == 2


# --- opening and closing ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_stream_is_opened_for_chunks_of_chunk_ms(fake_pyaudio: FakePyAudio) -> None:
    mic = Microphone(sample_rate=8000, chunk_ms=40)
    assert mic.sample_rate == 8000
    assert mic.audio_format == AudioFormat(encoding="pcm_s16le", sample_rate=8000, chunk_size=640)
    async with mic:
        options = fake_pyaudio.stream.options
    assert options["rate"] == 8000
    assert options["frames_per_buffer"] == 320
    assert options["channels"] == 1
    assert options["input"] is True
    assert options["format"] == FakePyAudio.paInt16
    assert options["input_device_index"] == 1


@pytest.mark.anyio
async def test_stereo_devices_are_mixed_down_to_mono(fake_pyaudio: FakePyAudio) -> None:
    async with Microphone(device=2, channels=2) as mic:
        stereo = array("h", [1000, 3000, -4, 0] * 800).tobytes()
        await fake_pyaudio.stream.deliver_from_thread([stereo])
        mono = await anext(mic)
    assert array("h", mono) == array("h", [2000, -2] * 800)


@pytest.mark.anyio
async def test_exiting_the_block_closes_the_stream_and_portaudio(
    fake_pyaudio: FakePyAudio,
) -> None:
    async with Microphone():
        stream = fake_pyaudio.stream
        open_inside = not stream.closed
    assert open_inside
    assert stream.closed
    assert fake_pyaudio.instances[0].terminated


@pytest.mark.anyio
async def test_cancelling_the_consumer_closes_the_stream(fake_pyaudio: FakePyAudio) -> None:
    async def consume(mic: Microphone) -> None:
        async with mic:
            async for _ in mic:
                pass

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(consume, Microphone())
        stream = await fake_pyaudio.wait_for_stream()
        await stream.deliver_from_thread([_chunk(1)])
        tasks.cancel_scope.cancel()
    assert fake_pyaudio.stream.closed
    assert fake_pyaudio.instances[0].terminated


@pytest.mark.anyio
async def test_iterating_without_a_block_opens_and_cancelling_closes(
    fake_pyaudio: FakePyAudio,
) -> None:
    received: list[int] = []

    async def consume(mic: Microphone) -> None:
        async for chunk in mic:
            received.append(_first_sample(chunk))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(consume, Microphone())
        stream = await fake_pyaudio.wait_for_stream()
        await stream.deliver_from_thread([_chunk(7)])
        await anyio.wait_all_tasks_blocked()
        tasks.cancel_scope.cancel()
    assert received == [7]
    assert fake_pyaudio.stream.closed
    assert fake_pyaudio.instances[0].terminated


@pytest.mark.anyio
async def test_a_polling_timeout_inside_the_block_keeps_the_stream_open(
    fake_pyaudio: FakePyAudio,
) -> None:
    async with Microphone() as mic:
        with anyio.move_on_after(0.01):
            await anext(mic)
        assert not fake_pyaudio.stream.closed
        await fake_pyaudio.stream.deliver_from_thread([_chunk(5)])
        assert _first_sample(await anext(mic)) == 5


@pytest.mark.anyio
async def test_closing_from_another_task_ends_the_iteration(fake_pyaudio: FakePyAudio) -> None:
    mic = Microphone()
    chunks: list[bytes] = []

    async def consume() -> None:
        async with aclosing(mic):
            async for chunk in mic:
                chunks.append(chunk)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(consume)
        stream = await fake_pyaudio.wait_for_stream()
        await stream.deliver_from_thread([_chunk(1)])
        await anyio.wait_all_tasks_blocked()
        await mic.aclose()
    assert len(chunks) == 1
    assert fake_pyaudio.stream.closed
    with pytest.raises(StopAsyncIteration):
        await anext(mic)


@pytest.mark.anyio
async def test_a_microphone_is_opened_once(fake_pyaudio: FakePyAudio) -> None:
    mic = Microphone()
    async with mic:
        pass
    with pytest.raises(RuntimeError, match="already opened"):
        async with mic:
            pass


def test_audio_arriving_after_the_loop_closed_stops_the_stream(fake_pyaudio: FakePyAudio) -> None:
    async def open_and_leave_open() -> None:
        await Microphone().__aenter__()

    asyncio.run(open_and_leave_open())
    assert fake_pyaudio.stream.deliver([_chunk(1)]) == [PA_ABORT]
    fake_pyaudio.stream.close()


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_missing_pyaudio_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyaudio", None)  # makes `import pyaudio` fail
    with pytest.raises(AudioSourceError) as raised:
        async with Microphone():
            pass
    message = str(raised.value)
    assert 'pip install "speechmatics-modes[mic]"' in message
    assert "portaudio19-dev" in message
    assert "brew install portaudio" in message
    assert isinstance(raised.value.__cause__, ImportError)
    with pytest.raises(AudioSourceError, match="PyAudio"):
        list_input_devices()


@pytest.mark.anyio
async def test_a_machine_without_input_devices_is_reported(fake_pyaudio: FakePyAudio) -> None:
    fake_pyaudio.devices = [_device(0, "Built-in Speakers", inputs=0)]
    fake_pyaudio.default_input = None
    with pytest.raises(AudioSourceError, match=r"default input device was not found.*none"):
        async with Microphone():
            pass
    assert fake_pyaudio.instances[0].terminated
    assert list_input_devices() == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("device", "problem"),
    [(5, "5 was not found"), (0, "0 was not found"), ("Microphone", "matches several devices")],
)
async def test_a_bad_device_is_named_with_the_available_ones(
    fake_pyaudio: FakePyAudio, device: int | str, problem: str
) -> None:
    with pytest.raises(AudioSourceError) as raised:
        async with Microphone(device=device):
            pass
    assert problem in str(raised.value)
    assert "1: 'USB Microphone', 2: 'Webcam Microphone'" in str(raised.value)
    assert "Speakers" not in str(raised.value)
    assert fake_pyaudio.instances[0].terminated


@pytest.mark.anyio
@pytest.mark.parametrize(("device", "index"), [("Webcam Microphone", 2), ("usb", 1), (2, 2)])
async def test_devices_are_found_by_name_part_of_a_name_or_index(
    fake_pyaudio: FakePyAudio, device: int | str, index: int
) -> None:
    async with Microphone(device=device):
        assert fake_pyaudio.stream.options["input_device_index"] == index


def test_input_devices_are_listed_with_the_default_marked(fake_pyaudio: FakePyAudio) -> None:
    assert list_input_devices() == [
        InputDevice(1, "USB Microphone", 1, 48000.0, is_default=True),
        InputDevice(2, "Webcam Microphone", 2, 48000.0, is_default=False),
    ]
    assert fake_pyaudio.instances[0].terminated


@pytest.mark.anyio
async def test_a_device_that_refuses_the_format_is_named(fake_pyaudio: FakePyAudio) -> None:
    fake_pyaudio.open_error = OSError(-9997, "Invalid sample rate")
    with pytest.raises(AudioSourceError, match=r"1: 'USB Microphone' at 16000 Hz.*Invalid sample"):
        async with Microphone():
            pass
    assert fake_pyaudio.instances[0].terminated


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"sample_rate": 44_100, "chunk_ms": 3}, "whole number of samples"),
        ({"chunk_ms": 5}, "not a real-time audio format"),
        ({"sample_rate": 4_000}, "not a real-time audio format"),
        ({"channels": 0}, "channels must be at least 1"),
        ({"max_buffered_seconds": 0.05}, "at least one chunk"),
    ],
)
def test_impossible_options_are_refused_before_any_io(
    options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        Microphone(**options)
