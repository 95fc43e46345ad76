"""What the commands that use a saved model share: reading id tables, and folding in the questions and LLMs
the model does not hold (with the texts and metadata of the data it was fitted on)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import click

from bayes_simrmf.cli.common import _say
from bayes_simrmf.options import DEFAULT_EMBEDDING_MODEL

if TYPE_CHECKING:
    import pandas as pd


def _read_table_file(path: str, what: str):
    """A CSV or parquet file as a DataFrame (ConfigError naming the file otherwise)."""
    import pandas as pd

    from bayes_simrmf.errors import ConfigError

    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{what} file {path} could not be read: {error}") from None
    raise ConfigError(f"{what} file {path} must end in .csv or .parquet")


def _id_column(frame, where: str, column: str, requirement: str):
    """``frame[column]`` as str ids; ConfigError naming ``where`` if the column is absent or has gaps."""
    import numpy as np

    from bayes_simrmf.errors import ConfigError

    if column not in frame.columns:
        raise ConfigError(f"{where}: {requirement}; has {list(frame.columns)}")
    if frame[column].isna().any():
        rows = np.flatnonzero(frame[column].isna().to_numpy())[:5].tolist()
        raise ConfigError(f"{where}: {'LLM' if column == 'llm' else column} ids are missing in rows {rows}")
    return frame[column].astype(str)


def _items_file(path: str, model):
    """The items file: question ids, and the rows of questions the model does not hold (to fold in from their
    text; without a text column they stop with what to do)."""
    import numpy as np

    from bayes_simrmf.errors import ConfigError, UnknownEntityError

    from bayes_simrmf.data.tables import decode_text_column

    frame = decode_text_column(_read_table_file(path, "--items"), "text", f"--items {path}")
    ids = _id_column(frame, f"--items {path}", "item", "needs an item column")
    repeated = ids.duplicated().to_numpy()
    if repeated.any():
        raise ConfigError(f"--items {path}: item ids repeat, e.g. {ids[repeated].head(5).tolist()} "
                          f"(rows {np.flatnonzero(repeated)[:5].tolist()})")
    new = ~ids.isin(np.asarray(model.items_, dtype=str)).to_numpy()
    if new.any() and "text" not in frame.columns:
        raise UnknownEntityError(
            f"--items {path}: {int(new.sum())} question id(s) are not in the model, e.g. {ids[new].head(5).tolist()}; "
            "add a text column to fold them in from their text, or route questions the model holds"
        )
    if new.any() and frame.loc[new, "text"].isna().any():
        rows = np.flatnonzero(new & frame["text"].isna().to_numpy())[:5].tolist()
        raise ConfigError(f"--items {path}: new questions need a text to be folded in; rows {rows} have none")
    new_items = frame.loc[new].assign(item=ids[new].to_numpy()).reset_index(drop=True)
    return ids, new_items


def _with_dataset_columns(rows, dataset, where: str):
    """``rows`` of new LLMs' metadata with every column of the dataset's llms table that they lack added as unknown
    (a note names them): a user's file may carry only some of the leaderboard's fields."""
    if dataset is None:
        return rows
    missing = [column for column in dataset.llms.columns if column not in rows.columns]
    if missing:
        click.echo(f"note: {where} has no column(s) {', '.join(missing)}: unknown for its LLM(s)")
        rows = rows.assign(**{column: None for column in missing})
    return rows


def _new_llms(frame, model, dataset, path: str):
    """Rows of the candidates the model does not hold, with metadata from the --llms file's own columns
    (beyond llm and cost) or else from the dataset's llms table."""
    import numpy as np

    from bayes_simrmf.errors import UnknownEntityError

    ids = frame["llm"].astype(str)
    new = ~ids.isin(np.asarray(model.llms_, dtype=str)).to_numpy()
    if not new.any():
        return None
    metadata_columns = [column for column in frame.columns if column not in ("llm", "cost")]
    if metadata_columns:
        rows = frame.loc[new, ["llm", *metadata_columns]].assign(llm=ids[new].to_numpy()).reset_index(drop=True)
        return _with_dataset_columns(rows, dataset, f"--llms {path}")
    if dataset is not None:
        known = dataset.llms.assign(llm=dataset.llms["llm"].astype(str)).set_index("llm")
        found = ids[new][ids[new].isin(known.index)]
        if len(found) == new.sum():
            return known.loc[found.to_numpy()].reset_index()
    raise UnknownEntityError(
        f"--llms {path}: {int(new.sum())} LLM id(s) are not in the model, e.g. {ids[new].head(5).tolist()}, and no "
        "metadata was found for them; add leaderboard metadata columns (e.g. params_billions, architecture, "
        "model_type, base_model) to the file to fold them in, or route among the model's LLMs"
    )


