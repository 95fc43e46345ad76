"""Atomic writes: a file under the output folder is either complete or absent."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pandas as pd

from bayes_simrmf import interrupts
from bayes_simrmf.hub.common import _METADATA_KEY, _STAGING_FORMAT


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def _write_parquet_atomic(frame: pd.DataFrame, path: Path, metadata: dict | None = None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata is not None:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), _METADATA_KEY: json.dumps(metadata).encode("utf-8")}
        )
    with interrupts.written_into_place(_temporary_name(path), path) as temporary:
        pq.write_table(table, temporary)


def _write_text_atomic(text: str, path: Path) -> None:
    with interrupts.written_into_place(_temporary_name(path), path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def _read_staged_metadata(path: Path) -> dict | None:
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
        payload = json.loads(metadata[_METADATA_KEY].decode("utf-8"))
    except Exception:  # unreadable or foreign file: treat as not staged, it will be pulled again
        return None
    return payload if payload.get("format") == _STAGING_FORMAT else None


