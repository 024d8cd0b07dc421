"""Accuracy guards: a short real-data run whose VUS-PR must stay above floors, so that a
regression in training, scoring, the causal alarm pipeline or the metrics fails CI.

The floors are this run's own figures measured when the guard was written (Intel Xeon, 2
cores, jax 0.10.2: MTAD-GAT 0.443, zscore 0.813, pca 0.853, causal mode, SMD machine-1-6),
less a margin of about 0.04 for float differences between machines. The full benchmark's
figures for the same machine are in docs/RESULTS.md.
"""

from tests.test_mtad_gat import short_smd_config
from tsad_jax import experiment
from tsad_jax import summaries

FLOORS = {"model": 0.40, "zscore": 0.77, "pca": 0.81}


def test_a_short_mtad_gat_run_on_machine_1_6_keeps_its_vus_pr(tmp_path, data_root):
  config = short_smd_config(data_root)
  summary = summaries.load_summary(experiment.train_and_evaluate(config, tmp_path))
  assert summary["scoring"]["mode"].startswith("causal")
  figures = {"model": summary["threshold_free"]["mean"]["VUS-PR"]}
  figures.update({name: baseline["threshold_free"]["mean"]["VUS-PR"]
                  for name, baseline in summary["baselines"].items()})
  for name, floor in FLOORS.items():
    assert figures[name] >= floor, f"{name}: VUS-PR {figures[name]:.3f} fell below {floor}"
