"""The library stands alone: nothing in tsad_jax/ imports the layers built on it."""

import ast
import pathlib

LIBRARY = pathlib.Path(__file__).resolve().parents[1] / "tsad_jax"
LAYERS_ABOVE = {"interop", "launch", "bench"}


def imported_packages(source: str) -> set[str]:
  """Top-level package of every import statement, lazy ones inside functions included."""
  packages = set()
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      packages |= {alias.name.split(".")[0] for alias in node.names}
    elif isinstance(node, ast.ImportFrom) and node.level == 0:
      packages.add(node.module.split(".")[0])
  return packages


def test_the_reader_sees_lazy_imports():
  source = "import os.path\ndef f():\n  from interop import convert\n  import bench.report\n"
  assert imported_packages(source) == {"os", "interop", "bench"}


def test_tsad_jax_imports_none_of_interop_launch_or_bench():
  files = sorted(LIBRARY.rglob("*.py"))
  assert len(files) > 20
  offending = {str(f.relative_to(LIBRARY.parent)): sorted(imported_packages(f.read_text())
                                                          & LAYERS_ABOVE)
               for f in files}
  assert {f: p for f, p in offending.items() if p} == {}
