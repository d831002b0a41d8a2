"""The Ray cluster a sweep runs on: connecting to it, and checking that its nodes can hold a trial
before the sweep starts (a trial no node can hold would wait forever)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path

import ray

from automl_chars.errors import ClusterUnavailableError, InvalidConfigError
from automl_chars.ray_compat import address_to_join

logger = logging.getLogger(__name__)


def join(address: str | None, cpus_per_trial: float, gpus_per_trial: float,
         verbose: int = 1, workers_per_trial: int = 1,
         needs: Mapping[str, Mapping[str, float]] | None = None) -> None:
    """Connects (:func:`connect`), says which Ray the run joined when ``verbose``, and checks
    that the cluster can hold a trial (:func:`check_resources`; ``workers_per_trial``: a
    data-parallel trial's workers; ``needs``: jobs' own resources). Every runner starts with
    this."""
    from automl_chars.runner.progress import quiet_ray_output

    with quiet_ray_output(verbose):
        joined = connect(address, verbose)
    if verbose >= 1 and joined:
        print(joined, flush=True)
    check_resources(cpus_per_trial, gpus_per_trial, workers_per_trial, needs)


def precheck(address: str | None, cpus_per_trial: float, gpus_per_trial: float,
             workers_per_trial: int = 1) -> None:
    """Refuses, before any data loads or Ray starts, resources that the local Ray instance a
    run would start cannot give (a cluster to join is checked once joined)."""
    if ray.is_initialized() or address_to_join(address) is not None:
        return
    check_fits(cpus_per_trial, gpus_per_trial, [local_resources()], autoscaling=False)
    check_workers_fit(workers_per_trial, cpus_per_trial, gpus_per_trial, [local_resources()],
                      autoscaling=False)


def local_resources() -> dict[str, float]:
    """What a new local Ray instance gets: this machine's CPUs and the GPUs CUDA sees."""
    import torch

    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def connect(address: str | None = None, verbose: int = 1) -> str:
    """Starts or joins Ray unless it is initialised (``address``: a cluster's, ``"auto"``,
    ``"local"`` for a new local instance, or None for ``$RAY_ADDRESS``, else a cluster that
    ``ray start`` left running here, else a new local instance) and returns a line saying which
    (empty when Ray was already initialised). Trial processes log at WARNING, so Ray's
    per-checkpoint INFO lines stay out of the sweep's output. A cluster that cannot be reached
    raises :class:`ClusterUnavailableError`."""
    if ray.is_initialized():
        return ""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and not _reachable(address):
        raise ClusterUnavailableError(
            f"Cannot connect to the Ray cluster at {address}: nothing answers there. Start it "
            f"(`ray start --head`, or `ray up cluster.yaml`), check the address, or leave "
            f"--address and RAY_ADDRESS unset to run on a local Ray instance."
        )
    joining = address_to_join(address)  # asked before ray.init, which may register itself
    try:
        # The trial processes' own output reaches this console only from verbose 2 (with
        # Ray Tune's): at the default, the progress lines say what happened, and what idle
        # worker processes print while Ray stops them (a SystemExit raised by Ray's SIGTERM
        # handler mid-garbage-collection: "Exception ignored in ... WeakSet") is noise. It
        # stays in Ray's log files (/tmp/ray/session_latest/logs).
        ray.init(address=address, logging_config=ray.LoggingConfig(log_level="WARNING"),
                 configure_logging=False, log_to_driver=verbose >= 2)
        resources = ray.cluster_resources()
    except (ConnectionError, TimeoutError, RuntimeError) as err:
        raise ClusterUnavailableError(
            f"Cannot connect to the Ray cluster at {address or 'RAY_ADDRESS'}: "
            f"{str(err).splitlines()[0] if str(err) else type(err).__name__}. Start it "
            f"(`ray start --head`, or `ray up cluster.yaml`), check the address, or leave "
            f"--address and RAY_ADDRESS unset to run on a local Ray instance."
        ) from None
    size = f"{resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs"
    if joining is None:
        return f"Ray: started a local instance ({size}), stopped when this run ends."
    given = "--address" if address and address != os.environ.get("RAY_ADDRESS") else (
        "RAY_ADDRESS" if address else "a `ray start` instance running on this machine")
    return (f"Ray: joined the cluster at {joining} ({size}; from {given}). Dashboard and "
            f"`ray job` use it; --address local starts a private instance instead.")


