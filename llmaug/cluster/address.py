"""Which Ray cluster `--ray` joins, checked to answer before anything is written.

`auto` is found in `RAY_ADDRESS`, then in the file the latest `ray start` left
(`<RAY_TMPDIR or /tmp>/ray/ray_current_cluster`). Ray keeps retrying a dead address for minutes: a
`ray start` killed rather than stopped leaves that file behind, and `--ray auto` then stalled for
168 s before its error. A TCP connect answers in milliseconds, so the address is knocked on first.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from ..errors import ProviderError

LOCAL = "local"
PROBE_TIMEOUT_S = 5.0
GCS_PORT = 6379  # `ray start --head`'s default
CLIENT_PORT = 10001  # Ray Client's default (ray://)


@dataclass(frozen=True)
class Target:
    """A cluster to join: the address handed to ``ray.init`` and where it came from."""

    address: str
    source: str


def find_target(requested: str) -> Optional[Target]:
    """None for ``local`` (llmaug starts a Ray of its own); otherwise the cluster to join, which answers."""
    if requested == LOCAL:
        return None
    target = _resolve(requested)
    host, port = _host_port(target)
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = "nothing listens there" if isinstance(exc, ConnectionRefusedError) else (exc.strerror or str(exc) or type(exc).__name__)
        where = "" if target.source == "--ray" else f"{host}:{port}, from {target.source}: "
        stale = " (a `ray start` killed, not stopped, leaves that file; `ray stop` clears it)" if target.source.endswith("ray_current_cluster") else ""
        raise ProviderError(f"cannot join Ray at '{requested}': {where}{reason}{stale}") from None
    return target


def _resolve(requested: str) -> Target:
    """`RAY_ADDRESS`, else the latest `ray start`'s file, else the one GCS running here: Ray's order,
    except that Ray's `auto` prefers a lone running cluster to the file, so which cluster it joins
    depends on what else runs on the machine; llmaug's follows the file, and a stale file is an error."""
    from ray._private import services, utils

    if requested != "auto":
        return Target(requested, "--ray")
    variable = os.environ.get("RAY_ADDRESS")
    if variable and variable != "auto":
        return Target(variable, "RAY_ADDRESS")
    recorded = utils.read_ray_address(None)
    if recorded:
        return Target(recorded, utils.get_ray_address_file(None))
    running = sorted(services.find_gcs_addresses())
    if len(running) == 1:
        return Target(running[0], "the Ray cluster running on this machine")
    if running:
        raise ProviderError(f"cannot join Ray at 'auto': {len(running)} Ray clusters run on this machine "
                            f"({', '.join(running)}); name one with --ray ADDRESS")
    raise ProviderError("cannot join Ray at 'auto': no Ray cluster runs on this machine (start one with "
                        "`ray start --head`, or use --ray local for a Ray of llmaug's own)")


def _host_port(target: Target) -> tuple[str, int]:
    client = "://" in target.address
    parts = urlsplit(target.address if client else f"//{target.address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or (port is None and ":" in (parts.netloc or "")):
        raise ProviderError(f"cannot join Ray at '{target.address}' ({target.source}): not host:port or ray://host:port")
    return parts.hostname, port or (CLIENT_PORT if client else GCS_PORT)
