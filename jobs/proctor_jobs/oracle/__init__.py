"""Sandboxed execution of untrusted programs (every model answer is untrusted).

async with Sandbox() as sandbox:
    result = await sandbox.run_python(code, SandboxLimits(wall_seconds=2))
"""

from proctor_jobs.oracle.sandbox import Sandbox, SandboxLimits, SandboxResult

__all__ = ["Sandbox", "SandboxLimits", "SandboxResult"]
