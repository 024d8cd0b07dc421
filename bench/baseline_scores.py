"""Threshold-free metrics of the baselines and of random scores on every SMD machine.

  python -m bench.baseline_scores [--data_root=$TSAD_JAX_DATA_ROOT] [--metrics=VUS-PR,AUC-PR,PA-F1]

Shows why point-adjusted F1 alone proves nothing: a uniform random score gets
a high PA-F1 and a low VUS-PR. The baselines are scored as in every run's
summary (`baselines.calibrated`, the default causal pipeline).
"""

import os
import pathlib

from absl import app
from absl import flags
import ml_collections
import numpy as np

from configs import smd_lstmae
from tsad_jax import alarms
from tsad_jax import baselines
from tsad_jax import metrics
from tsad_jax import runs
from tsad_jax.data import DATA_ROOT_ENV
from tsad_jax.data import load

_DATA_ROOT = flags.DEFINE_string("data_root", os.environ.get(DATA_ROOT_ENV, ""),
                                 "Folder holding ServerMachineDataset/.")
_METRICS = flags.DEFINE_list("metrics", ["VUS-PR", "AUC-PR", "Standard-F1", "PA-F1"],
                             "Threshold-free metrics to print.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the random scores.")


def main(argv):
  del argv
  config: ml_collections.ConfigDict = smd_lstmae.get_config("all")
  config.data.root = str(pathlib.Path(_DATA_ROOT.value) / "ServerMachineDataset")
  dataset = load(config.data)
  print(f"machine: {runs.machine()}; data: {config.data.root}; scores: {alarms.mode(config)}")
  rng = np.random.default_rng(_SEED.value)
  rows = {}
  for entity in dataset.entities:
    totals = {"random": rng.uniform(size=len(entity.test))}
    totals.update({name: baselines.calibrated(name, entity, config).test.sum(axis=1)
                   for name in baselines.BASELINES})
    for detector, scores in totals.items():
      rows.setdefault(detector, {})[entity.name] = metrics.threshold_free(
          entity.labels, scores, sliding_window=config.eval.vus_window)
  header = f"{'detector':10s} {'entity':14s}" + "".join(f"{m:>14s}" for m in _METRICS.value)
  print(header)
  for detector, per_entity in rows.items():
    for entity, figures in per_entity.items():
      print(f"{detector:10s} {entity:14s}" + "".join(f"{figures[m]:14.4f}" for m in _METRICS.value))
    means = [np.mean([f[m] for f in per_entity.values()]) for m in _METRICS.value]
    print(f"{detector:10s} {'mean':14s}" + "".join(f"{v:14.4f}" for v in means))


if __name__ == "__main__":
  app.run(main)
