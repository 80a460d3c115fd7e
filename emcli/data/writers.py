"""Writing outputs atomically: every file is complete or untouched.

Every file is written to a temporary file in its own directory and renamed into place only
when all outputs of the run are complete (``OutputSet``), so a failed or interrupted run
leaves earlier files untouched and never leaves half a file.  ``-`` is standard output,
written last.  A partitioned output (a directory of files) is filled in a staged directory
(``staged_dir``) and swapped in whole (``replace_dir``).
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from numpy.typing import NDArray

from ..errors import OutputError, StdoutClosed


def csv_header(names: Iterable[str]) -> str:
    """One CSV header line (names quoted only where they must be), with its newline."""

    def quote(name: str) -> str:
        if any(ch in name for ch in ',"\n\r'):
            return '"' + name.replace('"', '""') + '"'
        return name

    return ",".join(quote(str(n)) for n in names) + "\n"


def write_csv(handle: IO[bytes], columns: dict[str, NDArray[Any]]) -> None:
    """Write equal-length columns as CSV (header unquoted unless needed)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    handle.write(csv_header(columns).encode())
    table = pa.table({str(i): v for i, v in enumerate(columns.values())})
    if table.num_rows:
        pcsv.write_csv(table, handle, pcsv.WriteOptions(include_header=False))


def _staging(path: str) -> tuple[str, bool]:
    """The file to write for output ``path``, and whether it is special.

    A symbolic link is followed: the file it points to is replaced, the link stays.  A
    device, FIFO or socket (``/dev/null``, ``/dev/stderr``, a named pipe) cannot be replaced
    by a rename (that would put a regular file in its place): it is *special*, written in
    place after every regular output is renamed into place.
    """
    target = os.path.realpath(path) if os.path.islink(path) else path
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return target, False
    return target, not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _check_destination(path: str) -> None:
    target = Path(_staging(path)[0])
    if target.is_dir():
        raise OutputError(f"output '{path}' is a directory; give a file name")
    parent = target.parent if str(target.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"cannot write '{path}': '{parent}' is a file, not a directory")
    if not parent.is_dir():
        raise OutputError(f"cannot write '{path}': directory '{parent}' does not exist")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise OutputError(f"cannot write '{path}': permission denied")


