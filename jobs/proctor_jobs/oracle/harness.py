"""The trusted side of a test: run a benchmark's test script against a candidate in another process.

The harness executes the task's own code (the function signature, then the test script) with the
entry name bound to a proxy; each call crosses to the candidate's sandboxed process as plain data
(`wire`). The verdict — the test script ran to its end — is decided here, in a process the answer
cannot see, signal or write to. Exceptions the candidate raised come back as the builtin exception of
the same name when there is one (so `except ValueError` in a test works), else `CandidateError`.
"""

from __future__ import annotations

import builtins
import select
import time
import traceback

from proctor_jobs.oracle import wire


class CandidateError(Exception):
    """The candidate raised an exception that is not a builtin one (its type name is kept)."""


class CandidateGone(BaseException):
    """The candidate's process ended (or exited, or broke the protocol) before answering.

    A BaseException, like the SystemExit it stands for: a test's `except Exception` must not turn a
    candidate that is gone into a pass, just as it could not in the original single process.
    """


class HarnessTimeout(BaseException):
    """The deadline passed while waiting for the candidate."""


class _Channel:
    def __init__(self, fd: int, deadline: float) -> None:
        self.fd, self.deadline = fd, deadline
        self.calls = 0

    def receive(self) -> dict:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
            raise HarnessTimeout("the candidate did not answer before the deadline")
        try:
            message = wire.recv_frame(self.fd)
        except wire.WireError as exc:
            raise CandidateGone(f"the candidate sent a malformed answer: {exc}") from None
        except OSError as exc:
            raise CandidateGone(f"the candidate's channel broke: {exc}") from None
        if message is None:
            raise CandidateGone("the candidate's process ended before answering")
        return message

    def call(self, args: tuple, kwargs: dict):
        self.calls += 1
        try:
            wire.send_frame(self.fd, {"call": [wire.encode_value(list(args)), wire.encode_value(kwargs)]})
        except OSError as exc:
            raise CandidateGone(f"the candidate's process ended before the call: {exc}") from None
        reply = self.receive()
        if "ok" in reply:
            try:
                return wire.decode_value(reply["ok"])
            except wire.WireError as exc:
                raise CandidateError(f"the answer returned a value that cannot be checked: {exc}") from None
        kind, message = _exception_fields(reply.get("raise"))
        if reply.get("fatal"):
            raise CandidateGone(f"the candidate ended the program: {kind}: {message}")
        exception_type = getattr(builtins, kind, None)
        error: Exception = CandidateError(f"{kind}: {message}")
        if isinstance(exception_type, type) and issubclass(exception_type, Exception):
            try:
                error = exception_type(message)
            except TypeError:  # a builtin exception with another constructor (UnicodeError's kin)
                pass
        raise error


def _exception_fields(value) -> tuple[str, str]:
    if type(value) is list and len(value) == 2 and all(type(v) is str for v in value):
        return value[0][:200], value[1][:2000]
    raise CandidateGone("the candidate answered neither a value nor an exception")


def run_test(fd: int, signature: str, test_script: str, entry: str, deadline: float) -> dict:
    """Wait for the candidate to be ready, run the test script, return the verdict (plain data)."""
    channel = _Channel(fd, deadline)
    try:
        hello = channel.receive()
    except (HarnessTimeout, CandidateGone) as exc:
        return _verdict(False, type(exc).__name__, str(exc), channel, stage="load")
    if hello.get("event") == "error":
        kind, message = str(hello.get("type", "Exception"))[:200], str(hello.get("message", ""))[:2000]
        return _verdict(False, kind, message, channel, stage="load")
    if hello.get("event") != "ready":
        return _verdict(False, "CandidateGone", "the candidate did not start", channel, stage="load")

    def proxy(*args, **kwargs):
        return channel.call(args, kwargs)

    namespace: dict = {"__name__": "__main__"}
    try:
        # The signature is the task's code (imports, helper classes the test may use); the stub body it
        # defines is replaced by the proxy before the test runs.
        exec(compile(signature + "\n    pass\n", "<signature>", "exec"), namespace)
    except BaseException:
        namespace = {"__name__": "__main__"}
    namespace[entry] = proxy
    try:
        exec(compile(test_script, "<test>", "exec"), namespace)
    except BaseException as exc:
        if isinstance(exc, HarnessTimeout):
            return _verdict(False, "Timeout", str(exc), channel, stage="test", timed_out=True)
        return _verdict(False, type(exc).__name__, _text(exc), channel, stage="test", trace=True)
    return _verdict(True, None, None, channel, stage="test")


def _verdict(passed, kind, message, channel, stage, timed_out=False, trace=False) -> dict:
    verdict = {"passed": passed, "calls": channel.calls, "stage": stage, "timed_out": timed_out}
    if not passed:
        verdict["exception"] = {"type": kind, "message": message or ""}
        if trace:
            verdict["traceback"] = traceback.format_exc(limit=-3)[-2000:]
    return verdict


def _text(exc: BaseException) -> str:
    try:
        return str(exc)[:2000]
    except Exception:
        return "<unprintable>"
