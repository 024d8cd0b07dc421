"""Sweep specs: `python -m launch.sweep --config=configs/sweeps/<name>.py`."""
