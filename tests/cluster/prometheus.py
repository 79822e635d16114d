"""Debian's Prometheus on 127.0.0.1, with scrape targets tests add at run time.

The operator exports metrics; the tests check them the way an operator's user would, by scraping
and querying with PromQL. Targets are added by rewriting the configuration file and POSTing
`/-/reload` (`--web.enable-lifecycle`): the reload answers only once the new configuration is
applied, and a per-job `scrape_interval` (1 s by default) keeps tests fast.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import binaries
from .procs import Server, free_port, wait_until


@dataclass
class PrometheusInfo:
    """Where Prometheus is and what it scrapes; saved as JSON for the developer command."""

    url: str
    workdir: str
    pid: int = 0
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)


class Prometheus:
    """A running Prometheus (or a description of one another process started)."""

    def __init__(self, info: PrometheusInfo, server: Server | None = None) -> None:
        self.info = info
        self.url = info.url
        self.server = server
        self.config_file = Path(info.workdir) / "prometheus.yml"
        self._lock = threading.Lock()

    # ---- configuration ---------------------------------------------------------------------------

    def _write_config(self) -> None:
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": name,
                    "scrape_interval": job["scrape_interval"],
                    "scrape_timeout": job["scrape_interval"],
                    "metrics_path": job["metrics_path"],
                    "static_configs": [{"targets": job["targets"]}],
                }
                for name, job in self.info.jobs.items()
            ],
        }
        tmp = self.config_file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        tmp.replace(self.config_file)
        (Path(self.info.workdir) / "prometheus.json").write_text(json.dumps(asdict(self.info), indent=2))

    def reload(self) -> None:
        """Apply the configuration file; raises if Prometheus rejects it."""
        req = urllib.request.Request(self.url + "/-/reload", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            if resp.status != 200:
                raise RuntimeError(f"prometheus reload: HTTP {resp.status}")

    def add_target(
        self,
        job_name: str,
        target: str,
        scrape_interval: str = "1s",
        metrics_path: str = "/metrics",
        wait: bool = True,
        timeout: float = 30,
    ) -> None:
        """Scrape `target` ("127.0.0.1:PORT") as job `job_name` from now on (appends to an existing job).

        With `wait` (the default) this returns once Prometheus has scraped the target at least
        once, so a query right after sees its series. That takes about 5 s: Prometheus 2.42 applies
        discovered targets on a fixed 5-second tick that no flag shortens.
        """
        with self._lock:
            job = self.info.jobs.setdefault(
                job_name, {"targets": [], "scrape_interval": scrape_interval, "metrics_path": metrics_path}
            )
            if target not in job["targets"]:
                job["targets"].append(target)
            self._write_config()
            self.reload()
        if wait:
            self.wait_for(f'up{{job="{job_name}",instance="{target}"}}', timeout)

    def remove_job(self, job_name: str) -> None:
        """Stop scraping a job's targets."""
        with self._lock:
            self.info.jobs.pop(job_name, None)
            self._write_config()
            self.reload()

    # ---- queries ---------------------------------------------------------------------------------

    def _api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus {path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; returns the result vector: [{"metric": {...}, "value": [ts, "v"]}, ...]."""
        data = self._api("query", query=expr)
        result = data["result"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": result}]
        return result

    def wait_for(self, expr: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Poll `query(expr)` until it returns a non-empty vector; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"prometheus: {expr!r} still empty after {timeout}s; targets: {self.targets()}"
                )
            time.sleep(0.25)

    def targets(self) -> list[dict[str, Any]]:
        """The active targets with their health and last error (for failure messages)."""
        return [
            {k: t.get(k) for k in ("scrapePool", "scrapeUrl", "health", "lastError")}
            for t in self._api("targets")["activeTargets"]
        ]

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait for /-/ready."""

        def ready() -> bool:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as resp:
                return resp.status == 200

        wait_until("prometheus /-/ready", ready, timeout, [self.server] if self.server else [])


def start(workdir: Path, die_with_parent: bool = True) -> Prometheus:
    """Start Prometheus with no targets; returns at once (call wait_ready before use)."""
    binary = binaries.prometheus()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    info = PrometheusInfo(url=f"http://127.0.0.1:{port}", workdir=str(workdir))
    prom = Prometheus(info)
    prom._write_config()
    prom.server = Server(
        "prometheus",
        [
            str(binary),
            f"--config.file={prom.config_file}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ],
        workdir / "prometheus.log",
        die_with_parent=die_with_parent,
    )
    info.pid = prom.server.pid
    prom._write_config()
    return prom


def load(workdir: Path) -> Prometheus:
    """Describe a Prometheus another process started (the developer command)."""
    return Prometheus(PrometheusInfo(**json.loads((workdir / "prometheus.json").read_text())))