class OutputSet:
    """All the files one run writes, committed together.

    ``add`` only checks that a destination can be written (call it before the long work);
    ``commit`` writes each file to a temporary file in its directory, then renames them all
    into place, and writes the ``-`` (stdout) output last.  On any failure no destination is
    created or changed.
    """

    def __init__(self) -> None:
        self._writers: list[tuple[str, Callable[[IO[bytes]], None]]] = []
        self._paths: list[str] = []
        self._temps: list[str] = []
        self._new_dirs: list[Path] = []
        self._groups: list[tuple[list[str], Callable[[list[IO[bytes]]], None]]] = []
        self._spooled: list[IO[bytes]] = []
        self._made_dirs: list[Path] = []
        self._special: list[tuple[IO[bytes], str]] = []

    def create_dir(self, directory: str) -> None:
        """A directory to create at commit time, for outputs placed in it."""
        target = Path(directory)
        if not target.parent.is_dir():
            raise OutputError(f"cannot create '{directory}': '{target.parent}' does not exist")
        if not os.access(target.parent, os.W_OK):
            raise OutputError(f"cannot create '{directory}': permission denied")
        self._new_dirs.append(target)

    def check(self, path: str) -> None:
        """Register output ``path`` and fail now (OutputError) if it cannot be written."""
        if path == "-":
            if "-" in self._paths:
                raise OutputError("only one output can go to standard output ('-')")
        elif Path(path).parent not in self._new_dirs:
            _check_destination(path)
        if path != "-":
            if os.path.abspath(path) in map(os.path.abspath, (p for p in self._paths if p != "-")):
                raise OutputError(
                    f"'{path}' is named as two outputs; give each output its own path"
                )
        self._paths.append(path)

    def add(self, path: str, writer: Callable[[IO[bytes]], None]) -> None:
        """``writer(handle)`` fills output ``path`` (already ``check``-ed) at commit time."""
        self._writers.append((path, writer))

    def add_group(self, paths: Sequence[str], writer: Callable[[list[IO[bytes]]], None]) -> None:
        """One writer that fills several outputs in a single pass (one handle per path).

        For outputs streamed block by block over a large input.  A ``-`` among ``paths``
        is spooled to a temporary file and copied to stdout only after every file is in
        place, so stdout too gets the whole output or nothing.
        """
        self._groups.append((list(paths), writer))

    def commit(self) -> None:
        """Write every output to a temporary file, rename them all into place, then write
        standard output (OutputError, or StdoutClosed when its reader went away)."""
        staged: list[tuple[str, str]] = []
        path = ""
        done = False
        try:
            for directory in self._new_dirs:
                if not directory.exists():
                    directory.mkdir()
                    self._made_dirs.append(directory)
            for path, writer in self._writers:
                if path == "-":
                    continue
                handle, temp = self._open_staged(path)
                with handle:
                    writer(handle)
                if temp:
                    staged.append((temp, _staging(path)[0]))
            for paths, group_writer in self._groups:
                staged += self._run_group(paths, group_writer)
            for temp, path in staged:
                os.replace(temp, path)
                self._temps.remove(temp)
            for spool, path in self._special:
                spool.seek(0)
                with open(path, "wb") as out:
                    shutil.copyfileobj(spool, out)
            done = True
        except OSError as exc:
            raise OutputError(f"cannot write '{exc.filename or path}': {exc.strerror}") from None
        finally:
            self.cleanup(remove_dirs=not done)
        try:
            for path, writer in self._writers:
                if path == "-":
                    writer(sys.stdout.buffer)
                    sys.stdout.buffer.flush()
            for spool in self._spooled:
                spool.seek(0)
                shutil.copyfileobj(spool, sys.stdout.buffer)
                sys.stdout.buffer.flush()
                spool.close()
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # the reader went away (`| head`)
                raise StdoutClosed() from None
            raise OutputError(f"cannot write to standard output: {exc.strerror}") from None
        finally:
            self._spooled.clear()

    def _run_group(
        self, paths: list[str], writer: Callable[[list[IO[bytes]]], None]
    ) -> list[tuple[str, str]]:
        staged: list[tuple[str, str]] = []
        handles: list[IO[bytes]] = []
        try:
            for path in paths:
                if path == "-":
                    spool = tempfile.SpooledTemporaryFile(max_size=1 << 26)
                    self._spooled.append(spool)  # type: ignore[arg-type]
                    handles.append(spool)  # type: ignore[arg-type]
                    continue
                handle, temp = self._open_staged(path)
                handles.append(handle)
                if temp:
                    staged.append((temp, _staging(path)[0]))
            writer(handles)
        finally:
            for handle in handles:
                if handle not in self._spooled:
                    handle.close()
        return staged

    def _open_staged(self, path: str) -> tuple[IO[bytes], str | None]:
        """A handle to write output ``path`` into, and its temporary file (None for a
        special file, which is spooled and written in place by ``commit``)."""
        target, special = _staging(path)
        if special:
            spool = tempfile.SpooledTemporaryFile(max_size=1 << 26)
            self._special.append((spool, target))  # type: ignore[arg-type]
            return _KeepOpen(spool), None  # type: ignore[arg-type,return-value]
        fd, temp = tempfile.mkstemp(
            prefix=f".{Path(target).name}.", suffix=".tmp", dir=Path(target).parent or "."
        )
        self._temps.append(temp)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would leak into the result
        return os.fdopen(fd, "wb"), temp

    def cleanup(self, remove_dirs: bool = False) -> None:
        """Remove temporary files left by an interrupted commit (and, after a failure,
        the directories it created, when they are still empty)."""
        for temp in self._temps:
            try:
                os.unlink(temp)
            except OSError:
                pass
        self._temps.clear()
        for spool, _ in self._special:
            spool.close()
        self._special.clear()
        if remove_dirs:
            for spool in self._spooled:
                spool.close()
            self._spooled.clear()
            for directory in self._made_dirs:
                try:
                    directory.rmdir()
                except OSError:
                    pass
            self._made_dirs.clear()


