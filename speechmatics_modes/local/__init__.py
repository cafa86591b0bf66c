"""An embedded server that speaks Speechmatics' batch and real-time protocols on loopback.

``async with LocalServer() as server:`` gives a batch URL and a real-time URL that the
official SDKs (and this library, through ``server.settings()``) use as if they were the
service, with an offline engine behind them. :class:`ScriptedEngine` makes it deterministic;
:class:`Faults` makes it misbehave on purpose.
"""

from speechmatics_modes.local._engine import Engine, EngineWord, StreamingRecognizer, StreamUpdate
from speechmatics_modes.local._faults import Faults, HttpFailure, SocketFault
from speechmatics_modes.local._fetch import ANY_ADDRESS
from speechmatics_modes.local._insights import EngineInsights
from speechmatics_modes.local._rt_protocol import SessionLimits
from speechmatics_modes.local._scripted import ScriptedEngine
from speechmatics_modes.local._server import PLACEHOLDER_API_KEY, LocalServer, run_server
from speechmatics_modes.local._stats import ServerStats

__all__ = [
    "ANY_ADDRESS",
    "PLACEHOLDER_API_KEY",
    "Engine",
    "EngineInsights",
    "EngineWord",
    "Faults",
    "HttpFailure",
    "LocalServer",
    "ScriptedEngine",
    "ServerStats",
    "SessionLimits",
    "SocketFault",
    "StreamUpdate",
    "StreamingRecognizer",
    "run_server",
]
