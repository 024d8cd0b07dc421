"""bench.scale: the fleet and memory sections report what they measure."""

import pytest

from bench import scale


def test_fleet_and_memory_sections_measure_what_they_say():
  fleet = scale.fleet_vs_sequential("tiny", ["a", "b"], epochs=1)
  sequential, together, speedup = fleet.splitlines()[-1].strip("|").split("|")
  assert float(speedup.strip().rstrip("x")) == pytest.approx(
      float(sequential) / float(together), rel=0.05)
  memory = scale.scoring_memory(["tiny"], "synthetic").splitlines()[-1]
  name, points, seconds, before, after = [cell.strip() for cell in memory.strip("|").split("|")]
  assert name == "tiny" and points == "600" and float(seconds) > 0
  assert float(after.replace(",", "")) >= float(before.replace(",", "")) > 0
