"""The Ray session of a driver: connect to a cluster (or start a local Ray instance), and close it again.

Ray is an optional extra (``pip install -e ".[ray]"``): it is imported inside the functions that use it, so
that everything else works without it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from maml_rl.exits import first_line

PROBE_TIMEOUT_S = 10.0
"""How long to wait for a cluster's address to answer before calling it unreachable."""
WORKER_ENVIRONMENT = {"OMP_WAIT_POLICY": "PASSIVE", "RAY_USAGE_STATS_ENABLED": "0"}
"""Set in the driver's and the workers' environments unless already set: passive OpenMP waiting (see
:mod:`maml_rl.process`) and no usage statistics leaving the machine unless the user asks for them."""


class ClusterError(RuntimeError):
    """The Ray cluster cannot be reached, was lost, or cannot host the shards."""


@contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[None]:
    """:func:`connect` for the block, :func:`disconnect` afterwards (also after an error)."""
    connect(address, num_cpus)
    try:
        yield
    finally:
        disconnect()


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Joins the cluster at ``address`` (``auto``, ``ray://host:port``, ``host:port``), or starts a local Ray
    instance when ``None``; without the dashboard and usage statistics.

    The shards' worker processes import this same ``maml_rl`` (its folder goes first on their PYTHONPATH), so a
    checkout that is not the installed one runs its own code everywhere on a local machine.
    """
    for name, value in WORKER_ENVIRONMENT.items():  # before Ray is imported: it reads them then
        os.environ.setdefault(name, value)
    import ray

    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    env_vars = {"PYTHONPATH": path, **{name: os.environ[name] for name in WORKER_ENVIRONMENT}}
    if address not in (None, "auto"):
        _probe(address)
    options: dict[str, Any] = {
        "runtime_env": {"env_vars": env_vars},
        "log_to_driver": False,
        "configure_logging": False,
    }
    if address is None:
        options.update(num_cpus=num_cpus, include_dashboard=False)
    try:
        # "local": always a new instance, never one that `ray start` (or a test's cluster) left running here
        ray.init(address=address or "local", **options)
    except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError, TimeoutError, ...
        raise ClusterError(
            f"--ray {address or '(local)'}: cannot connect to the Ray cluster ({first_line(e)})"
        ) from None


def _probe(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raises :class:`ClusterError` unless something accepts a TCP connection at ``address``'s host and port
    (``ray.init`` itself keeps retrying an unreachable address for many minutes)."""
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--ray {address}: not a cluster address; give auto, ray://HOST:PORT or HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ClusterError(
            f"--ray {address}: cannot reach the Ray cluster ({e.strerror or type(e).__name__})"
        ) from None


def disconnect() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
