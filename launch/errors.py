"""Every launcher's way out on a known error: one line naming it, exit status 2.

A known error is bad data (`DataError`), a bad config or flag value
(`ValueError`) or a missing or existing file or folder (`OSError`). Anything
else is a bug and keeps its traceback; `--verbose` shows the traceback of a
known error too.
"""

import sys

from absl import app
from absl import flags

_VERBOSE = flags.DEFINE_bool("verbose", False, "Show the Python traceback of a known error.")
KNOWN_ERRORS = (ValueError, OSError)


def run(main) -> None:
  """`absl.app.run(main)`, with known errors reported as one line."""

  def reported(argv):
    try:
      return main(argv)
    except KNOWN_ERRORS as error:
      if _VERBOSE.value:
        raise
      print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
      sys.exit(2)

  app.run(reported)
