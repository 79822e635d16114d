"""A real S3 server for the tests: MinIO, built from its Go module, on 127.0.0.1.

The operator and workers write results to S3; a fake would accept requests S3 refuses (bad
signatures, wrong multipart part sizes), so the tests use a real implementation with signature
checking on. Credentials are generated per environment, and one bucket is created per session.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import binaries
from .procs import Server, free_port, wait_until

REGION = "us-east-1"


@dataclass
class S3Info:
    """What a client needs to reach the server; saved as JSON for the developer command."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str
    bucket: str
    workdir: str
    pid: int = 0


class S3Server:
    """A running MinIO (or a description of one another process started)."""

    def __init__(self, info: S3Info, server: Server | None = None) -> None:
        self.info = info
        self.endpoint = info.endpoint
        self.access_key = info.access_key
        self.secret_key = info.secret_key
        self.region = info.region
        self.bucket = info.bucket
        self.server = server

    def env(self) -> dict[str, str]:
        """The variables boto3, the AWS CLI and Proctor's workers read."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def client(self, **overrides: Any) -> Any:
        """A boto3 S3 client for this server (path-style addressing, SigV4)."""
        import boto3
        from botocore.config import Config

        params: dict[str, Any] = {
            "endpoint_url": self.endpoint,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": self.region,
            "config": Config(
                signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 2}
            ),
        }
        params.update(overrides)
        return boto3.client("s3", **params)

    def create_bucket(self, name: str) -> None:
        """Create a bucket (idempotent)."""
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait for MinIO to answer, create the session's bucket, save the description."""
        port = int(self.endpoint.rsplit(":", 1)[1])
        servers = [self.server] if self.server is not None else []
        wait_until("minio /minio/health/ready", lambda: _ready(port), timeout, servers)
        self.create_bucket(self.bucket)
        (Path(self.info.workdir) / "s3.json").write_text(json.dumps(asdict(self.info), indent=2))

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def _ready(port: int) -> bool:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/minio/health/ready", timeout=1) as resp:
        return resp.status == 200


def start(workdir: Path, bucket: str | None = None, die_with_parent: bool = True) -> S3Server:
    """Start MinIO and return at once; call `wait_ready` before use (lets other servers start meanwhile)."""
    binary = binaries.go_binary("minio")
    workdir.mkdir(parents=True, exist_ok=True)
    port, console = free_port(), free_port()
    access_key = "proctor" + secrets.token_hex(6)
    secret_key = secrets.token_urlsafe(30)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "MINIO_ROOT_USER": access_key,
        "MINIO_ROOT_PASSWORD": secret_key,
        "MINIO_REGION": REGION,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
        "MINIO_CALLHOME_ENABLE": "off",
    }
    server = Server(
        "minio",
        [
            str(binary),
            "server",
            str(workdir / "data"),
            f"--address=127.0.0.1:{port}",
            f"--console-address=127.0.0.1:{console}",
            "--quiet",
        ],
        workdir / "minio.log",
        env=env,
        die_with_parent=die_with_parent,
    )
    info = S3Info(
        endpoint=f"http://127.0.0.1:{port}",
        access_key=access_key,
        secret_key=secret_key,
        region=REGION,
        bucket=bucket or f"proctor-test-{int(time.time())}-{secrets.token_hex(3)}",
        workdir=str(workdir),
        pid=server.pid,
    )
    return S3Server(info, server)


def load(workdir: Path) -> S3Server:
    """Describe a server another process started (the developer command)."""
    return S3Server(S3Info(**json.loads((workdir / "s3.json").read_text())))
