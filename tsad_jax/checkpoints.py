"""Step-numbered orbax checkpoints of plain array trees, inside a run folder."""

import pathlib
from typing import Any

import orbax.checkpoint as ocp


def manager(run_dir: pathlib.Path, *, max_to_keep: int | None = None) -> ocp.CheckpointManager:
  """A synchronous manager for `<run_dir>/checkpoints/<step>/`."""
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False)
  return ocp.CheckpointManager((run_dir / "checkpoints").absolute(), options=options)


def save(mngr: ocp.CheckpointManager, step: int, tree: Any) -> None:
  mngr.save(step, args=ocp.args.StandardSave(tree), force=True)
  mngr.wait_until_finished()


def restore(mngr: ocp.CheckpointManager, target: Any, step: int | None = None, *,
            fallback_sharding=None) -> Any:
  """Restores `step` (default: the latest) into the structure and dtypes of `target`.

  Without a target orbax restores the saved device layout, which needs the
  devices that saved it; `fallback_sharding` places the arrays instead.
  """
  step = mngr.latest_step() if step is None else step
  if step not in mngr.all_steps():
    raise FileNotFoundError(
        f"No checkpoint for step {step} in {mngr.directory}; saved steps: {mngr.all_steps()}.")
  return mngr.restore(step, args=ocp.args.StandardRestore(
      target, fallback_sharding=fallback_sharding))
