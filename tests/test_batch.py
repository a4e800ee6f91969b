"""Batch matting (mattestudio.batching, `mattestudio batch`, mattestudio.batch): failures named and
survived, trimaps and earlier outputs skipped, claims shared between concurrent batches, Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from scenes import disc_scene

import mattestudio
from mattestudio import batching
from mattestudio.cli.main import main
from mattestudio.core import io
from mattestudio.errors import MattestudioError, OutputError

REPO = Path(__file__).resolve().parents[1]


def _scene(h=40, w=48, seed=0):
    return disc_scene(h, w, seed)


def _pair(folder: Path, name: str, h=40, w=48, seed=0, tagged=True) -> None:
    image, trimap = _scene(h, w, seed)
    io.save_rgb(folder / f"{name}.png", image)
    io.save_trimap(folder / (f"{name}_trimap.png" if tagged else f"{name}.tif"), trimap)


def _cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_every_failure_is_named_and_the_rest_go_on(tmp_path, capsys):
    # Issue 10 case 3: a 2x50 image between good ones stopped the batch with
    # "internal error: NotPositiveDefinite", no file named, the rest never processed.
    src = tmp_path / "in"
    src.mkdir()
    _pair(src, "a_good", seed=1)
    _pair(src, "b_thin", h=2, w=50)
    _pair(src, "c_good", seed=2)
    (src / "d_broken.png").write_bytes(b"not a png")
    _pair(src, "e_good", seed=3)
    out = tmp_path / "out"
    code, stdout, err = _cli(["batch", src, "--out", out, "--quiet"], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all(ln.startswith("mattestudio: ") for ln in lines), err
    assert "b_thin.png" in lines[0] and "at least 3 pixels" in lines[0]
    assert "d_broken.png" in lines[1] and "Traceback" not in err
    assert stdout.strip().splitlines()[-1].startswith("3 done, 0 skipped (already done), 2 failed")
    assert sorted(p.name for p in out.iterdir()) == [
        "a_good_alpha.png",
        "c_good_alpha.png",
        "e_good_alpha.png",
    ]


def test_engine_exception_names_the_file(tmp_path, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    _pair(src, "x")
    job = batching.plan(src, src, tmp_path / "out").todo[0]

    class Exploding:
        info = type("I", (), {"name": "boom"})
        params: ClassVar[dict] = {}

        def prepare(self, image):
            pass

        def predict(self, trimap, progress=None, cancel=None):
            raise np.linalg.LinAlgError("front 0 is not positive definite")

        def reset(self):
            pass

    batching.check_output_folder(tmp_path / "out")
    outcome = batching.process_one(job, Exploding(), batching.BatchOptions(engine="boom"))
    assert outcome.status == "failed"
    assert outcome.message.startswith(str(src / "x.png") + ": engine boom failed: LinAlgError")


def test_sample_folder_mattes_only_the_photo(tmp_path, capsys):
    # Issue 10 case 6: batch matted sample_alpha.png and sample_trimap.png against themselves.
    demo = tmp_path / "demo"
    assert _cli(["sample", demo], capsys)[0] == 0
    code, stdout, err = _cli(["batch", demo, "--out", tmp_path / "out", "--quiet"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sample_alpha.png"]
    assert "1 done" in stdout and "2 trimap or output files not matted" in stdout
    # outputs written into the input folder are not inputs of the next run either
    code, stdout, _ = _cli(["batch", demo, "--out", demo, "--quiet", "--cutout"], capsys)
    assert code == 0
    assert not list(demo.glob("*_alpha_alpha*")) and not list(demo.glob("*_trimap_alpha*"))


def test_plan_pairs_trimaps_and_skips_finished(tmp_path):
    imgs, tris, out = tmp_path / "i", tmp_path / "t", tmp_path / "o"
    for d in (imgs, tris, out):
        d.mkdir()
    _pair(imgs, "p")
    io.save_trimap(tris / "p.png", _scene()[1])
    _pair(imgs, "q")  # only q_trimap.png, next to the image
    (out / "q_alpha.png").write_bytes(b"x")
    plan = batching.plan(imgs, tris, out)
    assert [j.name for j in plan.todo] == ["p"] and [j.name for j in plan.finished] == ["q"]
    assert plan.todo[0].trimap == tris / "p.png"
    again = batching.plan(imgs, tris, out, batching.BatchOptions(overwrite=True))
    assert [j.name for j in again.todo] == ["p", "q"]


def test_unwritable_output_folder_fails_before_any_solve(tmp_path, capsys, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    _pair(src, "a")
    if os.geteuid() == 0:  # root ignores permission bits; procfs refuses new files even to root
        out = Path("/proc/self/fdinfo")
        if not out.is_dir():
            pytest.skip("no procfs")
    else:
        out = tmp_path / "ro"
        out.mkdir()
        out.chmod(0o555)
    solves = []
    import mattestudio.pipeline as pipeline

    real = pipeline.run_matting
    monkeypatch.setattr(pipeline, "run_matting", lambda *a, **k: solves.append(1) or real(*a, **k))
    code, _stdout, err = _cli(["batch", src, "--out", out, "--quiet"], capsys)
    assert code == 1 and solves == []
    assert err.startswith(f"mattestudio: {out}: the output folder is not writable")
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(OutputError):
        batching.check_output_folder(out)


def test_claims_exclude_each_other_and_stale_claims_are_taken(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    _pair(src, "a")
    job = batching.plan(src, src, out).todo[0]
    with batching.claim(job, out) as first:
        with batching.claim(job, out) as second:
            assert first and not second
        # another batch holds the image: process_one leaves it alone
        outcome = batching.process_one(job, object(), batching.BatchOptions())
        assert outcome.status == "busy"
    assert not list(out.iterdir())  # the claim file goes with the claim
    # a claim file left by a batch that was killed (no lock held) does not block the image
    (out / ".a.claim").write_text("otherhost 12345 0\n")
    with batching.claim(job, out) as held:
        assert held


def test_claims_without_flock_fallback(tmp_path, monkeypatch):
    """Where fcntl is missing (Windows), claims are files created exclusively; a claim whose
    process is gone on this host, or older than an hour, is taken over; a fresh one from another
    host is respected."""
    import socket

    monkeypatch.setitem(sys.modules, "fcntl", None)  # import fcntl raises ImportError
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    _pair(src, "a")
    job = batching.plan(src, src, out).todo[0]
    claim_file = out / ".a.claim"
    with batching.claim(job, out) as first:
        assert claim_file.read_text().split()[:2] == [socket.gethostname(), str(os.getpid())]
        with batching.claim(job, out) as second:
            assert first and not second
    assert not claim_file.exists()
    now = time.time()
    cases = {
        f"{socket.gethostname()} {os.getpid()} {now:.0f}": False,  # alive here: respected
        f"otherhost 12345 {now:.0f}": False,  # another machine, fresh: respected
        f"{socket.gethostname()} 999999999 {now:.0f}": True,  # its process is gone: taken
        "garbage": True,  # unreadable: taken
    }
    for text, taken in cases.items():
        claim_file.write_text(text + "\n")
        with batching.claim(job, out) as held:
            assert held is taken, text
        assert claim_file.exists() is not taken
    claim_file.write_text(f"otherhost 12345 {now:.0f}\n")
    os.utime(claim_file, (now - 7200, now - 7200))  # two hours old: taken even from elsewhere
    with batching.claim(job, out) as held:
        assert held
    assert not claim_file.exists()


def test_claim_held_by_another_process(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    _pair(src, "a")
    job = batching.plan(src, src, out).todo[0]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from mattestudio import batching as b\n"
            f"job = b.plan({str(src)!r}, {str(src)!r}, {str(out)!r}).todo[0]\n"
            f"with b.claim(job, Path({str(out)!r})) as held:\n"
            "    print(held, flush=True); sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert holder.stdout.readline().strip() == "True"
        with batching.claim(job, out) as held:
            assert not held
    finally:
        holder.communicate("\n", timeout=30)
    with batching.claim(job, out) as held:  # released when its holder ends
        assert held


@pytest.mark.slow
def test_two_concurrent_batches_share_the_work(tmp_path):
    # Issue 10 case 7: two concurrent batches on one output folder both redid all work.
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(6):
        _pair(src, f"im{i}", h=120, w=140, seed=i)
    cmd = [sys.executable, "-m", "mattestudio", "batch", str(src), "--out", str(out), "--quiet"]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        for _ in range(2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    done = [int(stdout.strip().splitlines()[-1].split(" done")[0]) for stdout, _ in results]
    assert sum(done) == 6, results  # every image matted exactly once
    assert sorted(p.name for p in out.iterdir()) == [f"im{i}_alpha.png" for i in range(6)]


def test_interrupt_inside_numba_becomes_keyboard_interrupt(tmp_path):
    # numba-compiled code (pymatting's foreground estimator) turns Ctrl-C into
    # "SystemError: CPUDispatcher(...) returned a result with an exception set".
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _pair(src, "a")
    job = batching.plan(src, src, out).todo[0]
    batching.check_output_folder(out)

    class Interrupted:
        info = type("I", (), {"name": "x"})
        params: ClassVar[dict] = {}

        def prepare(self, image):
            pass

        def predict(self, trimap, progress=None, cancel=None):
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as exc:
                raise SystemError(
                    "CPUDispatcher(...) returned a result with an exception set"
                ) from exc

        def reset(self):
            pass

    with pytest.raises(KeyboardInterrupt):
        batching.process_one(job, Interrupted(), batching.BatchOptions())
    assert not list(out.iterdir())


@pytest.mark.slow
def test_ctrl_c_during_batch_leaves_only_complete_files(tmp_path):
    # Issue 10 case 5: Ctrl-C gave "internal error: SystemError ..." in 2 of 3 tries.
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(8):
        _pair(src, f"im{i}", h=400, w=400, seed=i)
    cmd = [sys.executable, "-m", "mattestudio", "batch", str(src), "--out", str(out)]
    for delay in (0.0, 0.3):
        if out.exists():  # the first round's files must not end the wait of the second at once
            shutil.rmtree(out)
        proc = subprocess.Popen(
            cmd + ["--cutout", "--quiet", "--overwrite"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        t0 = time.monotonic()
        while not list(out.glob("*_cutout.png")) and time.monotonic() - t0 < 120:
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 130, stderr
        assert stderr.strip() == "mattestudio: interrupted"
        names = sorted(p.name for p in out.iterdir())
        assert all(n.endswith(("_alpha.png", "_cutout.png")) for n in names), names  # no temp/claim
        for p in out.iterdir():
            assert io.read_image_array(p).shape[:2] == (400, 400)  # complete files only
        stems = {n.rsplit("_", 1)[0] for n in names}
        assert names == sorted(f"{s}_{k}.png" for s in stems for k in ("alpha", "cutout"))
        assert len(stems) < 8  # it really stopped early


def test_an_image_outputs_are_all_or_nothing(tmp_path, monkeypatch):
    """A Ctrl-C between an image's two files leaves neither (the alpha marks an image done for a
    resumed batch, so a lone alpha would leave its cut-out missing for good). Seen in CI as a
    rare failure of the Ctrl-C test above."""
    from mattestudio.engines import registry

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    _pair(src, "a")
    options = batching.BatchOptions(cutout=True)
    job = batching.plan(src, src, out, options).todo[0]
    written = []
    real_rgba = io.save_rgba

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(
        io, "save_rgba", lambda *a, **k: written.append(real_rgba(*a, **k)) or written[-1]
    )
    monkeypatch.setattr(io, "save_alpha", interrupted)
    with pytest.raises(KeyboardInterrupt):
        batching.matte_file(job, registry.create("closed-form"), options)
    assert written and not list(out.iterdir())  # the cut-out was written, then removed
    assert [j.name for j in batching.plan(src, src, out, options).todo] == ["a"]  # not done


def test_python_api_batch(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _pair(src, "a")
    _pair(src, "b", h=1, w=30)
    summary = mattestudio.batch(src, tmp_path / "out", engine="closed-form")
    assert summary.count("done") == 1 and summary.exit_code == 1
    assert [str(f.image.name) for f in summary.failures] == ["b.png"]
    assert "b.png" in summary.failures[0].message
    again = mattestudio.batch(src, tmp_path / "out")
    assert again.count("skipped") == 1 and again.count("done") == 0
    with pytest.raises(MattestudioError, match="not found"):
        mattestudio.batch(tmp_path / "missing", tmp_path / "out")


def test_ctrl_c_while_starting_up_is_one_line(monkeypatch, capsys):
    """Ctrl-C before the command runs (imports, building the parser) is "interrupted", 130."""
    from mattestudio.cli import main as cli_main

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main, "build_parser", interrupted)
    assert cli_main.main(["batch", "x", "--out", "y"]) == 130
    assert capsys.readouterr().err.strip() == "mattestudio: interrupted"


def test_ctrl_c_while_claiming_leaves_no_claim_file(tmp_path, monkeypatch):
    """Seen in CI: Ctrl-C between creating the claim file and locking it left `.NAME.claim`."""
    import fcntl

    from mattestudio import batching

    job = batching.ImageJob("im1", tmp_path / "im1.png", None, (tmp_path / "im1_alpha.png",))
    real = fcntl.flock
    calls = []

    def interrupted_once(fd, op):
        calls.append(op)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", interrupted_once)
    with pytest.raises(KeyboardInterrupt), batching.claim(job, tmp_path):
        pass
    assert list(tmp_path.iterdir()) == []
    # a claim another batch holds is never removed by the clean-up
    monkeypatch.setattr(fcntl, "flock", real)
    with batching.claim(job, tmp_path) as held:
        assert held
        calls.clear()
        monkeypatch.setattr(fcntl, "flock", interrupted_once)
        with pytest.raises(KeyboardInterrupt), batching.claim(job, tmp_path):
            pass
        monkeypatch.setattr(fcntl, "flock", real)
        assert (tmp_path / ".im1.claim").exists()
    assert list(tmp_path.iterdir()) == []