class _KeepOpen(io.BufferedIOBase):
    """A writable view of a spool that closing leaves open (commit reads it back)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # type: ignore[override]
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through an ``OutputSet``: the whole file or no change."""
    outputs = OutputSet()
    outputs.check(str(path))
    outputs.add(str(path), lambda handle: _write(handle, text))
    outputs.commit()


def _write(handle: IO[bytes], text: str) -> None:
    handle.write(text.encode())


def staged_dir(path: str) -> str:
    """A new empty temporary directory beside ``path``, to fill and then ``replace_dir``."""
    target = Path(path.rstrip("/") or path)
    if target.exists() and not target.is_dir():
        raise OutputError(f"output '{path}' exists and is not a directory")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write '{path}': directory '{parent}' does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write '{path}': permission denied")
    return tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)


def replace_dir(staged: str, path: str) -> None:
    """Move a complete staged directory to ``path``, replacing an older one whole."""
    target = Path(path.rstrip("/") or path)
    old = None
    if target.exists():
        old = tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
        os.replace(target, Path(old) / "previous")
    os.chmod(staged, 0o777 & ~_umask())
    os.replace(staged, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------- row outputs
# The format of a row output (labels, responsibilities, scores, predictions), from the
# extension of its path; '-' and any other extension are CSV.
ROW_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def row_format(path: str) -> str:
    """csv, tsv, parquet or jsonl for the row output ``path`` (OutputError for ``.json``,
    which would promise one JSON document)."""
    if path == "-":
        return "csv"
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        raise OutputError(
            f"'{path}': row outputs are CSV (.csv), TSV (.tsv), Parquet (.parquet) or JSON "
            "lines (.jsonl); name the file .jsonl for one JSON object per row"
        )
    return ROW_FORMATS.get(suffix, "csv")


class RowSink:
    """Rows written block by block to ``handle`` in ``fmt`` (``row_format``).

    ``write(table)`` takes a pyarrow Table of one block (the same columns each time);
    ``close(empty)`` ends the output (``empty``: the zero-row table that gives the header
    or the Parquet schema when no block came).  One file whatever the format.
    """

    def __init__(self, handle: IO[bytes], fmt: str) -> None:
        self.handle, self.fmt = handle, fmt
        self._parquet: Any = None
        self._started = False

    def write(self, table: Any) -> None:
        import pyarrow.csv as pcsv

        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.handle, table.schema)
            self._parquet.write_table(table)
            return
        if not self._started:
            self._started = True
            if self.fmt in ("csv", "tsv"):
                header = csv_header(table.column_names)
                if self.fmt == "tsv":
                    header = "\t".join(table.column_names) + "\n"
                self.handle.write(header.encode())
        if not table.num_rows:
            return
        if self.fmt == "jsonl":
            import json

            lines = [json.dumps(row, allow_nan=False) for row in table.to_pylist()]
            self.handle.write(("\n".join(lines) + "\n").encode())
            return
        delimiter = "\t" if self.fmt == "tsv" else ","
        if any(pa_is_text(field.type) for field in table.schema):
            self._write_text_rows(table, delimiter)
            return
        anonymous = table.rename_columns([str(i) for i in range(table.num_columns)])
        options = pcsv.WriteOptions(include_header=False, delimiter=delimiter)
        pcsv.write_csv(anonymous, self.handle, options)

    def _write_text_rows(self, table: Any, delimiter: str) -> None:
        """Rows with text cells (the input's own, ``--with-input``): quoted only where
        needed, as the csv module does (pyarrow would quote every text cell)."""
        import csv

        text = io.StringIO()
        writer = csv.writer(text, delimiter=delimiter, lineterminator="\n")
        columns = [_cells(column) for column in table.columns]
        writer.writerows(zip(*columns, strict=True))
        self.handle.write(text.getvalue().encode())

    def close(self, empty: Any) -> None:
        if self._parquet is None and self.fmt == "parquet":
            self.write(empty)
        elif not self._started:
            self.write(empty)
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None


def pa_is_text(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _cells(column: Any) -> list[Any]:
    """A pyarrow column as CSV cells, numbers formatted as pyarrow's CSV writer does."""
    import pyarrow as pa

    if not pa_is_text(column.type):
        column = column.cast(pa.string())
    return ["" if v is None else v for v in column.to_pylist()]
