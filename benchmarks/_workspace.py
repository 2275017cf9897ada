"""Where the development workspace keeps its data: the benchmarks' default.

The library never searches for data; the benchmark scripts default to
``--data-dir``, else ``$DEEPCLUSTER_SK_DATA``, else ``../shared/data``
beside the repository (the workspace layout).
"""

import json
import os
from pathlib import Path

from deepcluster_sk.datasets import DATA_ENV_VAR

#: ``../shared/data`` beside the repository.
WORKSPACE_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def data_dir(path=None):
    """``path`` when given, else ``$DEEPCLUSTER_SK_DATA``, else :data:`WORKSPACE_DATA`."""
    return path or os.environ.get(DATA_ENV_VAR) or str(WORKSPACE_DATA)


def read_rows(paths):
    """The JSON lines of the files ``paths``, in order, blank lines skipped (``--table-from``)."""
    rows = []
    for path in paths:
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def emit(row, out=None):
    """Print ``row`` as a JSON line, and append the line to the file ``out`` when given."""
    line = json.dumps(row)
    print(line, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")
