"""A store in an S3 bucket (AWS or any S3-compatible server: MinIO, Ceph RGW, ...).

Configuration, in order of precedence: the URL's query (`s3://bucket/prefix?endpoint=...&region=...
&addressing=path`), then the environment (`AWS_ENDPOINT_URL` or `PROCTOR_S3_ENDPOINT`, `AWS_REGION` /
`AWS_DEFAULT_REGION`, `PROCTOR_S3_ADDRESSING`), then boto3's own chain, which also finds credentials
in `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` or a credentials file (`AWS_SHARED_CREDENTIALS_FILE`).

A single PUT is atomic in S3, so `put_bytes` needs no rename. Transient errors (throttling, 5xx,
dropped connections) are retried by botocore's standard retry mode.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qs, urlsplit

from proctor_jobs.store.base import KeyNotFound, Store, StoreError, check_key

_MULTIPART_THRESHOLD = 16 * 1024 * 1024


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ends with "/"
    endpoint: str | None
    region: str | None
    addressing: str  # auto | path | virtual

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise StoreError(f"not an S3 URL: {url!r} (expected s3://bucket/prefix)")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        prefix = parts.path.strip("/")
        addressing = query.get("addressing") or os.environ.get("PROCTOR_S3_ADDRESSING") or "auto"
        if addressing not in ("auto", "path", "virtual"):
            raise StoreError(f"S3 addressing must be auto, path or virtual, not {addressing!r}")
        return cls(
            bucket=parts.netloc,
            prefix=f"{prefix}/" if prefix else "",
            endpoint=query.get("endpoint")
            or os.environ.get("PROCTOR_S3_ENDPOINT")
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL"),
            region=query.get("region")
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION"),
            addressing=addressing,
        )


class S3Store(Store):
    def __init__(self, url: str, client=None) -> None:
        self.location = S3Location.parse(url)
        base = f"s3://{self.location.bucket}/{self.location.prefix}".rstrip("/")
        self.url = base
        self._client = client or make_client(self.location)

    def _key(self, key: str) -> str:
        return self.location.prefix + check_key(key)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        try:
            self._client.put_object(Bucket=self.location.bucket, Key=self._key(key), Body=data, **extra)
        except Exception as exc:
            raise _store_error(exc, key) from exc

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        from boto3.s3.transfer import TransferConfig

        extra = {"ContentType": content_type} if content_type else None
        config = TransferConfig(multipart_threshold=_MULTIPART_THRESHOLD, use_threads=False)
        try:
            self._client.upload_file(
                str(path), self.location.bucket, self._key(key), ExtraArgs=extra, Config=config
            )
        except Exception as exc:
            raise _store_error(exc, key) from exc

    def get_bytes(self, key: str) -> bytes:
        try:
            obj = self._client.get_object(Bucket=self.location.bucket, Key=self._key(key))
            return obj["Body"].read()
        except Exception as exc:
            raise _store_error(exc, key) from exc

    def open_read(self, key: str) -> BinaryIO:
        try:
            obj = self._client.get_object(Bucket=self.location.bucket, Key=self._key(key))
        except Exception as exc:
            raise _store_error(exc, key) from exc
        return obj["Body"]  # botocore's StreamingBody: read(n) streams, close() frees the connection

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.location.bucket, Key=self._key(key))
            return True
        except Exception as exc:
            err = _store_error(exc, key)
            if isinstance(err, KeyNotFound):
                return False
            raise err from exc

    def list(self, prefix: str) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        full = self.location.prefix + prefix
        cut = len(self.location.prefix)
        try:
            for page in paginator.paginate(Bucket=self.location.bucket, Prefix=full):
                for obj in page.get("Contents", []):
                    yield obj["Key"][cut:]
        except Exception as exc:
            raise _store_error(exc, prefix) from exc

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.location.bucket, Key=self._key(key))
        except Exception as exc:
            err = _store_error(exc, key)
            if not isinstance(err, KeyNotFound):
                raise err from exc

    def delete_prefix(self, prefix: str) -> int:
        keys = [self.location.prefix + k for k in self.list(prefix)]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self._client.delete_objects(Bucket=self.location.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)

    def uri(self, key: str) -> str:
        return f"s3://{self.location.bucket}/{self._key(key)}"

    def presigned_url(self, key: str, expires: int = 3600) -> str:
        return self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.location.bucket, "Key": self._key(key)}, ExpiresIn=expires
        )

    def close(self) -> None:
        self._client.close()


#: connections a client keeps to its endpoint: the operator reads runs' progress from 32 threads, and
#: botocore's default (10) made it drop and re-open (a TLS handshake each) under load
MAX_POOL_CONNECTIONS = 32


def make_client(location: S3Location, credentials: dict[str, str] | None = None):
    """A boto3 S3 client for `location`: bounded retries and timeouts; `credentials` (the keys of a
    store Secret) or, None, the environment's."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 6, "mode": "standard"},
        s3={"addressing_style": location.addressing},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )
    keys = credentials or {}
    session = boto3.session.Session(
        aws_access_key_id=keys.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=keys.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=keys.get("AWS_SESSION_TOKEN"),
    )
    return session.client("s3", endpoint_url=location.endpoint, region_name=location.region, config=config)


def _store_error(exc: Exception, key: str) -> StoreError:
    """Map botocore errors to the store's exceptions, keeping the server's message."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            return KeyNotFound(key)
        message = exc.response.get("Error", {}).get("Message", "")
        return StoreError(f"S3 {code or 'error'} for key {key!r}: {message or exc}")
    if isinstance(exc, BotoCoreError):
        return StoreError(f"S3 request for key {key!r} failed: {exc}")
    if isinstance(exc, StoreError):
        return exc
    return StoreError(f"S3 request for key {key!r} failed: {exc!r}")
