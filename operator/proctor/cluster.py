"""The operator's few writes to the Kubernetes API, behind one small async interface.

Reads of Jobs, Artifacts and JudgeServers come from kopf's in-memory indexes (one watch each), so a
reconciliation in steady state makes no API request at all; this client is for creating children,
the occasional patch, and the objects kopf does not watch (ConfigMaps, Secrets, judge pods).
Every call is counted (`proctor_api_requests_total`) so the cost per run item stays visible, and every
call has a deadline (`REQUEST_TIMEOUT`, connect and read).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

API_REQUESTS: Counter[tuple[str, str]] = Counter()
#: (connect, read) seconds for every call: a hung API server fails a pass, never wedges the operator
REQUEST_TIMEOUT = (5.0, 30.0)
_LOCK = threading.Lock()


class Conflict(Exception):
    """The object already exists (creating deterministic names makes this the normal, safe outcome)."""


class NotFound(Exception):
    pass


class NotLeading(Exception):
    """A write refused because this replica does not hold the leader Lease (or its renewal is late)."""


WRITES = ("create", "patch", "update", "delete", "apply")
#: the field manager of every server-side apply (what `kubectl get -o yaml --show-managed-fields` names)
FIELD_MANAGER = "proctor"


def _count(verb: str, resource: str) -> None:
    with _LOCK:
        API_REQUESTS[(verb, resource)] += 1


class Cluster:
    def __init__(self, api_client=None) -> None:
        from kubernetes import client, config

        if api_client is None:
            configuration = client.Configuration()
            try:
                config.load_incluster_config(client_configuration=configuration)
            except config.ConfigException:
                config.load_kube_config(client_configuration=configuration)
            # One pooled connection per thread that calls the API (8 + 4 report threads): urllib3's
            # default (5 per CPU) dropped and re-opened connections, a TLS handshake each, under load.
            configuration.connection_pool_maxsize = 16
            api_client = client.ApiClient(configuration)
        self.api = api_client
        #: with leader election, a check before every write but the Lease's own: a replica that lost
        #: the Lease (or was frozen past its renew deadline) writes nothing, even mid-pass
        self.may_write = None
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="k8s-api")
        # Events and status patches report what happened; on their own threads, twenty runs' reports
        # never hold up the next run's Job creation on a busy API server.
        self._report_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="k8s-report")
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.networking = client.NetworkingV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    async def _call(self, verb: str, resource: str, fn, *args, **kwargs) -> Any:
        from kubernetes.client.exceptions import ApiException

        if verb in WRITES and resource != "Lease" and self.may_write is not None and not self.may_write():
            raise NotLeading(f"{verb} {resource}: not the leader")
        _count(verb, resource)
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        try:
            # API calls get their own threads: queued behind slow store I/O, a Job create would wait.
            reports = resource == "Event" or resource.endswith("/status")
            executor = self._report_executor if reports else self._executor
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(executor, functools.partial(fn, *args, **kwargs))
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"{resource} already exists") from None
            if exc.status == 404:
                raise NotFound(f"{resource} not found") from None
            raise

    async def create(self, body: dict[str, Any]) -> bool:
        """Create an object; False when it already exists."""
        kind, ns = body["kind"], body["metadata"].get("namespace")
        creators = {
            "Job": lambda **kw: self.batch.create_namespaced_job(ns, body, **kw),
            "Artifact": lambda **kw: self.custom.create_namespaced_custom_object(
                "proctor.dev", "v1alpha1", ns, "artifacts", body, **kw
            ),
        }
        try:
            await self._call("create", kind, creators[kind])
            return True
        except Conflict:
            return False

    async def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        # Jobs only: their suspend and parallelism are Proctor's to flip; every other child is applied.
        patchers = {"Job": self.batch.patch_namespaced_job}
        await self._call("patch", kind, patchers[kind], name, namespace, patch)

    async def apply(self, body: dict[str, Any]) -> None:
        """Server-side apply as `proctor` (forced): the object becomes exactly what Proctor declares of
        it — a field Proctor stopped setting is removed, which a merge patch would leave behind — while
        fields other managers own (an autoscaler's replicas, defaults) are kept."""
        kind, ns, name = body["kind"], body["metadata"]["namespace"], body["metadata"]["name"]
        appliers = {
            "Deployment": self.apps.patch_namespaced_deployment,
            "Service": self.core.patch_namespaced_service,
            "NetworkPolicy": self.networking.patch_namespaced_network_policy,
        }
        await self._call(
            "apply",
            kind,
            appliers[kind],
            name,
            ns,
            body,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch a custom object's status subresource; returns the object as stored."""
        result = await self._call(
            "patch",
            f"{plural}/status",
            self.custom.patch_namespaced_custom_object_status,
            "proctor.dev",
            "v1alpha1",
            namespace,
            plural,
            name,
            {"status": status},
        )
        return result

    async def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """A Kubernetes Event on `obj` (what `kubectl describe` shows)."""
        import datetime as dt
        import socket

        meta = obj["metadata"]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", "proctor.dev/v1alpha1"),
                "kind": obj.get("kind"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "proctor-operator"},
            "reportingComponent": "proctor.dev/operator",
            "reportingInstance": socket.gethostname()[:128],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self._call("create", "Event", self.core.create_namespaced_event, meta["namespace"], body)

    async def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes import client

        api = client.CoordinationV1Api(self.api)
        try:
            lease = await self._call("get", "Lease", api.read_namespaced_lease, name, namespace)
        except NotFound:
            return None
        return self.api.sanitize_for_serialization(lease)

    async def write_lease(self, namespace: str, name: str, body: dict[str, Any], create: bool) -> bool:
        """Create or replace (with its resourceVersion, so two writers cannot both win) a Lease."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        api = client.CoordinationV1Api(self.api)
        try:
            if create:
                await self._call("create", "Lease", api.create_namespaced_lease, namespace, body)
            else:
                await self._call("update", "Lease", api.replace_namespaced_lease, name, namespace, body)
            return True
        except (Conflict, ApiException):
            return False

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        result = await self._call(
            "list", "Pod", self.core.list_namespaced_pod, namespace, label_selector=selector
        )
        return self.api.sanitize_for_serialization(result).get("items", [])

    async def pod_log(
        self, namespace: str, name: str, container: str, *, previous: bool, tail_lines: int, limit_bytes: int
    ) -> str:
        """The end of a container's log, bounded in lines and bytes (`previous`: the last terminated run)."""
        return await self._call(
            "get",
            "Pod/log",
            self.core.read_namespaced_pod_log,
            name,
            namespace,
            container=container,
            previous=previous,
            tail_lines=tail_lines,
            limit_bytes=limit_bytes,
            _request_timeout=10,  # the API server proxies to the node's kubelet: do not hang on it
        )

    async def config_map_value(self, namespace: str, name: str, key: str) -> str | bytes:
        """A ConfigMap key's text; binaryData as bytes (decoded, and named when not UTF-8, by the reader)."""
        cm = await self._call("get", "ConfigMap", self.core.read_namespaced_config_map, name, namespace)
        if cm.data and key in cm.data:
            return cm.data[key]
        if cm.binary_data and key in cm.binary_data:
            return base64.b64decode(cm.binary_data[key])
        raise NotFound(f"ConfigMap {namespace}/{name} has no key {key!r}")

    async def secret_value(self, namespace: str, name: str, key: str) -> str:
        secret = await self._call("get", "Secret", self.core.read_namespaced_secret, name, namespace)
        if not secret.data or key not in secret.data:
            raise NotFound(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(secret.data[key]).decode()

    async def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        secret = await self._call("get", "Secret", self.core.read_namespaced_secret, name, namespace)
        return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
