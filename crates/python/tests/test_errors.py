"""Errors and interrupts as a Python user expects: typed exceptions with the binary's message,
Ctrl-C within a second with no thread left, close(), and a loader used after fork refused."""

import os
import signal
import time

import pytest

import flowload
from conftest import SYNTH, run_python


def test_a_bad_transform_lists_the_known_ones():
    with pytest.raises(flowload.ConfigError) as e:
        flowload.Loader(SYNTH, augment=["random_crop:8", "sharpen"])
    assert isinstance(e.value, ValueError)
    assert "sharpen" in str(e.value) and "random_resized_crop" in str(e.value)


def test_missing_data_is_an_os_error_naming_the_path(tmp_path):
    with pytest.raises(flowload.DataNotFoundError) as e:
        flowload.Loader(tmp_path / "nowhere")
    assert isinstance(e.value, OSError) and "nowhere" in str(e.value)


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(workers="many"), "workers: 'many' is not a worker count"),
        (dict(dtype="float16"), "dtype: 'float16'"),
        (dict(dtype="uint8", normalize=True), "flowload.normalize"),
        (dict(split="valid"), "split: 'valid'"),
        (dict(on_bad_record="ignore"), "on_bad_record: 'ignore'"),
        (dict(batch_size=0), "batch size must be at least 1"),
        (dict(batch_size=-1), "batch_size: -1"),
        (dict(seed=2**70), "seed: 1180591620717411303424 is not an integer"),
        (dict(rank=-1, world_size=2), "rank: -1"),
        (dict(world_size=1.5), "world_size: 1.5"),
        (dict(rank=2, world_size=2), "rank 2 of world size 2"),
        (dict(augment="hflip"), "give a list"),
        (dict(output="jax"), "output: 'jax'"),
    ],
)
def test_bad_settings_are_config_errors(kw, words):
    with pytest.raises(flowload.ConfigError, match=None) as e:
        flowload.Loader(SYNTH, **kw)
    assert words in str(e.value)


def test_a_bad_record_names_its_file_or_is_skipped_and_counted(folder):
    root, _ = folder
    bad = root / "class1" / "img3.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(flowload.DataError) as e:
        for _ in flowload.Loader(root, batch_size=4, workers=2):
            pass
    assert str(bad) in str(e.value)
    loader = flowload.Loader(root, batch_size=4, on_bad_record="skip")
    images = sum(len(y) for _, y in loader)
    assert images == 20
    assert loader.metrics[-1]["skipped"] == 1


# 20 ms of work per image, 20,000 images per batch: 400 s a batch, so only a loader that
# gives up its batch mid-way can answer Ctrl-C in time.
SLOW = "synthetic:images=20000,size=8x8,work=20000"


@pytest.mark.parametrize("workers", [0, 2, "auto"])
def test_ctrl_c_raises_keyboard_interrupt_within_a_second_and_stops_every_thread(workers):
    done = run_python(
        f"""
        import os, signal, threading, time, torch, flowload
        before = len(os.listdir("/proc/self/task"))  # torch's and numpy's own threads counted
        loader = flowload.Loader({SLOW!r}, batch_size=20000, workers={workers!r})
        sent = []
        def interrupt():
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)
        timer = threading.Timer(0.5, interrupt)
        timer.start()
        try:
            for batch in loader:
                pass
        except KeyboardInterrupt:
            print(time.monotonic() - sent[0])
        timer.join()
        print(len(os.listdir("/proc/self/task")) - before)
        """,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    latency, threads_left = done.stdout.split()
    assert float(latency) < 1.0, f"KeyboardInterrupt after {latency} s"
    assert int(threads_left) == 0, f"{threads_left} thread(s) left running"


def test_close_and_the_context_manager_stop_the_loader():
    with flowload.Loader(SYNTH, batch_size=8, workers=2) as loader:
        next(iter(loader))
    with pytest.raises(flowload.LoaderError, match="closed"):
        next(iter(loader))


def test_a_loader_used_after_fork_is_refused_not_hung():
    loader = flowload.Loader(SYNTH, batch_size=8, workers=2)
    next(iter(loader))
    pid = os.fork()
    if pid == 0:  # the child: must raise at once, never wait on threads it does not have
        code = 3
        try:
            next(iter(loader))
        except flowload.LoaderError as e:
            code = 0 if "after a fork" in str(e) else 4
        except BaseException:
            code = 5
        os._exit(code)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the forked child hung")
    assert sum(1 for _ in loader) == len(loader), "the parent goes on"
