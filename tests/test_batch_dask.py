"""Batch on a Dask LocalCluster (2 worker processes, 1 thread each): the plain run's outputs byte
for byte, resume, failures named, a worker that dies mid-run, Ctrl-C, the CLI flags."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scenes import disc_scene

pytest.importorskip("distributed")

import mattestudio
from mattestudio import batching, dask_batch
from mattestudio.cli.main import main
from mattestudio.core import io
from mattestudio.errors import MattestudioError

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 240  # seconds for one run on the cluster; the machine may be busy


def _scene(h=40, w=48, seed=0):
    return disc_scene(h, w, seed, colour=(0.2, 0.5, 0.9))


def _pair(folder: Path, name: str, h=40, w=48, seed=0) -> None:
    image, trimap = _scene(h, w, seed)
    io.save_rgb(folder / f"{name}.png", image)
    io.save_trimap(folder / f"{name}_trimap.png", trimap)


def _folder(path: Path, names, **kw) -> Path:
    path.mkdir(parents=True)
    for i, name in enumerate(names):
        _pair(path, name, seed=i, **kw)
    return path


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="module")
def crash_marker(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("crash") / "worker-exited"


@pytest.fixture(scope="module")
def client(crash_marker):
    # The workers inherit the environment when they start (and when the nanny restarts one): the
    # test hook makes the worker that starts on an image named "crash_me" exit, once.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(dask_batch.CRASH_ENV, f"crash_me:{crash_marker}")
        with dask_batch.local_client(2) as c:
            c.wait_for_workers(2, timeout=TIMEOUT)
            yield c


def test_same_outputs_as_the_plain_run_and_one_engine_per_worker(tmp_path, client):
    src = _folder(tmp_path / "in", ["a", "b", "c", "d", "e"], h=60, w=64)
    options = batching.BatchOptions(cutout=True, alpha_bits=16)
    plain = batching.run(src, src, tmp_path / "plain", options)
    cluster = dask_batch.run(src, src, tmp_path / "dask", options, client, timeout=TIMEOUT)
    assert (
        plain.line()
        == cluster.line()
        == ("5 done, 0 skipped (already done), 0 failed, 5 trimap or output files not matted")
    )
    expected = _files(tmp_path / "plain")
    assert len(expected) == 10  # alpha and cut-out of each image, nothing else (no claims)
    assert _files(tmp_path / "dask") == expected
    # Each worker creates its engine once and reuses it for the images it gets.
    assert sum(cluster.images_per_worker.values()) == 5
    assert 1 <= cluster.engines_created <= len(cluster.images_per_worker) <= 2
    again = dask_batch.run(
        src,
        src,
        tmp_path / "dask",
        batching.BatchOptions(cutout=True, alpha_bits=16, overwrite=True),
        client,
        timeout=TIMEOUT,
    )
    assert again.count("done") == 5 and again.engines_created == 0
    assert _files(tmp_path / "dask") == expected


def test_projects_render_as_in_the_plain_run(tmp_path, client):
    from tests.test_batch_projects import project_folder

    src = project_folder(tmp_path / "in")
    plain = batching.run(src, src, tmp_path / "plain")
    cluster = dask_batch.run(src, src, tmp_path / "dask", batching.BatchOptions(), client)
    assert plain.line() == cluster.line() and plain.count("done") == 4
    assert _files(tmp_path / "dask") == _files(tmp_path / "plain")


def test_resume_skips_finished_images_through_the_cli(tmp_path, client, capsys):
    src = _folder(tmp_path / "in", ["a", "b", "c", "d"])
    out = tmp_path / "out"
    address = client.scheduler.address
    argv = ["batch", str(src), "--out", str(out), "--scheduler", address, "--quiet"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip().startswith("4 done, 0 skipped")
    (out / "c_alpha.png").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(argv[:-1]) == 0  # with the progress bar: over the one image left to do
    captured = capsys.readouterr()
    assert captured.out.strip().startswith("1 done, 3 skipped (already done), 0 failed")
    assert "matting: 100%" in captured.err and "1/1" in captured.err, captured.err
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert sorted(after) == ["a_alpha.png", "b_alpha.png", "c_alpha.png", "d_alpha.png"]
    assert all(after[name] == t for name, t in before.items())  # finished files untouched


def test_a_failing_image_is_named_and_the_rest_go_on(tmp_path, client, capsys):
    src = _folder(tmp_path / "in", ["a_good", "c_good", "e_good"])
    _pair(src, "b_thin", h=2, w=50)
    (src / "d_broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    argv = ["batch", str(src), "--out", str(out), "--scheduler", client.scheduler.address, "-q"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    lines = sorted(captured.err.strip().splitlines())
    assert len(lines) == 2 and all(ln.startswith("mattestudio: ") for ln in lines), captured.err
    assert "b_thin.png" in lines[0] and "at least 3 pixels" in lines[0]
    assert "d_broken.png" in lines[1] and "Traceback" not in captured.err
    assert captured.out.strip().startswith("3 done, 0 skipped (already done), 2 failed")
    assert sorted(p.name for p in out.iterdir()) == [
        "a_good_alpha.png",
        "c_good_alpha.png",
        "e_good_alpha.png",
    ]


def test_a_worker_that_dies_has_its_image_retried_on_the_others(tmp_path, client, crash_marker):
    src = _folder(tmp_path / "in", ["a", "b", "crash_me", "d", "e", "f"])
    summary = mattestudio.batch(src, tmp_path / "out", engine="closed-form", client=client)
    assert crash_marker.exists()  # a worker really exited on crash_me
    assert summary.failures == [], [o.message for o in summary.failures]
    status = {o.image.stem: o.status for o in summary.outcomes}
    assert status["crash_me"] == "done"  # matted by another worker (or the restarted one)
    # An image the dying worker had finished but not yet handed back is run again and finds its
    # outputs written: "skipped", like an image finished by a concurrent batch.
    assert set(status.values()) <= {"done", "skipped"} and len(status) == 6
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{n}_alpha.png" for n in ["a", "b", "crash_me", "d", "e", "f"]
    )
    # the retried image matches a plain run of it
    plain = batching.run(src, src, tmp_path / "plain", batching.BatchOptions(engine="closed-form"))
    assert plain.count("done") == 6
    assert _files(tmp_path / "out") == _files(tmp_path / "plain")
    client.wait_for_workers(2, timeout=TIMEOUT)  # the nanny restarted it for the next tests


def test_unknown_engine_or_bad_parameter_is_refused_before_anything_is_submitted(tmp_path):
    src = _folder(tmp_path / "in", ["a"])
    with pytest.raises(MattestudioError, match="unknown engine 'nope'"):
        dask_batch.run(src, src, tmp_path / "out", batching.BatchOptions(engine="nope"), None)
    assert not list((tmp_path / "out").iterdir())  # nothing written
    bad = batching.BatchOptions(params={"trim_radius": "x"})
    with pytest.raises(MattestudioError, match="parameter trim_radius: 'x' is not a valid int"):
        dask_batch.run(src, src, tmp_path / "out", bad, None)


def test_unreachable_scheduler_is_one_clear_error():
    with (
        pytest.raises(
            MattestudioError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"
        ),
        dask_batch.remote_client("tcp://127.0.0.1:9", wait=2),
    ):
        pass


def test_each_worker_of_a_multi_gpu_machine_gets_its_own_gpu():
    assert dask_batch.gpu_for_worker(0, 4) == "cuda:0"
    assert dask_batch.gpu_for_worker(5, 4) == "cuda:1"
    assert dask_batch.gpu_for_worker(3, 1) is None  # one GPU (or CUDA_VISIBLE_DEVICES): as asked
    assert dask_batch.gpu_for_worker(None, 4) is None  # a worker without a number


@pytest.mark.slow
def test_cli_workers_then_ctrl_c_exits_130_with_complete_files(tmp_path):
    src = _folder(tmp_path / "in", [f"im{i}" for i in range(8)], h=300, w=300)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "mattestudio", "batch", str(src), "--out", str(out)]
    # a whole --workers 2 run: the plain run's files
    done = subprocess.run(
        cmd + ["--workers", "2", "--quiet"], capture_output=True, text=True, env=_env(), timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("8 done, 0 skipped")
    batching.run(src, src, tmp_path / "plain")
    assert _files(out) == _files(tmp_path / "plain")
    # Ctrl-C in a terminal reaches the batch and its workers (one process group)
    proc = subprocess.Popen(
        cmd + ["--workers", "2", "--quiet", "--overwrite", "--cutout"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        start_new_session=True,
    )
    t0 = time.monotonic()
    while not list(out.glob("*_cutout.png")) and time.monotonic() - t0 < 300:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert stderr.strip() == "mattestudio: interrupted"  # no traceback from any worker
    names = sorted(p.name for p in out.iterdir())
    assert all(n.endswith(("_alpha.png", "_cutout.png")) for n in names), names  # no temp/claim
    for p in out.glob("*_cutout.png"):
        assert io.read_image_array(p).shape[:2] == (300, 300)
    assert len(list(out.glob("*_cutout.png"))) < 8  # it really stopped early
