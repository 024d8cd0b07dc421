"""Step-numbered orbax checkpoints of plain array trees, inside a run folder."""

import pathlib
import shutil
from typing import Any
import warnings

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


def restore_latest(mngr: ocp.CheckpointManager, target: Any, *,
                   fallback_sharding=None) -> tuple[Any, int]:
  """The latest checkpoint that reads, and its step.

  A checkpoint that fails to read while an older one reads (a file torn or
  damaged after it was written) is reported, moved to
  `<run>/checkpoints_unreadable/<step>/` (kept, not deleted, and out of the
  way of the step being saved again) and passed over. When none reads, the
  latest one's error is raised and nothing is moved.
  """
  steps = sorted(mngr.all_steps(), reverse=True)
  if not steps:
    raise FileNotFoundError(f"No checkpoint in {mngr.directory}.")
  failed = []
  for step in steps:
    try:
      tree = restore(mngr, target, step, fallback_sharding=fallback_sharding)
    except Exception as error:  # orbax and tensorstore raise bare Exceptions for bad files
      failed.append((step, error))
      continue
    for bad, error in failed:
      aside = _set_aside(mngr, bad)
      warnings.warn(f"Checkpoint {bad} in {mngr.directory} is unreadable "
                    f"({str(error).splitlines()[0][:200]}); moved it to {aside} and restored "
                    f"step {step} instead.", stacklevel=2)
    if failed:
      mngr.reload()
    return tree, step
  raise failed[0][1]


def _set_aside(mngr: ocp.CheckpointManager, step: int) -> pathlib.Path:
  folder = pathlib.Path(mngr.directory)
  aside = folder.parent / "checkpoints_unreadable" / str(step)
  aside.parent.mkdir(parents=True, exist_ok=True)
  if aside.exists():  # set aside before: keep both
    aside = aside.with_name(f"{step}-{len(list(aside.parent.iterdir()))}")
  shutil.move(str(folder / str(step)), aside)
  return aside
