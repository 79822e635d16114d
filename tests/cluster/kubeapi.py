"""A small raw-HTTP client for the Kubernetes API, used by the test kubelet.

The kubelet needs a handful of verbs, a watch it can restart from a resourceVersion, and to start in
a fraction of a second; `requests` gives all three, where the `kubernetes` package costs a second of
import time and hides the watch's resourceVersion handling. Sessions are per thread because the
kubelet talks to the API from one thread per pod.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import requests

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"


class ApiError(RuntimeError):
    """A non-2xx answer from the API server."""

    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:500]}")
        self.status = status


class Api:
    """Authenticated JSON calls against one API server."""

    def __init__(self, server: str, token: str, ca_file: str) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.ca_file = ca_file
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # No proxies or CA bundles from the environment (REQUESTS_CA_BUNDLE would even override
            # `verify`): everything here is on 127.0.0.1 and signed by the environment's own CA.
            session.trust_env = False
            session.verify = self.ca_file
            session.headers["Authorization"] = f"Bearer {self.token}"
            session.headers["User-Agent"] = "proctor-test-kubelet"
            self._local.session = session
        return session

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        content_type: str = "application/json",
        ok_missing: bool = False,
    ) -> Any:
        """One request; returns the decoded body, or None for a 404 when `ok_missing`."""
        headers = {"Content-Type": content_type} if body is not None else {}
        resp = self._session().request(
            method,
            self.server + path,
            data=json.dumps(body) if body is not None else None,
            params=params,
            headers=headers,
            timeout=(5, 30),
        )
        if resp.status_code == 404 and ok_missing:
            return None
        if resp.status_code >= 300:
            raise ApiError(resp.status_code, method, path, resp.text)
        return resp.json() if resp.content else None

    def get(self, path: str, ok_missing: bool = False, **params: Any) -> Any:
        """GET; None for a missing object when `ok_missing`."""
        return self.call("GET", path, params=params or None, ok_missing=ok_missing)

    def watch(
        self, path: str, resource_version: str, timeout_seconds: int = 240, **params: Any
    ) -> Iterator[dict]:
        """Yield watch events from `resource_version`; raises ApiError(410) when it is too old."""
        query = {
            **params,
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        with self._session().get(
            self.server + path, params=query, stream=True, timeout=(5, timeout_seconds + 30)
        ) as resp:
            if resp.status_code >= 300:
                raise ApiError(resp.status_code, "WATCH", path, resp.text)
            for line in resp.iter_lines(chunk_size=None):
                if not line:
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object", {})
                    raise ApiError(int(status.get("code") or 500), "WATCH", path, json.dumps(status))
                yield event
