"""The OR dashboard in the browser: ``orstream edge run --web HOST:PORT``.

The page shows a stream's overlay video over WebRTC and the runtime's state (step, timeline,
instruments, stale / NO SIGNAL / out of patient, latency) from the same status and result hub
that gRPC answers from, behind the gRPC API's tokens and certificate.
"""
