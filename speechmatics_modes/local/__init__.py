"""An embedded server that speaks Speechmatics' batch and real-time protocols on loopback."""
