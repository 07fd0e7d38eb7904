"""Reading tables and checking that they can be monitored."""

from __future__ import annotations

import lzma
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from controller._errors import InputError, shown
from controller.profiles.profile import FeatureProfile, kind_of, numeric_values
from controller.statistics.quality import check_schema

# What the readers raise on a file that is not a complete, valid table: parse and decode
# errors (ValueError, pyarrow's and pandas' included), I/O errors (OSError, a bad gzip or
# bz2 stream), damaged compressed files (EOFError when truncated, zlib, lzma and zip
# errors), pyarrow's other errors, and a compression whose optional library is missing.
UNREADABLE = (
    ValueError, OSError, EOFError, ImportError, zlib.error, lzma.LZMAError,
    zipfile.BadZipFile, pa.ArrowException,
)


def read_table(path: str | Path, text_columns: list[str] = ()) -> pd.DataFrame:
    """Read a parquet or CSV file (chosen by extension) into a non-empty DataFrame.

    ``text_columns`` of a CSV file are read as strings, whatever they look like.
    """
    path = Path(path)
    suffixes = "".join(path.suffixes).lower()
    if path.is_dir():
        raise InputError(
            f"data file {str(path)!r} is a directory, not a file",
            "pass the path of a parquet or CSV file (the Spark engine, --engine spark, reads "
            "a directory of parquet files)",
        )
    if not path.is_file():
        raise InputError(
            f"data file {str(path)!r} does not exist or is not a file",
            "pass the path of a parquet or CSV file",
        )
    parquet = ".parquet" in suffixes or suffixes.endswith(".pq")
    if not parquet and ".csv" not in suffixes:
        raise InputError(
            f"cannot tell the format of {str(path)!r} from its extension",
            "name the file *.parquet or *.csv (optionally *.csv.gz)",
        )
    if path.stat().st_size == 0:
        raise InputError(
            f"data file {str(path)!r} is empty (0 bytes)",
            "pass a file with a header and at least one row of data",
        )
    try:
        if parquet:
            schema = pq.read_schema(path)
            _check_header(path, schema.names)
            _check_flat(schema)
            frame = pd.read_parquet(path)
        else:
            # Read raw, as pandas renames a repeated name (x1, x1.1) when it reads a header.
            header = pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0].tolist()
            _check_header(path, header)
            frame = pd.read_csv(path, dtype={c: str for c in text_columns if c in header})
    except UnicodeDecodeError as exc:
        raise InputError(
            f"cannot read {str(path)!r}: it is not UTF-8 text ({exc.reason} at byte "
            f"{exc.start}: {exc.object[exc.start:exc.start + 1]!r})",
            "save it as UTF-8, e.g. iconv -f LATIN1 -t UTF-8 old.csv > new.csv (or write "
            "parquet, which has no such question)",
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise InputError(
            f"data file {str(path)!r} holds no header and no rows",
            "pass a file with a header and at least one row of data",
        ) from exc
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().removeprefix("Error tokenizing data. C error: ")
        raise InputError(
            f"cannot read {str(path)!r} as CSV: {detail[:300]}",
            "give every row as many fields as the header has (quote a field that holds a "
            "comma)",
        ) from exc
    except UNREADABLE as exc:
        raise InputError(
            f"cannot read {str(path)!r}: {type(exc).__name__}: {str(exc).strip()[:500]}",
            "check that the file is a complete, valid parquet or CSV file",
        ) from exc
    if frame.empty:
        raise InputError(
            f"{str(path)!r} holds no rows", "pass a file with at least one row of data"
        )
    return frame


def _check_header(path: Path, names: list) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1}, key=str)
    if dupes:
        raise InputError(
            f"{str(path)!r} has duplicate column names {shown(dupes)}",
            "give every column a distinct name",
        )