@contextlib.contextmanager
def local_ray(**init_kwargs) -> Iterator[None]:
    """Ray for a script (a benchmark, an experiment): the instance this process already runs (a
    test session, a notebook), or a new local one from ``init_kwargs`` (no dashboard, workers'
    logs not forwarded) that is shut down at the end."""
    if ray.is_initialized():
        yield
        return
    ray.init(**{"include_dashboard": False, "log_to_driver": False, "configure_logging": False,
                **init_kwargs})
    try:
        yield
    finally:
        ray.shutdown()


def _reachable(address: str, timeout_s: float = 5.0) -> bool:
    """Whether a ``host:port`` address accepts a TCP connection (other forms, such as ``auto`` or
    ``ray://``, are left to ``ray.init``). Ray itself retries an unreachable GCS for minutes."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return True
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


def check_fits(cpus_per_trial: float, gpus_per_trial: float, nodes: list[dict[str, float]],
               autoscaling: bool) -> None:
    """Raises when no node (``nodes``: each live node's ``{"CPU": n, "GPU": m}``) can hold one
    trial and the cluster cannot add such nodes.

    On an autoscaling cluster (``ray up``) larger nodes may still be launched, so trials wait
    for them, as Ray Tune itself does.
    """
    if any(n.get("CPU", 0) >= cpus_per_trial and n.get("GPU", 0) >= gpus_per_trial
           for n in nodes):
        return
    if autoscaling:
        logger.warning("No node has %s CPU(s) and %s GPU(s) free for a trial yet; trials wait "
                       "until the autoscaler adds one.", cpus_per_trial, gpus_per_trial)
        return
    gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    if gpus_per_trial > 0 and gpus == 0:
        raise InvalidConfigError(
            f"gpus_per_trial={gpus_per_trial} but the Ray cluster has no GPU. Use "
            f"gpus_per_trial=0 (CPU only) or connect to a cluster with GPU nodes (ray up cluster.yaml)."
        )
    if gpus_per_trial > gpus:
        raise InvalidConfigError(
            f"gpus_per_trial={gpus_per_trial} but the largest node has {gpus:g} GPU(s), and a "
            f"trial runs on one node. Use gpus_per_trial <= {gpus:g}."
        )
    raise InvalidConfigError(
        f"cpus_per_trial={cpus_per_trial:g} (with gpus_per_trial={gpus_per_trial:g}) fits no "
        f"node of this fixed-size cluster: the largest has {cpus:g} CPU(s). Use "
        f"cpus_per_trial <= {cpus:g}."
    )


def worker_capacity(cpus: float, gpus: float, nodes: list[dict[str, float]]) -> int:
    """How many workers of ``cpus`` CPUs and ``gpus`` GPUs each ``nodes`` hold at once."""
    total = 0
    for n in nodes:
        fits = [math.floor(n.get(kind, 0) / need + 1e-9)
                for kind, need in (("CPU", cpus), ("GPU", gpus)) if need > 0]
        total += min(fits) if fits else 0
    return total


def check_workers_fit(workers_per_trial: int, cpus_per_trial: float, gpus_per_trial: float,
                      nodes: list[dict[str, float]], autoscaling: bool) -> None:
    """Raises when a data-parallel trial's ``workers_per_trial`` workers (each with
    ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs, on any nodes) cannot all run at once:
    its Ray Train run would wait for them forever. Call :func:`check_fits` first (one worker)."""
    if workers_per_trial <= 1:
        return
    capacity = worker_capacity(cpus_per_trial, gpus_per_trial, nodes)
    if capacity >= workers_per_trial:
        return
    if autoscaling:
        logger.warning("The cluster holds %d of a trial's %d workers yet; trials wait until the "
                       "autoscaler adds nodes.", capacity, workers_per_trial)
        return
    cpus = sum(n.get("CPU", 0) for n in nodes)
    gpus = sum(n.get("GPU", 0) for n in nodes)
    raise InvalidConfigError(
        f"workers_per_trial={workers_per_trial} needs {workers_per_trial} workers with "
        f"cpus_per_trial={cpus_per_trial:g} and gpus_per_trial={gpus_per_trial:g} each (with "
        f"several workers the resources are each worker's), but this fixed-size cluster "
        f"({cpus:g} CPUs, {gpus:g} GPUs) holds {capacity} at once. Use workers_per_trial <= "
        f"{capacity}, fewer cpus_per_trial, or a larger cluster.")


def check_extra_fits(needs: Mapping[str, Mapping[str, float]], cpus_per_trial: float,
                     gpus_per_trial: float, nodes: list[dict[str, float]],
                     autoscaling: bool) -> None:
    """Raises when a job's own Ray resources (``needs``: job label -> e.g. ``{"worker_a": 1}``,
    :attr:`~automl_chars.runner.trials.TrialJob.resources`) with a trial's CPUs and GPUs fit
    no node (``nodes``: each live node's resources) and the cluster cannot add such nodes: its
    trial would wait forever."""
    for label, extra in needs.items():
        want = {"CPU": cpus_per_trial, "GPU": gpus_per_trial, **extra}
        if any(all(n.get(k, 0) >= v for k, v in want.items()) for n in nodes):
            continue
        if autoscaling:
            logger.warning("No node has the resources %s of job %r yet; its trial waits until "
                           "the autoscaler adds one.", want, label)
            continue
        custom = sorted({k for n in nodes for k in n if k not in _BUILTIN_RESOURCES
                         and not k.startswith("node:")})
        raise InvalidConfigError(
            f"Job {label!r} asks for the Ray resources {dict(extra)} (TrialJob.resources) with "
            f"{cpus_per_trial:g} CPU(s) and {gpus_per_trial:g} GPU(s), and no node of this "
            f"fixed-size cluster has them all (its nodes' custom resources: {custom or 'none'}). "
            f"Start a node with them (ray start --resources='{{\"name\": 1}}', or resources: "
            f"in cluster.yaml) or change the job's resources.")


#: Resources Ray gives every node by itself (custom ones are the others, and ``node:<ip>``).
_BUILTIN_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")


def check_resources(cpus_per_trial: float, gpus_per_trial: float,
                    workers_per_trial: int = 1,
                    needs: Mapping[str, Mapping[str, float]] | None = None) -> None:
    """:func:`check_fits`, :func:`check_workers_fit` and (for jobs' own resources, ``needs``)
    :func:`check_extra_fits` against the connected cluster."""
    nodes, scaling = live_nodes(), autoscaling()
    check_fits(cpus_per_trial, gpus_per_trial, nodes, scaling)
    check_workers_fit(workers_per_trial, cpus_per_trial, gpus_per_trial, nodes, scaling)
    if needs:
        check_extra_fits(needs, cpus_per_trial, gpus_per_trial, nodes, scaling)


def live_nodes() -> list[dict[str, float]]:
    """Each live node's resources (``CPU``, ``GPU``, custom ones)."""
    return [{k: float(v) for k, v in n["Resources"].items()}
            for n in ray.nodes() if n.get("Alive")]


def autoscaling() -> bool:
    """Whether this is a cluster-launcher cluster that may add nodes.

    The cluster launcher (`ray up`) leaves its config on the head node; Ray Tune tells an
    autoscaling cluster from a fixed one by this file too (ray.tune.execution.cluster_info).
    Not the autoscaler's status key in Ray's KV store: every local head publishes that one.
    """
    return Path("~/ray_bootstrap_config.yaml").expanduser().exists()