def _dataset_at(folder: str, unknown_entities: str, tables: tuple[str, ...] = ("responses", "items", "llms")):
    """The ``tables`` of the dataset in ``folder``, loaded once per state of its files (a command in the same
    process, e.g. a test or a notebook calling the CLI, gets it again only when the files are unchanged)."""
    stamps = tuple(sorted((entry.name, entry.stat().st_mtime_ns, entry.stat().st_size)
                          for entry in Path(folder).iterdir() if entry.is_file()))
    return _load_dataset_at(folder, unknown_entities, tables, stamps)


@lru_cache(maxsize=2)
def _load_dataset_at(folder: str, unknown_entities: str, tables: tuple[str, ...], stamps: tuple):
    from bayes_simrmf.data import load_dataset

    return load_dataset(folder, unknown_entities=unknown_entities, log=None, tables=tables)


def _same_responses(folder: str, saved) -> bool:
    """Whether ``folder``'s responses file is byte for byte the one the model was fitted on (its digest is
    recorded) under a policy that leaves the side tables as they are: then the side tables alone are loaded."""
    from bayes_simrmf.data import responses_digest
    from bayes_simrmf.errors import DataError

    extra = saved.config.get("extra", {})
    recorded = extra.get("responses_digest")
    if not recorded or extra.get("unknown_entities", "error") not in ("error", "drop"):
        return False
    try:
        return responses_digest(folder) == recorded
    except (DataError, OSError):  # the full load says what is wrong with the folder
        return False


def _optional_dataset(data: str | None, saved, *, items: bool = True):
    """The dataset the model was fitted on: --data, else the folder its config records, else the shared data
    folder of that name; None where none of them is a folder (--data that is not a folder is refused). Where the
    folder's responses file is the one the model was fitted on, only its side tables are read (all that folding
    new entities in uses): the llms table, and the items table with ``items``."""
    from bayes_simrmf.data import default_data_dir
    from bayes_simrmf.errors import ConfigError

    extra = saved.config.get("extra", {})
    recorded = extra.get("data_source") or ""
    name = extra.get("data") or ""
    for candidate in ([data] if data else [recorded, str(default_data_dir() / name) if name else ""]):
        if candidate and Path(candidate).is_dir():
            side = ("items", "llms") if items else ("llms",)
            tables = side if _same_responses(str(candidate), saved) else ("responses", "items", "llms")
            dataset = _dataset_at(str(candidate), extra.get("unknown_entities", "error"), tables)
            _check_fitted_data(dataset, saved, candidate, given=bool(data))
            return dataset
    if data:
        raise ConfigError(f"--data {data} is not a folder")
    return None


def _check_fitted_data(dataset, saved, folder: str, *, given: bool) -> None:
    """ConfigError unless ``dataset`` has the fingerprint the model recorded for the data it was fitted on (a model
    without one is not checked; side tables alone were loaded only where the responses file matched the model's
    record): texts and metadata of other data would fold new entities in silently wrong."""
    from bayes_simrmf.errors import ConfigError

    name = saved.config.get("extra", {}).get("data") or "not recorded"
    where = f"--data {folder}" if given else f"the data folder {folder} (found from the model's record)"
    recorded = saved.config.get("data_fingerprint")
    if recorded is not None and "responses" in dataset.tables and dataset.fingerprint() != recorded:
        raise ConfigError(f"{where} is not the data the model was fitted on ({name}): its fingerprint differs from the "
                          "one the model recorded; pass the folder the model was fitted on with --data DIR")
    tables = saved.config.get("extra", {}).get("metadata_fingerprints") or {}  # models saved before they were recorded
    found = dataset.metadata_fingerprints() if tables else {}
    differ = [table for table in ("llms", "items") if table in tables and table in found and found[table] != tables[table]]
    if differ:
        contents = {"llms": "LLM metadata", "items": "question texts or labels"}
        raise ConfigError(f"{where} has the answers the model was fitted on, but its {' and its '.join(differ)} table"
                          f"{'s differ' if len(differ) > 1 else ' differs'} from the one the model recorded "
                          f"({', '.join(contents[table] for table in differ)} edited?); new entities would be folded in "
                          "against other metadata: pass the folder the model was fitted on with --data DIR")


