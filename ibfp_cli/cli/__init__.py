"""The `ibfp` command line: parse arguments, call the library, report. No logic lives here.

`app` assembles the commands (one module per group: `track`, `annotate`, `batch`, `dataset`,
`evaluate`, `train`; what they share in `common`); `run` is the `ibfp` console command.
"""

from .app import app, run

__all__ = ["app", "run"]