def _check_flat(schema: pa.Schema) -> None:
    """Nested columns (structs, lists, maps) hold no value driftctl can profile."""
    nested = [f for f in schema if pa.types.is_nested(f.type)]
    if nested:
        raise InputError(
            f"column {nested[0].name!r} holds nested values ({str(nested[0].type)[:100]}), "
            "which driftctl cannot monitor"
            + (f"; so do {shown([f.name for f in nested[1:]])}" if len(nested) > 1 else ""),
            "flatten it into one column per field (pandas.json_normalize, or Spark's "
            "select('col.*')) before logging",
        )


def check_names(frame: pd.DataFrame) -> None:
    """Column names must be unique strings."""
    bad = [c for c in frame.columns if not isinstance(c, str)]
    if bad:
        raise InputError(
            f"column names must be strings; got {bad[:5]!r} "
            f"({', '.join(sorted({type(c).__name__ for c in bad}))})",
            "name the columns, e.g. frame.columns = [str(c) for c in frame.columns]",
        )
    dupes = sorted(frame.columns[frame.columns.duplicated()].unique())
    if dupes:
        raise InputError(
            f"duplicate column names {shown(dupes)}", "give every column a distinct name"
        )


def require_values(frame: pd.DataFrame, columns: list[str]) -> None:
    """Reject reference data with an empty column or infinite values: bins learned from it
    would be meaningless. (A production batch with such values is logged, and its cycle
    triages them as a data-quality fault.)"""
    for name in columns:
        series = frame[name]
        kind = kind_of(series)
        if series.isna().all():
            raise InputError(
                f"column {name!r} is entirely missing in the baseline data ({len(series)} rows)",
                "fix the upstream data, or drop the column if the model does not use it",
            )
        if kind == "numeric":
            x = numeric_values(series)
            n_inf = int(np.isinf(x).sum())
            if n_inf:
                raise InputError(
                    f"column {name!r} holds {n_inf} infinite value(s) in the baseline data",
                    "replace inf with NaN (counted as missing) or with a finite value",
                )


def require_label_columns(columns, id_col: str, target: str, where: str) -> None:
    """The id and label columns named for late labels must be among ``columns``."""
    for col, flag in ((id_col, "--id-col"), (target, "--target")):
        if col not in columns:
            raise InputError(
                f"column {col!r} ({flag}) is not in {where} (columns: {shown(columns)})",
                f"pass the name of the {'id' if flag == '--id-col' else 'label'} column "
                f"with {flag}",
            )


def require_schema(
    frame: pd.DataFrame, profiles: dict[str, FeatureProfile], declared: list[str]
) -> None:
    """A batch must hold the baseline's features, with the same types, and nothing else.

    ``declared`` lists the non-feature columns named on the command line (id, time stamp,
    prediction, target), which are allowed.
    """
    found: dict[str, list[str]] = {}
    for finding in check_schema(profiles, frame, ignore=tuple(declared)):
        found.setdefault(finding.check, []).append(finding.feature)
    if "missing_column" in found:
        raise InputError(
            f"missing feature column(s) {shown(found['missing_column'])}; the baseline has "
            f"{shown(profiles)}",
            "add the columns to the batch (NaN where a value is unknown)",
        )
    if "extra_column" in found:
        raise InputError(
            f"unexpected column(s) {shown(found['extra_column'])}, not features of the model's "
            "baseline",
            "drop them, or name them with --id-col, --timestamp-col, --prediction-col or --target",
        )
    if "type_mismatch" in found:
        name = found["type_mismatch"][0]
        series, profile = frame[name], profiles[name]
        try:
            kind = kind_of(series)
        except InputError:  # values of no one type, such as numbers mixed with text
            kind = f"{pd.api.types.infer_dtype(series, skipna=True)} values"
        raise InputError(
            f"column {name!r} is {profile.kind} in the baseline but {kind} here "
            f"(dtype {series.dtype}, values like {shown(series.dropna(), 3)})",
            f"cast the column back to its baseline type ({profile.dtype})",
        )
