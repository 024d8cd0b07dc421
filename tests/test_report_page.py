"""report.html in a real browser (Debian's chromium, driven by its chromedriver): the run page,
the detect page and the comparison page load with no console error, every image renders at a
non-zero size, the tables sort, and a screenshot is saved beside each page."""

import os
import pathlib
import re
import shutil

import pandas as pd
import pytest

from configs import tiny
from tsad_jax import deployment
from tsad_jax import detection
from tsad_jax import experiment
from tsad_jax import report_page
from tsad_jax.data import load

webdriver = pytest.importorskip("selenium.webdriver", reason="the test extra installs selenium")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-headless-shell")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module", name="browser")
def _browser():
  if not (CHROMIUM and CHROMEDRIVER):
    message = ("browser test: install Debian's chromium and chromium-driver (.ci/run does: "
               "apt-get install chromium chromium-driver)")
    if os.environ.get("CI"):
      pytest.fail(message)
    pytest.skip(message)
  os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium fetch a browser or driver
  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1600",
              "--disable-dev-shm-usage"):
    options.add_argument(arg)
  options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
  service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
  driver = webdriver.Chrome(options=options, service=service)
  yield driver
  driver.quit()


def _check_page(browser, page: pathlib.Path) -> list[list]:
  """Loads the page; asserts no console error and every image drawn; saves a screenshot."""
  browser.get(page.as_uri())
  errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
  assert errors == []
  images = browser.execute_script(
      "return Array.from(document.images).map(function(i){ var r = i.getBoundingClientRect();"
      " return [i.complete, i.naturalWidth, i.naturalHeight, r.width, r.height]; });")
  assert images, "the page shows no plot"
  for complete, width, height, shown_width, shown_height in images:
    assert complete and min(width, height, shown_width, shown_height) > 0
  shot = page.with_suffix(".png")
  assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
  return images


def _column(browser, index: int) -> list[str]:
  return browser.execute_script(
      f"return Array.from(document.querySelector('table.sortable').tBodies[0].rows)"
      f".map(function(r){{ return r.cells[{index}].textContent; }});")


@pytest.fixture(scope="module", name="run_dir")
def _run_dir(tmp_path_factory):
  config = tiny.get_config()
  config.eval.plots = True
  return experiment.train_and_evaluate(config, tmp_path_factory.mktemp("runs"))


def test_the_run_page_and_the_detect_page_render(browser, run_dir, tmp_path):
  page = run_dir / report_page.PAGE
  assert page.exists()  # written by the run itself
  images = _check_page(browser, page)
  assert len(images) >= 2  # the score overview and at least one event heatmap
  assert not re.search(r"""(src|href)\s*=\s*['"](?!data:)""", page.read_text())  # all inlined
  dataset = load(tiny.get_config().data)
  frame = pd.DataFrame(dataset.entities[0].test, columns=list(dataset.feature_names))
  frame.to_csv(tmp_path / "today.csv", index_label="timestamp")
  out = tmp_path / "detected"
  detection.run(deployment.load(run_dir), str(tmp_path / "today.csv"), out,
                detection.Options(progress=False))
  _check_page(browser, out / report_page.PAGE)


def test_the_comparison_page_sorts_its_columns(browser, run_dir, tmp_path):
  experiment.evaluate_run(run_dir, overrides=("threshold.methods=percentile",))
  page = report_page.comparison_page(run_dir.parents[3])
  browser.get(page.as_uri())
  header = browser.find_elements("css selector", "table.sortable th")
  names = [h.text for h in header]
  column = names.index("flagged")
  before = [float(v) for v in _column(browser, column)]
  assert len(before) == 2 and before[0] != before[1]
  header[column].click()
  descending = [float(v) for v in _column(browser, column)]
  header[column].click()
  ascending = [float(v) for v in _column(browser, column)]
  assert descending == sorted(before, reverse=True) and ascending == sorted(before)
  assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
