"""Arrow <-> numpy without pandas: same arrays as pyarrow's own conversions, and a table
scan that never imports pandas."""

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from datasan.numpy_arrow import from_numpy, to_numpy

ARRAYS = [
    np.arange(20, dtype=np.int64),
    np.arange(10, dtype=np.uint8),
    np.linspace(-1, 1, 9, dtype=np.float32),
    np.array([1.5, np.nan, -np.inf]),
    np.array([True, False, True] * 7),
    np.zeros(0),
    np.zeros(0, bool),
]


@pytest.mark.parametrize("values", ARRAYS, ids=lambda a: f"{a.dtype}-{a.size}")
def test_from_numpy_equals_pa_array(values):
    got = from_numpy(values)
    got.validate(full=True)
    want = pa.array(values)
    assert got.type == want.type
    assert got.to_pylist() == want.to_pylist() or np.array_equal(
        np.asarray(got.to_pylist(), float), np.asarray(want.to_pylist(), float), equal_nan=True)


def test_from_numpy_of_a_strided_view_and_a_cast():
    assert from_numpy(np.arange(10)[::3]).to_pylist() == [0, 3, 6, 9]
    assert from_numpy(np.arange(3, dtype=np.int32), pa.int64()).type == pa.int64()


@pytest.mark.parametrize("values", ARRAYS, ids=lambda a: f"{a.dtype}-{a.size}")
@pytest.mark.parametrize("offset", [0, 3])
def test_to_numpy_equals_pyarrow_to_numpy(values, offset):
    arr = pa.array(values).slice(min(offset, len(values)))
    got, want = to_numpy(arr), arr.to_numpy(zero_copy_only=False)
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    assert np.array_equal(got, want, equal_nan=got.dtype.kind == "f")


def test_to_numpy_leaves_nulls_and_chunks_to_pyarrow_semantics():
    with_nulls = pa.array([1, None, 3])
    assert np.array_equal(to_numpy(with_nulls), with_nulls.to_numpy(zero_copy_only=False), equal_nan=True)
    chunked = pa.chunked_array([pa.array([True, False]), pa.array([True])])
    assert to_numpy(chunked).tolist() == [True, False, True]


def test_the_table_passes_never_import_pandas(tmp_path):
    # outputs still build some tables from Python lists (which imports pandas): the
    # assertion is on who imports it, not on whether the process ends up with it
    import json

    import pyarrow.parquet as pq

    data = tmp_path / "data"
    data.mkdir()
    v = np.arange(1000, dtype=np.float64)
    v[7] = np.nan
    pq.write_table(pa.table({"x": v, "label": np.arange(1000) % 3}), data / "t.parquet")
    code = (
        "import runpy, sys, traceback\n"
        "def audit(event, args):\n"
        "    if event == 'import' and args[0] == 'pandas' and 'pandas' not in sys.modules:\n"
        "        sys.stderr.write('PANDAS FROM ' + ''.join(traceback.format_stack()) + 'END')\n"
        "sys.addaudithook(audit)\n"
        f"sys.argv = ['datasan', 'scan', {str(data)!r}, '--no-probe', '--workers', '1', "
        f"'--out', {str(tmp_path / 'out')!r}, '--format', 'json']\n"
        "runpy.run_module('datasan', run_name='__main__')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 1, out.stderr  # the NaN row is an error: the gate fails
    report = json.loads(out.stdout)
    assert (report["samples"], report["quarantined"]) == (1000, 1)
    stack = out.stderr.split("PANDAS FROM ")[1].split("END")[0] if "PANDAS FROM " in out.stderr else ""
    assert "sources/tables" not in stack


def test_a_command_line_table_scan_never_loads_pandas(tmp_path):
    # findings, quarantine, report.html with charts: every output of a numeric table's scan
    # (text columns are hashed by pandas for the duplicate check, on purpose)
    import pyarrow.parquet as pq

    data = tmp_path / "data"
    data.mkdir()
    v = np.arange(1000, dtype=np.float64)
    v[7] = np.nan
    pq.write_table(pa.table({"x": v, "flag": np.arange(1000) % 2 == 0, "label": np.arange(1000) % 3}),
                   data / "t.parquet")
    code = (
        "import atexit, runpy, sys\n"
        f"sys.argv = ['datasan', 'scan', {str(data)!r}, '--no-probe', '--workers', '1', '--no-cache', "
        f"'--out', {str(tmp_path / 'out')!r}, '--format', 'json']\n"
        # at exit: the command line ends its process itself once the command is done
        "atexit.register(lambda: sys.stderr.write('PANDAS LOADED' if 'pandas' in sys.modules else 'NO PANDAS'))\n"
        "runpy.run_module('datasan', run_name='__main__')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 1, out.stderr
    assert out.stderr.endswith("NO PANDAS"), out.stderr
    assert (tmp_path / "out" / "report.html").stat().st_size > 0


def test_arrow_still_converts_pandas_after_it_was_kept_out():
    # the shim's failed try only skips the question; pandas works when really used
    code = (
        "import sys\n"
        "from datasan.numpy_arrow import keep_pandas_out_of_arrow\n"
        "assert keep_pandas_out_of_arrow()\n"
        "import pyarrow as pa\n"
        "t = pa.table({'a': pa.array([1, None], pa.int64()), 's': pa.array(['x', None], pa.string())})\n"
        "assert 'pandas' not in sys.modules\n"
        "df = t.to_pandas()\n"
        "assert df['s'].tolist()[0] == 'x' and df.shape == (2, 2)\n"
        "assert pa.Table.from_pandas(df).num_rows == 2\n"
        "assert not keep_pandas_out_of_arrow()  # pandas is loaded now: nothing to do\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
