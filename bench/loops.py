"""Wall time of the training loop for a run, a fleet and a sweep's trials, for A/B runs.

  python -m bench.loops --job=run|fleet|sweep [--epochs=2]

LSTM-AE (configs/smd_lstmae.py) on SMD machines from $TSAD_JAX_DATA_ROOT:
`run` trains machine-1-6 (`train.fit`), `fleet` trains three machines as one
fleet (`fleet.fit`), `sweep` trains four learning rates on machine-1-6 together
(`sweep.train_together`). Those three calls keep their signatures across
commits, so this file, copied into an older checkout, times the same work there
(run the two checkouts' commands in turn, several times, and compare their
whole-process times pair by pair; docs/performance/notes.md has the figures).

Prints the in-process training seconds (compilation included, early stopping off).
"""

import copy
import pathlib
import tempfile
import time

from absl import app
from absl import flags

from tsad_jax import config_names
from tsad_jax import fleet
from tsad_jax import run_setup
from tsad_jax import sweep
from tsad_jax import train

JOB = flags.DEFINE_enum("job", "run", ["run", "fleet", "sweep"], "What to train.")
EPOCHS = flags.DEFINE_integer("epochs", 2, "Epochs to train.")
MACHINES = ("machine-1-6", "machine-1-7", "machine-2-1")
RATES = (1e-3, 3e-3, 1e-2, 3e-2)


def _config(entity: str, learning_rate: float = 1e-3):
  config = config_names.load("smd_lstmae")
  config.data.entity = entity
  config.train.max_epochs, config.train.patience = EPOCHS.value, 0
  config.train.progress_bar = False
  config.optim.learning_rate = learning_rate
  return config


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as tmp:
    folder = pathlib.Path(tmp)
    if JOB.value == "run":
      setup = run_setup.build(_config(MACHINES[0]))
      started = time.perf_counter()
      train.fit(setup.config, setup.prepared, folder, model_lib=setup.model_lib,
                model=setup.model)
    elif JOB.value == "fleet":
      setups = [run_setup.build(_config(name)) for name in MACHINES]
      started = time.perf_counter()
      fleet.fit(copy.deepcopy(setups[0].config), setups, [folder / name for name in MACHINES])
    else:
      configs = [_config(MACHINES[0], rate) for rate in RATES]
      run_setup.build(configs[0])  # the data cached before the clock starts
      started = time.perf_counter()
      sweep.train_together(configs)
    print(f"{JOB.value}: {time.perf_counter() - started:.2f} s training")


if __name__ == "__main__":
  app.run(main)
