"""Device meshes: batches split along a "data" axis, the members of a fleet or sweep along a
"members" axis.

In one process the mesh holds the local devices. After `initialize`,
`jax.devices()` lists the devices of every process: every process runs the
same program on global arrays, and each fills only its own devices' rows of a
batch (`put`).
"""

import os

import jax
from jax.experimental import multihost_utils
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec
import numpy as np

AXIS = "data"
MEMBERS = "members"


def member_mesh(num_members: int) -> Mesh:
  """A 2-D mesh ("members", "data") over all devices, of every process.

  The members axis gets the largest divisor of the device count that is at
  most `num_members`; the rest of the devices split each member's batches.
  """
  devices = np.array(jax.devices())
  across = max(d for d in range(1, min(num_members, devices.size) + 1) if devices.size % d == 0)
  return Mesh(devices.reshape(across, devices.size // across), (MEMBERS, AXIS))


def local_mesh(most: int | None = None) -> Mesh:
  """A 1-D "data" mesh over this process's devices (the first `most` of them, if given), for
  work one process does alone."""
  return Mesh(np.array(jax.local_devices()[:most]), (AXIS,))


def use_cpu_cores() -> None:
  """On CPU, one JAX device per core this process may use, so that work split over devices
  (a batch over "data") runs on every core; call before any JAX work. A CPU device count
  already chosen (JAX_NUM_CPU_DEVICES, or XLA_FLAGS' host device count) is kept, and other
  platforms' devices are unchanged."""
  chosen = (jax.config.jax_num_cpu_devices > 0
            or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""))
  if not chosen:
    jax.config.update("jax_num_cpu_devices", len(os.sched_getaffinity(0)))


def member_sharded(mesh: Mesh) -> NamedSharding:
  """The leading (member) axis split over the mesh's "members" axis: stacked states and series."""
  return NamedSharding(mesh, PartitionSpec(MEMBERS))


def member_batch_sharded(mesh: Mesh) -> NamedSharding:
  """(members, batch) arrays: members as `member_sharded`, each one's batch over "data"."""
  return NamedSharding(mesh, PartitionSpec(MEMBERS, AXIS))


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """A batch every member shares, split over the mesh's "data" axis."""
  return NamedSharding(mesh, PartitionSpec(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  """A whole copy on every device of `mesh`: parameters, optimizer state, series, keys."""
  return NamedSharding(mesh, PartitionSpec())


def put(tree, sharding: NamedSharding):
  """Global arrays of `tree`'s leaves laid out as `sharding`.

  Leaves are host values, the same on every process; each process copies only
  the parts its own devices hold. Arrays already laid out so are kept. Do not
  change a host array after putting it: on CPU the device array may share its
  memory while a step that reads it is still running.
  """
  def one(x):
    if isinstance(x, jax.Array) and x.sharding.is_equivalent_to(sharding, x.ndim):
      # Relabelled, not copied: jit traces and compiles again for another, equivalent sharding.
      return x if x.sharding == sharding else jax.device_put(x, sharding)
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

  return jax.tree.map(one, tree)


def local(tree):
  """This process's copy of fully replicated global arrays, for work done by one process."""
  return jax.tree.map(lambda x: x.addressable_data(0) if isinstance(x, jax.Array) else x, tree)


def is_main_process() -> bool:
  """Whether this process writes files: process 0."""
  return jax.process_index() == 0


def broadcast_text(text: str, *, size: int = 1024) -> str:
  """Process 0's `text` (at most `size` bytes of UTF-8), on every process."""
  if jax.process_count() == 1:
    return text
  encoded = np.zeros(size, np.uint8)
  data = text.encode()[:size]
  encoded[:len(data)] = np.frombuffer(data, np.uint8)
  received = np.asarray(multihost_utils.broadcast_one_to_all(encoded))
  return received.tobytes().rstrip(b"\0").decode()


def initialize(coordinator_address: str, num_processes: int, process_id: int) -> None:
  """Joins a multi-process job (`jax.distributed.initialize`); call before any JAX work.

  Args:
    coordinator_address: "host:port" where process 0 listens, reachable by all.
    num_processes: processes in the job (>= 1).
    process_id: this process's index, 0 .. num_processes - 1.
  """
  host, _, port = (coordinator_address or "").rpartition(":")
  if not host or not port.isdigit():
    raise ValueError(f"--coordinator_address={coordinator_address!r}: give process 0's "
                     "host:port, e.g. 10.0.0.1:1234.")
  if num_processes < 1:
    raise ValueError(f"--num_processes={num_processes}: a job has at least 1 process.")
  if not 0 <= process_id < num_processes:
    raise ValueError(f"--process_id={process_id}: must be in 0..{num_processes - 1} for "
                     f"--num_processes={num_processes}.")
  jax.distributed.initialize(coordinator_address, num_processes, process_id)
