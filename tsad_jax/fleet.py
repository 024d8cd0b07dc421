"""Fleet training: one model per entity (SMD machine, SMAP/MSL channel), all in one program.

Each member is the run `launch.train` makes for its entity alone with the same
config and seed, in a run folder of its own: `train.fit_members` trains them
all in one program.
"""

import copy
import dataclasses
import pathlib

import jax
import ml_collections
import pandas as pd

from tsad_jax import experiment
from tsad_jax import run_setup
from tsad_jax import runs
from tsad_jax import summaries
from tsad_jax import train
from tsad_jax.data import fleet_entities


@dataclasses.dataclass(frozen=True)
class MemberResult:
  name: str
  run_dir: pathlib.Path
  status: str  # trained | already trained | stopped after N steps | the divergence message


def member_configs(config: ml_collections.ConfigDict) -> list[ml_collections.ConfigDict]:
  """One config per entity of `config.data.entities`: data.entity set, data.entities cleared."""
  if not config.data.entities:
    raise ValueError("config.data.entities is empty: name the fleet's entities (\"all\", or a "
                     "comma list of SMD machines or SMAP/MSL channels).")
  out = []
  for name in fleet_entities(config.data):
    member = copy.deepcopy(config)
    member.data.entity, member.data.entities = name, ""
    out.append(member)
  return out


def train_fleet(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                stop_after_steps: int | None = None,
                params_from: run_setup.ParamsFrom | None = None,
                new_named: bool = True) -> list[MemberResult]:
  """Trains one model per entity of `config.data.entities` and scores each into its run folder.

  All members share one run id, so `config.run_id` resumes the whole fleet:
  members already scored are kept, the others continue from their checkpoints.
  `new_named`: as `runs.open_run`.
  """
  if jax.process_count() > 1:
    raise ValueError("launch.train_fleet runs in one process; run one fleet per host, each with "
                     "its own config.data.entities.")
  configs = member_configs(config)
  setups = [run_setup.build(c) for c in configs]
  widths = {s.config.data.entity: s.prepared.num_features for s in setups}
  if len(set(widths.values())) > 1:
    raise ValueError(f"The fleet's entities have different numbers of features ({widths}); one "
                     "program trains models of one shape: list entities of one width.")
  run_id = config.run_id or runs.new_run_id([runs.run_parent(workdir, c) for c in configs])
  new_named = new_named or not config.run_id  # a fresh id names a new fleet
  run_dirs = []
  for c in configs:
    with c.unlocked():
      c.run_id = run_id
    run_dirs.append(runs.open_run(workdir, c, new_named=new_named))
  todo = [i for i, d in enumerate(run_dirs) if not (d / "summary.json").exists()]
  results = {i: MemberResult(configs[i].data.entity, d, "already trained")
             for i, d in enumerate(run_dirs) if i not in todo}
  if todo:
    initial_params = run_setup.initial_params(setups[todo[0]], params_from)
    fits = fit(config, [setups[i] for i in todo], [run_dirs[i] for i in todo],
               stop_after_steps=stop_after_steps, initial_params=initial_params)
    for i, fitted in zip(todo, fits, strict=True):
      status = fitted if isinstance(fitted, str) else "trained"
      if isinstance(fitted, train.FitResult):
        if fitted.finished:
          experiment.report_trained(setups[i], fitted, run_dirs[i])
        else:
          status = f"stopped after {fitted.steps} steps"
      results[i] = MemberResult(configs[i].data.entity, run_dirs[i], status)
  return [results[i] for i in range(len(configs))]


def fit(config: ml_collections.ConfigDict, setups: list[run_setup.Setup],
        run_dirs: list[pathlib.Path], *, stop_after_steps: int | None = None,
        initial_params=None) -> list[train.FitResult | str]:
  """`train.fit` for every member at once (`train.fit_members`), into each one's run folder.

  Returns:
    Per member, its FitResult, or "<entity>: <why it diverged>".
  """
  members = [train.Member(s.config.data.entity, s.prepared.train, s.prepared.train_starts,
                          s.prepared.val_starts, run_dir)
             for s, run_dir in zip(setups, run_dirs, strict=True)]
  results = train.fit_members(config, members, model_lib=setups[0].model_lib,
                              model=setups[0].model, initial_params=initial_params,
                              stop_after_steps=stop_after_steps)
  return [f"{m.name}: {r.error}" if r.error else r for m, r in zip(members, results, strict=True)]


def write_table(results: list[MemberResult], path: pathlib.Path) -> list[dict]:
  """One row per member (status, leading metrics, run folder) into the CSV `path`."""
  rows = []
  for r in results:
    row = {"entity": r.name, "status": r.status}
    if (r.run_dir / "summary.json").exists():
      summary = summaries.load_summary(r.run_dir)
      figures = summary["threshold_free"]["mean"]
      row.update({k: figures[k] for k in ("VUS-PR", "AUC-PR")})
      row["epochs"] = summary.get("training", {}).get("epochs")
    row["run_dir"] = str(r.run_dir)
    rows.append(row)
  path.parent.mkdir(parents=True, exist_ok=True)
  pd.DataFrame(rows).to_csv(path, index=False)
  return rows
