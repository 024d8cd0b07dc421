"""A run's parameters as a PyTorch state_dict for the model's twin.

  python -m interop.export --run=runs/smd/machine-1-6/mtad_gat/<run_id> --out=model.pt [--step=N]

Writes the best (lowest validation loss) parameters, or those saved at
--step, in the layout of interop/torch_models/<model>.py; load them with
`module.load_state_dict(torch.load("model.pt"))`. Never overwrites --out.
"""

import pathlib

from absl import app
from absl import flags
from absl import logging

from interop import convert
from tsad_jax import run_setup
from tsad_jax import runs
from tsad_jax import train

flags.DEFINE_string("run", None, "Run folder written by launch.train.")
flags.DEFINE_string("out", None, "The .pt file to write (must not exist).")
flags.DEFINE_integer("step", None, "Checkpoint step (default: best params).")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  config = runs.load_config(flags.FLAGS.run)
  setup = run_setup.build(config)  # the data fix the feature count
  entries = convert.model_entries(config.model, num_features=setup.prepared.num_features,
                                  window=config.data.window)
  params = train.load_params(pathlib.Path(flags.FLAGS.run), step=flags.FLAGS.step)
  train.check_params_fit(params, setup.model, window=config.data.window,
                         num_features=setup.prepared.num_features, source=flags.FLAGS.run)
  convert.save_state_dict(convert.flax_to_torch(params, entries), flags.FLAGS.out)
  print(f"Wrote {flags.FLAGS.out} ({len(entries)} layers' tensors of {config.model.name}).")


if __name__ == "__main__":
  flags.mark_flags_as_required(["run", "out"])
  app.run(main)
