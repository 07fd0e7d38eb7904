"""Where a batch's full rows live when its run keeps a pointer to them, not a copy.

A batch run keeps what a cycle needs (profile, sample, narrow columns); retraining needs
the full rows. Small batches keep a copy of them; a batch logged from a file above
``[batches] copy_max_rows`` rows, or by the Spark engine, records where they are instead:
the tag ``driftctl.rows_source`` (a path, or ``table:NAME``), ``driftctl.rows_fingerprint``
(what the rows were when logged) and ``driftctl.rows_engine`` (which engine reads them
back). Reading them back checks the fingerprint: rows that changed since are refused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from controller import tracking
from controller._errors import InputError

BATCH_PATH = "driftctl/batch.parquet"  # a batch's rows: all of them, or the narrow columns
ID, LABEL = "__id__", "__label__"  # the columns of late labels
BATCH = "__batch__"  # in a window's rows and its late labels: the batch run of each
SOURCE = tracking.TAG + "rows_source"
FINGERPRINT = tracking.TAG + "rows_fingerprint"
ENGINE = tracking.TAG + "rows_engine"
UNSCORED = tracking.TAG + "unscored"  # why the champion could not score a batch


def file_fingerprint(path: str | Path) -> str:
    """The size and SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return f"{Path(path).stat().st_size} bytes, sha256 {digest.hexdigest()[:32]}"


def pointer(path: str | Path, engine: str, fingerprint: str) -> dict[str, str]:
    """The tags of a batch whose rows stay at ``path`` (a file or ``table:NAME``)."""
    return {SOURCE: str(path), FINGERPRINT: fingerprint, ENGINE: engine}


def unchanged(source: str, then: str | None, now: str) -> None:
    """Refuse rows whose fingerprint is not the one they were logged with."""
    if now != then:
        raise InputError(
            f"the rows of {source} changed since they were logged "
            f"(then: {then}; now: {now})",
            "restore the source as it was when the batch was logged, or log it again as a "
            "new batch",
        )


def read_file_rows(tags: dict, read) -> pd.DataFrame:
    """The rows of a batch the pandas engine logged with a pointer, read by ``read(path)``
    after checking the file is unchanged (same rows, same order as when logged)."""
    source = tags[SOURCE]
    if not Path(source).is_file():
        raise InputError(
            f"the rows of this batch were kept at {source}, which no longer exists",
            "restore the file, or set [batches] rows = 'copy' for batches you retrain from",
        )
    unchanged(source, tags.get(FINGERPRINT), file_fingerprint(source))
    return read(source)
