"""What runs in the candidate's sandboxed process: the answer, then calls from the harness.

The process has only stdin (/dev/null), stdout, stderr and one socket (fd 3) to the trusted harness;
every other descriptor was closed before the answer's code was received. It learns its code from the
socket, runs it, then answers calls (`{"call": [args, kwargs]}`) with the entry function's return value
or exception, as plain data (`wire`). Whatever the answer does to this process — patching builtins,
walking frames, writing to fd 3 — it can only change the values it answers with; whether those
values pass is decided by the test script in the harness process.
"""

from __future__ import annotations

import os
import sys
import traceback

from proctor_jobs.oracle import wire

CHANNEL_FD = 3


def serve(fd: int = CHANNEL_FD) -> None:
    """Run the program sent on `fd`; in call mode, serve calls until the harness hangs up. Never returns."""
    request = wire.recv_frame(fd)
    if request is None:
        os._exit(0)
    sys.argv = [request.get("filename", "<solution>")]
    globals_: dict = {"__name__": "__main__"}
    try:
        exec(compile(request["code"], request.get("filename", "<solution>"), "exec"), globals_)
    except BaseException as exc:
        traceback.print_exc()
        _flush()
        _send(fd, {"event": "error", "type": type(exc).__name__, "message": _text(exc)})
        os._exit(1)
    entry = request.get("entry")
    if not entry:
        _flush()
        _send(fd, {"event": "done"})
        os._exit(0)
    function = globals_.get(entry)
    if not callable(function):
        _send(fd, {"event": "error", "type": "NameError", "message": f"name {entry!r} is not defined"})
        os._exit(1)
    _send(fd, {"event": "ready"})
    while True:
        try:
            message = wire.recv_frame(fd)
        except wire.WireError:
            os._exit(2)
        if message is None:
            _flush()
            os._exit(0)
        try:
            args, kwargs = message["call"]
            result = function(*wire.decode_value(args), **wire.decode_value(kwargs))
            reply = {"ok": wire.encode_value(result)}
        except Exception as exc:
            reply = {"raise": [type(exc).__name__, _text(exc)]}
        except BaseException as exc:
            # SystemExit and the like end the program, as they would have in one process.
            _flush()
            _send(fd, {"raise": [type(exc).__name__, _text(exc)], "fatal": True})
            os._exit(1)
        _send(fd, reply)


def _send(fd: int, message: dict) -> None:
    try:
        wire.send_frame(fd, message)
    except (OSError, wire.WireError):
        os._exit(2)


def _text(exc: BaseException) -> str:
    try:
        return str(exc)[:2000]
    except BaseException:
        return "<unprintable exception>"


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
