"""speechmatics-modes: one way to transcribe speech with Speechmatics, batch or real-time."""
