"""The long-running real-time stream: one transcription across many server sessions.

- ``_policy``: :class:`~speechmatics_modes.RolloverPolicy` (when to hand over, how to
  reconnect) and what the stream reports about itself (rollover events, metrics);
- ``_ledger``: the bookkeeping, plain code without sockets or clocks (the audio ring, each
  session's place on the stream's clock, which words were already emitted);
- ``_rolling``: :class:`RollingStream`, which pumps audio and events through one
  :class:`~speechmatics_modes._realtime.RealtimeSession` after another.

Only ``_rolling`` does I/O; the façade (``_api.py``) uses it when ``rollover=`` is given.
"""
