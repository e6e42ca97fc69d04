"""The upstream clients of one running API, built from its settings (tests pass fakes' transports)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Protocol

import httpx
from fastapi import Depends, Request

from .config import Settings
from .fleet import Fleet
from .secretfile import SecretFile
from .upstreams.alertmanager import AlertmanagerClient
from .upstreams.cloud import CloudClient
from .upstreams.grafana import GrafanaProbe
from .upstreams.http import HttpUpstream
from .upstreams.prometheus import PrometheusClient
from .upstreams.slurm import SlurmClient
from .joboutput import OutputStore
from .podsfile import PodsFile
from .upstreams.ssh import SshTail, Tail


class TailReader(Protocol):
    async def tail(self, host: str, port: int, alias: str, path: str, lines: int, as_user: str) -> Tail | None: ...


@dataclass
class Services:
    settings: Settings
    prometheus: PrometheusClient
    slurm: SlurmClient
    cloud: CloudClient
    fleet: Fleet
    ssh: TailReader
    #: Finished jobs' output on the service plane (None: not configured).
    outputs: OutputStore | None
    grafana: GrafanaProbe
    alertmanager: AlertmanagerClient | None
    clock: Callable[[], float]
    _https: tuple[HttpUpstream, ...]

    async def aclose(self) -> None:
        for http in self._https:
            await http.aclose()
        self.cloud.close()
        await self.grafana.aclose()


@dataclass
class Transports:
    """Transports to use instead of the network (tests)."""

    prometheus: httpx.AsyncBaseTransport | None = None
    slurmrestd: httpx.AsyncBaseTransport | None = None
    cloud: httpx.BaseTransport | None = None
    grafana: httpx.AsyncBaseTransport | None = None
    alertmanager: httpx.AsyncBaseTransport | None = None


def build_services(settings: Settings, transports: Transports | None = None, ssh: TailReader | None = None,
                   clock: Callable[[], float] = time.time) -> Services:
    transports = transports or Transports()
    timeout = settings.upstream_timeout_seconds
    prom_http = HttpUpstream("prometheus", settings.prometheus_url, timeout, transports.prometheus)
    slurm_http = HttpUpstream("slurmrestd", settings.slurmrestd_url, timeout, transports.slurmrestd)
    am_http = (HttpUpstream("alertmanager", settings.alertmanager_url, timeout, transports.alertmanager)
               if settings.alertmanager_url else None)
    cloud_key = (SecretFile(settings.cloud_api_key_file, "cloud API key")
                 if settings.cloud_api_key_file is not None else None)
    cloud = CloudClient(settings.cloud_api_url, cloud_key, timeout, transports.cloud)
    return Services(
        settings=settings,
        prometheus=PrometheusClient(prom_http),
        slurm=SlurmClient(slurm_http, settings.slurm_api_version, settings.slurm_user,
                          SecretFile(settings.slurm_jwt_key_file, "Slurm JWT key", strip=False), clock=clock),
        cloud=cloud,
        fleet=Fleet(PodsFile(settings.pods_file), cloud, clock),
        ssh=ssh or SshTail(settings.ssh_user, settings.ssh_private_key_file, settings.ssh_known_hosts_file, timeout),
        outputs=OutputStore(settings.job_output_store) if settings.job_output_store is not None else None,
        grafana=GrafanaProbe(settings.grafana_url, timeout, transports.grafana),
        alertmanager=AlertmanagerClient(am_http) if am_http else None,
        clock=clock,
        _https=(prom_http, slurm_http) + ((am_http,) if am_http else ()),
    )


def services(request: Request) -> Services:
    """FastAPI dependency: the running app's upstream clients."""
    found: Services = request.app.state.services
    return found


#: A route parameter that receives the running app's upstream clients.
ServicesDep = Annotated[Services, Depends(services)]
