"""A Python run written as flowload's results: the binary's run file, which pyarrow, DuckDB and
`flowload report` read; never replacing a run file, whoever else writes there."""

import html
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq
import pytest

import flowload
from conftest import SYNTH, run_python


def trained(epochs=2, broken_last=False):
    loader = flowload.Loader(SYNTH, batch_size=16, shuffle=True, normalize=True, workers=2)
    for epoch in range(epochs):
        for i, _ in enumerate(loader):
            if broken_last and epoch == epochs - 1 and i == 2:
                break
        loader.record(loss=1.0 / (epoch + 1), accuracy=0.25 * epoch)
    return loader


def test_the_finished_epochs_are_written_as_the_binarys_run_file(tmp_path):
    loader = trained(epochs=3, broken_last=True)
    path = loader.write_results(tmp_path, model="mlp", optimizer="SGD", lr=0.05, device="cpu")
    assert path == os.fspath(tmp_path / "runs" / "run-0001.parquet")
    table = pq.read_table(path).to_pylist()
    # The broken third epoch is not a row; epochs count from 1, as the binary's do.
    assert [r["epoch"] for r in table] == [1, 2]
    assert [r["loss"] for r in table] == [1.0, 0.5]
    assert [r["accuracy"] for r in table] == [0.0, 0.25]
    assert all(r["images"] == 96 and r["workers"] == 2 for r in table)
    assert all(r["test_loss"] is None for r in table)
    assert {(r["run"], r["model"], r["optimizer"], r["lr"], r["batch_size"], r["seed"])
            for r in table} == {(1, "mlp", "sgd", 0.05, 16, 0)}
    assert {r["stats_source"] for r in table} == {"computed"}
    for r, m in zip(table, loader.metrics):
        assert r["images_per_second"] == pytest.approx(m["images_per_second"])
        assert r["data_wait_seconds"] == pytest.approx(m["data_wait_seconds"])
    meta = pq.read_metadata(path).metadata
    config = json.loads(meta[b"flowload.config"])
    assert config["source"] == "python" and config["data"] == SYNTH and config["normalize"]
    assert json.loads(meta[b"flowload.run"])["run"] == 1
    assert len(meta[b"flowload.data"]) == 32


def test_run_numbers_are_the_next_free_and_a_taken_one_is_refused(tmp_path):
    loader = trained()
    first = loader.write_results(tmp_path, optimizer="lamb")
    second = loader.write_results(tmp_path)
    assert [os.path.basename(p) for p in (first, second)] == ["run-0001.parquet", "run-0002.parquet"]
    assert pq.read_table(first).column("optimizer").to_pylist() == ["other", "other"]
    before = open(first, "rb").read()
    with pytest.raises(flowload.ConfigError, match="run-0001.parquet exists"):
        loader.write_results(tmp_path, run=1)
    assert open(first, "rb").read() == before
    with pytest.raises(flowload.ConfigError, match="start at 1"):
        loader.write_results(tmp_path, run=0)
    assert sorted(os.listdir(tmp_path / "runs")) == ["run-0001.parquet", "run-0002.parquet"]


def test_nothing_is_written_before_an_epoch_ends(tmp_path):
    loader = flowload.Loader(SYNTH, batch_size=16)
    with pytest.raises(flowload.ConfigError, match="record: no epoch"):
        loader.record(loss=1.0)
    for i, _ in enumerate(loader):
        if i == 1:
            break
    with pytest.raises(flowload.ConfigError, match="no epoch has run to its end"):
        loader.write_results(tmp_path)
    assert not (tmp_path / "runs").exists()


def test_processes_writing_at_once_each_get_a_run_of_their_own(tmp_path):
    script = f"""
        import sys, flowload
        loader = flowload.Loader({SYNTH!r}, batch_size=32, seed=int(sys.argv[2]))
        for _ in loader:
            pass
        print(loader.write_results(sys.argv[1], model="m" + sys.argv[2]))
    """
    with ThreadPoolExecutor(6) as pool:
        done = list(pool.map(lambda i: run_python(script, tmp_path, i), range(6)))
    assert all(p.returncode == 0 for p in done), [p.stderr for p in done]
    paths = sorted(p.stdout.strip() for p in done)
    assert [os.path.basename(p) for p in paths] == [f"run-{n:04}.parquet" for n in range(1, 7)]
    for p in paths:
        rows = pq.read_table(p).to_pylist()
        # Each file's run column is its own number, and its rows are one writer's.
        assert {r["run"] for r in rows} == {int(p[-12:-8])}
        assert len({r["model"] for r in rows}) == 1
    assert sorted(os.listdir(tmp_path / "runs")) == [os.path.basename(p) for p in paths]


def test_flowload_report_and_duckdb_read_a_python_run(tmp_path):
    binary = os.environ.get("FLOWLOAD_BIN")
    if not binary:
        pytest.skip("FLOWLOAD_BIN is not set (scripts/test.sh sets it to the built binary)")
    loader = trained()
    loader.write_results(tmp_path, model="mlp", optimizer="adam", lr=0.001, device="cpu")
    loader.write_results(tmp_path, model="mlp", optimizer="sgd", lr=0.1, device="cpu")
    report = subprocess.run([binary, "report", tmp_path], capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    assert "report of 2 runs" in report.stdout + report.stderr
    assert "optimizer=" in report.stdout + report.stderr
    page = html.unescape((tmp_path / "report" / "report.html").read_text())
    assert "mlp" in page and '"source": "python"' in page
    import duckdb
    rows = duckdb.sql(
        f"select optimizer, count(*), max(epoch) from read_parquet('{tmp_path}/runs/*.parquet') "
        "group by optimizer order by optimizer").fetchall()
    assert rows == [("adam", 2, 2), ("sgd", 2, 2)]