def _fitted_dataset(data: str | None, saved, what: str, *, items: bool = True):
    """:func:`_optional_dataset`, refusing its absence: ``what`` (e.g. "3 question(s) ... are") is not in the
    model and needs the texts and metadata of the data it was fitted on."""
    dataset = _optional_dataset(data, saved, items=items)
    if dataset is None:
        from bayes_simrmf.errors import ConfigError

        name = saved.config.get("extra", {}).get("data") or "not recorded"
        raise ConfigError(
            f"{what} not in the model; folding in needs the texts and metadata of the data the model was fitted on "
            f"({name}): pass that folder with --data DIR"
        )
    return dataset


class _LlmsFile(NamedTuple):
    """The --llms file: its path, its table and the table's LLM ids (str)."""

    path: str
    frame: pd.DataFrame
    ids: pd.Series


def _read_llms_file(path: str) -> _LlmsFile:
    """The --llms file, with its llm column checked."""
    frame = _read_table_file(path, "--llms")
    return _LlmsFile(path, frame, _id_column(frame, f"--llms {path}", "llm", "needs columns llm and cost"))


def _fold_in_unknown(model, saved, data: str | None, new_items, llms: _LlmsFile) -> None:
    """Fold the new questions and the candidates the model does not hold into ``model`` (in memory), with the
    texts and metadata of the dataset it was fitted on (see :func:`_route_dataset`)."""
    import numpy as np

    unknown_llms = ~llms.ids.isin(np.asarray(model.llms_, dtype=str))
    if not (len(new_items) or unknown_llms.any()):
        return
    from bayes_simrmf.predict import fold_in_new_entities

    new_ids = [f"{len(new_items)} question(s), e.g. {new_items['item'].head(3).tolist()}"] if len(new_items) else []
    if unknown_llms.any():
        new_ids.append(f"{int(unknown_llms.sum())} LLM(s), e.g. {llms.ids[unknown_llms].head(3).tolist()}")
    dataset = _fitted_dataset(data, saved, " and ".join(new_ids) + (" is" if len(new_ids) == 1 else " are"),
                              items=bool(len(new_items)))
    extra = saved.config.get("extra", {})
    fold_in_new_entities(
        model, dataset, items=new_items if len(new_items) else None,
        llms=_new_llms(llms.frame, model, dataset, llms.path),
        alpha=extra.get("alpha", 0.5), embeddings=extra.get("embeddings"),
        embedding_model=extra.get("embedding_model") or DEFAULT_EMBEDDING_MODEL,
        energy=extra.get("similarity_energy"), log=_say,
    )


def _check_out(out: str | None, overwrite: bool = False) -> None:
    """Refuse, before any work, an --out that is not FILE.csv or FILE.parquet, and one that exists without
    --overwrite (see bayes_simrmf.outputs.check_file_target)."""
    from bayes_simrmf.errors import ConfigError
    from bayes_simrmf.outputs import check_file_target

    if out is not None and Path(out).suffix.lower() not in (".csv", ".parquet"):
        raise ConfigError(f"--out {out} must end in .csv or .parquet")
    if out is not None:
        check_file_target(out, overwrite)


def _write_table(frame, out: str | None, overwrite: bool = False) -> None:
    """Write ``frame`` to ``out`` (.csv or .parquet), if given, through a temporary file renamed into place."""
    if out is None:
        return
    from bayes_simrmf.outputs import write_file

    if Path(out).suffix.lower() == ".csv":
        write_file(out, lambda path: frame.to_csv(path, index=False), overwrite=overwrite)
    else:
        write_file(out, lambda path: frame.to_parquet(path, index=False), overwrite=overwrite)


#: --overwrite of the commands that write a table (predict, next-questions, route).
OVERWRITE_TABLE_OPTION = click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
