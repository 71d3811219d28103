"""Writing the demo dataset to Parquet or CSV."""

from __future__ import annotations

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from contracts.errors import InvalidInput
from training import demo_data


def write_demo_data(output: str, rows: int, seed: int = 1, shift: float = 0.0) -> str:
    if rows < 1:
        raise InvalidInput("--rows: must be at least 1")
    table = demo_data.to_table(demo_data.generate(rows, seed=seed, shift=shift))
    if output.endswith(".parquet") or output.endswith(".pq"):
        pq.write_table(table, output)
    elif output.endswith(".csv"):
        pacsv.write_csv(table, output)
    else:
        raise InvalidInput("--output: use a .parquet or .csv file name")
    return output
