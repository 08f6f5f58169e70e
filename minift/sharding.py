"""Past one device: the same train step on many devices, by sharding arrays (JAX's SPMD).

Everything before this module runs on one device. To use n devices (the GPUs of a node, the chips
of a TPU slice, or several hosts' worth of them) minift does not rewrite the step: it only says
*where each array lives*, and lets ``jax.jit`` compile the one step of ``minift.train`` for all
the devices at once. The words:

* a **mesh** is the devices laid out in a named grid; minift uses one axis, ``("data",)`` of n
  devices (``make_mesh``);
* a **sharding**, ``NamedSharding(mesh, PartitionSpec(...))``, says for each axis of an array
  which mesh axis it is split over: ``P("data", None)`` on a ``(B, T)`` batch gives each device
  B/n rows; ``P()`` replicates the array, a whole copy on every device;
* **SPMD** (single program, multiple data): the program is written once, for the global arrays;
  ``jit`` reads the shardings of its inputs, XLA's partitioner splits every operation and inserts
  the communication itself (all-reduce, all-gather, reduce-scatter). No ``pmap``, no hand-written
  ``psum``: the loss is still ``sum / count`` over the whole batch, and XLA adds up the partial sums.

The strategies (``STRATEGIES``):

* ``"none"``: one device, as before.
* ``"dp"``, data parallelism: every device holds all of θ and of AdamW's m and v, and gets B/n
  rows of each batch. Each device's gradient sum covers its rows; XLA all-reduces the sums, so
  every copy takes the same update. Memory per device: the whole training state, 1/n of the
  activations. Time: n times the rows per step, plus one all-reduce of the gradients.
* ``"fsdp"``, fully sharded data parallelism (ZeRO-3, Rajbhandari et al. 2020; PyTorch FSDP,
  Zhao et al. 2023): the batch is split as in DP, and every large leaf of θ, m and v is split too,
  each device keeping 1/n of it (``fsdp_spec`` picks the axis). XLA all-gathers a weight when a
  layer needs it whole and reduce-scatters its gradient, so each device updates only its slice.
  Memory for the training state: 1/n, which is what lets a model too big for one device train.

The arithmetic is the same as on one device; only the order in which partial sums are added
changes, so results agree to float rounding, not bit for bit (tests/test_sharding.py measures it).

``loop.fit`` with ``TrainConfig(sharding="dp" | "fsdp")``: ``make_mesh``, then ``shard_state``
(params and optimizer state, also after a resume), ``keep_layout`` around the train step, and
``shard_batch`` on every batch; checkpoints are written from ``gather``. Several hosts:
``initialize_distributed`` first, then the same code; see docs/distributed.md.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from minift.data import Batch

STRATEGIES = ("none", "dp", "fsdp")
AXIS = "data"
# FSDP leaves smaller than this (16 KiB of float32) on every device: splitting a norm gain saves a
# few hundred bytes per device and would cost a collective every step.
MIN_SHARDED_SIZE = 4096


def check_strategy(strategy: str, where: str = "sharding") -> None:
    """A ValueError naming the field unless ``strategy`` is one of ``STRATEGIES``."""
    if strategy not in STRATEGIES:
        raise ValueError(f"{where}={strategy!r} is not one of {STRATEGIES} ('dp' = data parallel, "
                         "'fsdp' = data parallel with parameters and optimizer state split over the devices)")


def initialize_distributed(environ: dict | None = None) -> tuple[int, int]:
    """Join a multi-host run: ``jax.distributed.initialize()``; returns (process index, process count).

    Each host runs its own Python process; this call connects them, so that ``jax.devices()`` then
    lists every device of every host and one mesh can span them all. It must come before any JAX
    array exists (JAX raises otherwise). On a Cloud TPU slice, under SLURM and under Open MPI, JAX
    finds the coordinator, the number of processes and this process's index by itself. Elsewhere
    set ``JAX_COORDINATOR_ADDRESS=host:port`` (JAX reads it) and ``MINIFT_NUM_PROCESSES`` and
    ``MINIFT_PROCESS_ID`` (read here) on every host; given those, JAX's auto-detection is skipped.
    """
    env = os.environ if environ is None else environ
    given = {name: env.get(f"MINIFT_{name.upper()}") for name in ("num_processes", "process_id")}
    if set(given.values()) == {None}:
        jax.distributed.initialize()  # a TPU slice, SLURM or Open MPI says who is who
    elif None in given.values():
        raise ValueError("distributed: set both MINIFT_NUM_PROCESSES and MINIFT_PROCESS_ID, or neither (a TPU "
                         f"slice, SLURM and Open MPI need neither); got {given}")
    elif not all(value.isdigit() for value in given.values()):
        raise ValueError(f"distributed: MINIFT_NUM_PROCESSES and MINIFT_PROCESS_ID must be integers, got {given}")
    else:
        jax.distributed.initialize(num_processes=int(given["num_processes"]), process_id=int(given["process_id"]),
                                   cluster_detection_method="deactivate")
    return jax.process_index(), jax.process_count()


def make_mesh(n_devices: int | None = None, axis: str = AXIS) -> Mesh:
    """A 1-D mesh ``(axis,)`` over the first ``n_devices`` of ``jax.devices()`` (default: all).

    Across hosts ``jax.devices()`` lists every host's devices, so the mesh spans them all. The axis
    is ``Auto``: XLA's partitioner decides how to split each operation from the input shardings.
    (``jax.make_mesh``'s default, ``Explicit``, makes the sharding part of every array's type
    instead, and an einsum of inputs split in conflicting ways an error until it is told the
    output's sharding: more to read, for no gain in a model this size.)
    """
    devices = jax.devices()
    n = len(devices) if n_devices is None else n_devices
    if not 1 <= n <= len(devices):
        raise ValueError(f"sharding: n_devices={n}, but JAX sees {len(devices)} {devices[0].platform} device(s); "
                         "on CPU, test with XLA_FLAGS=--xla_force_host_platform_device_count=N")
    return jax.make_mesh((n,), (axis,), axis_types=(AxisType.Auto,), devices=devices[:n])


def fsdp_spec(shape: tuple[int, ...], n: int, *, stacked: bool = False, min_size: int = MIN_SHARDED_SIZE,
              axis: str = AXIS) -> PartitionSpec:
    """How FSDP splits one leaf of ``shape`` over ``n`` devices: which axis goes to the mesh ``axis``.

    The rule, in order:

    1. fewer than ``min_size`` elements (norm gains, step counts): replicate, ``P()``;
    2. otherwise split the longest axis whose length n divides (ties: the later axis), so each
       device holds an equal 1/n slice: ``(V, D)`` embed -> ``P("data", None)`` when n divides V;
    3. ``stacked=True`` marks the leading axis as the layer axis L of ``params["layers"]``: it is
       split only when no other axis can be, because ``lax.scan`` walks over it one layer at a
       time, and a device owning whole layers would have to send each one to all others in turn;
    4. no axis divisible by n: replicate (correct, just not saving memory on that leaf).
    """
    if n == 1 or math.prod(shape) < min_size:
        return PartitionSpec()
    divisible = [i for i, size in enumerate(shape) if size % n == 0]
    preferred = [i for i in divisible if not (stacked and i == 0)] or divisible
    if not preferred:
        return PartitionSpec()
    split = max(preferred, key=lambda i: (shape[i], i))
    return PartitionSpec(*(axis if i == split else None for i in range(len(shape))))


def _under_layers(path: tuple) -> bool:
    """True for a leaf below a ``"layers"`` key: stacked on a leading L axis (also AdamW's m, v)."""
    return any(getattr(entry, "key", None) == "layers" for entry in path)


def param_shardings(tree: Any, mesh: Mesh, strategy: str) -> Any:
    """A NamedSharding for every leaf of ``tree`` (parameters, or an optimizer state built from them).

    ``"dp"`` (and ``"none"``) replicate every leaf; ``"fsdp"`` splits each by ``fsdp_spec``. AdamW's
    moments have the parameters' shapes and sit below the same ``"layers"`` key, so they are split
    exactly like the parameter they belong to, and the update needs no communication.
    """
    check_strategy(strategy)
    n, axis = mesh.devices.size, mesh.axis_names[0]

    def sharding(path, leaf) -> NamedSharding:
        if strategy != "fsdp":
            return NamedSharding(mesh, PartitionSpec())
        return NamedSharding(mesh, fsdp_spec(tuple(leaf.shape), n, stacked=_under_layers(path), axis=axis))

    return jax.tree_util.tree_map_with_path(sharding, tree)


def from_host(x: Any, sharding: NamedSharding) -> jax.Array:
    """One global array from ``x``, a value every process holds whole: each process copies to its
    own devices only the slices they hold (``jax.make_array_from_callback`` asks for those)."""
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_tree(tree: Any, shardings: Any) -> Any:
    """``tree`` placed on the devices as ``shardings`` says (copies; ``tree`` is left as it was).

    One process: ``jax.device_put``, device to device. Several: ``from_host`` for each leaf, since
    ``device_put`` would first check that every process passed the same value, a collective and a
    compile per leaf (every process does pass the same value: the same seed or the same checkpoint).
    """
    if jax.process_count() == 1:
        return jax.device_put(tree, shardings)
    return jax.tree.map(from_host, tree, shardings)


def shard_state(params: Any, opt_state: Any, mesh: Mesh, strategy: str) -> tuple[Any, Any]:
    """Parameters and optimizer state placed for ``strategy``: what ``loop.fit`` does before step 1."""
    return (shard_tree(params, param_shardings(params, mesh, strategy)),
            shard_tree(opt_state, param_shardings(opt_state, mesh, strategy)))


def keep_layout(step: Callable, params: Any, opt_state: Any, mesh: Mesh) -> Callable:
    """``step`` (``train.make_train_step``'s) with its new params and optimizer state kept in the
    layout of ``params`` and ``opt_state``: the same step, compiled with ``out_shardings``.

    Why: ``jit`` chooses the layout of its outputs itself. After an FSDP update XLA splits some of
    the small leaves ``fsdp_spec`` replicates (seen on CPU: the norm gains), so the next call would
    see new input shardings, compile the step again, and the state would drift from the rule.
    Pinning the outputs keeps one layout and one compiled step. The metrics are replicated scalars.
    """
    def layout(tree: Any) -> Any:
        return jax.tree.map(lambda x: x.sharding, tree)

    replicated = NamedSharding(mesh, PartitionSpec())
    return jax.jit(step, donate_argnums=(0, 1), out_shardings=(layout(params), layout(opt_state), replicated))


def check_batch_size(batch_size: int, n_devices: int, where: str = "batch_size") -> None:
    """A ValueError naming the field unless ``batch_size`` rows split evenly over the devices."""
    if batch_size % n_devices:
        raise ValueError(f"{where}={batch_size} does not split evenly over {n_devices} devices: data parallel "
                         f"training gives each device B/{n_devices} rows; choose a multiple of {n_devices} "
                         "(--batch-size)")


def batch_sharding(ndim: int, mesh: Mesh) -> NamedSharding:
    """The sharding of a batch array: the B axis split over the mesh.

    ``(B, T)`` -> ``P("data", None)``; K micro-batches ``(K, B, T)`` -> ``P(None, "data", None)``.
    """
    if ndim not in (2, 3):
        raise ValueError(f"sharding: batch arrays must be (B, T) or (K, B, T), got {ndim} axes")
    return NamedSharding(mesh, PartitionSpec(*(None,) * (ndim - 2), mesh.axis_names[0], None))


def shard_batch(batch: Batch, mesh: Mesh) -> Batch:
    """``batch`` with its B axis split over the mesh: each device receives only its own rows.

    Every process passes the same *global* batch (minift's batch stream is a pure function of seed
    and epoch, so every host computes it identically); ``jax.make_array_from_callback`` asks for the
    slice of each device this process owns, so no host ever copies rows to a device it does not
    need, and on one host it is simply a split of the batch.
    """
    tokens = np.shape(batch.tokens)
    check_batch_size(tokens[-2] if len(tokens) >= 2 else 0, mesh.devices.size, f"batch.tokens {tokens}: B")
    sharding = batch_sharding(len(tokens), mesh)
    return Batch(*(from_host(x, sharding) for x in batch))


def gather(tree: Any) -> Any:
    """Every leaf readable whole on this host (for writing a checkpoint).

    On one host a sharded array is already readable (``np.asarray`` collects its shards). Across
    hosts a replicated leaf is read from this host's copy, and a leaf split over other hosts'
    devices is all-gathered, one leaf at a time so that only one is ever whole on a device; every
    process must call this at the same point, as a collective.
    """
    def whole(x):
        if not isinstance(x, jax.Array) or x.is_fully_addressable:
            return x
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        return multihost_utils.process_allgather(x, tiled=True)

    return jax.tree.map(whole, tree)
