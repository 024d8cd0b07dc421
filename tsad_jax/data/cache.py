"""Parsed source files cached as `.npz`, keyed by source path, invalidated on change.

An entry stores the parser's arrays plus the source's path, size and mtime_ns;
a source whose size or mtime_ns differs is parsed again and the entry
rewritten (atomically: temp file + `os.replace`). Entries never hold pickles.
A cache folder that cannot be written only costs a warning.
"""

from collections.abc import Callable
from collections.abc import Mapping
import hashlib
import os
from pathlib import Path
import tempfile
import warnings
import zipfile

import numpy as np

CACHE_ENV = "TSAD_JAX_CACHE"

_FORMAT = "1"
_SOURCE = "_source"
_FINGERPRINT = "_fingerprint"

Arrays = dict[str, np.ndarray]


def resolve_dir(configured: str = "") -> Path:
  """`data.cache_dir` if set, else `$TSAD_JAX_CACHE`, else `~/.cache/tsad_jax`."""
  if configured:
    return Path(configured).expanduser()
  from_env = os.environ.get(CACHE_ENV)
  return Path(from_env).expanduser() if from_env else Path.home() / ".cache" / "tsad_jax"


def entry_path(directory: Path, source: Path, key: str = "") -> Path:
  """Where the entry for `source` (parsed as `key` says) lives."""
  digest = hashlib.sha256(f"{_FORMAT}\0{source}\0{key}".encode()).hexdigest()[:24]
  return Path(directory) / f"{source.parent.name}-{source.stem}-{digest}.npz"


def cached(source: os.PathLike, parse: Callable[[Path], Mapping[str, np.ndarray]], *,
           directory: Path | None, key: str = "") -> Arrays:
  """`parse(source)`, from the cache when the source has not changed since.

  Args:
    source: the file to parse.
    parse: pure function of the file returning named arrays (names must not
      start with "_"; no object arrays).
    directory: cache folder; None disables caching.
    key: distinguishes parses of the same file with different options.

  Returns:
    The parsed arrays.
  """
  source = Path(source).resolve()
  if directory is None:
    return dict(parse(source))
  fingerprint = _fingerprint(source)
  entry = entry_path(directory, source, key)
  hit = _read(entry, source, fingerprint)
  if hit is not None:
    return hit
  arrays = dict(parse(source))
  _write(entry, arrays, source, fingerprint)
  return arrays


def _fingerprint(source: Path) -> np.ndarray:
  status = source.stat()
  return np.array([status.st_size, status.st_mtime_ns], dtype=np.int64)


def _read(entry: Path, source: Path, fingerprint: np.ndarray) -> Arrays | None:
  try:
    with np.load(entry, allow_pickle=False) as stored:
      if (str(stored[_SOURCE]) != str(source)
          or not np.array_equal(stored[_FINGERPRINT], fingerprint)):
        return None
      return {name: stored[name] for name in stored.files if not name.startswith("_")}
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
    return None


def _write(entry: Path, arrays: Arrays, source: Path, fingerprint: np.ndarray) -> None:
  try:
    entry.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=entry.parent, prefix=f".{entry.name}.", suffix=".tmp")
  except OSError as error:
    _warn_unwritable(entry, source, error)
    return
  try:
    with os.fdopen(handle, "wb") as f:
      np.savez(f, **arrays, **{_SOURCE: np.array(str(source)), _FINGERPRINT: fingerprint})
    os.replace(temp, entry)
  except OSError as error:
    _warn_unwritable(entry, source, error)
  finally:
    if os.path.exists(temp):
      os.remove(temp)


def _warn_unwritable(entry: Path, source: Path, error: OSError) -> None:
  warnings.warn(
      f"Cannot write the data cache {entry} ({error}); parsing {source} without caching. "
      f"Point --config.data.cache_dir or ${CACHE_ENV} at a writable folder to cache it.",
      RuntimeWarning, stacklevel=4)
