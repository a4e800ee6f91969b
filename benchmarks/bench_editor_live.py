"""The real editor (offscreen) on a camera-size photo: Live strokes timed from mouse-up to the
first change on the canvas and to the final (settled) result, and the peak memory of the editor
and its engine process.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_editor_live.py --mp 12 --strokes 5

The photo is benchmarks/large_scene.py's (a wide hair band, about 40 % unknown). The editor
first runs the engine (Run, a clean full solve, so Live starts from a settled matte), then Live
is switched on and each stroke (bench_large's strokes: 300-500 px, radius 24 px at 12 MP) is
committed to the Document as one edit, as a brush stroke's mouse-up does. ``first``: the first result of the
new trimap revision is drawn on the canvas (``preview_ready``); ``final``: the runner is idle
and the preview is up to date (no refinement left). Peak memory: VmHWM of both processes, read
at the end; the editor's peak is reset once the test photo is made (making it peaks at ~0.9 GB
at 12 MP, which no editor does), so it counts loading the photo into the window and all after.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _hwm_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_hwm(pid: int | str = "self") -> bool:
    """Reset a process's VmHWM to its current RSS (Linux 4.0+); False when not possible."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _rss_parts(pid: int | str = "self") -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
            out[key] = int(line.split()[1]) / 1024
    return out


def main() -> None:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    from editor_settings import private_settings
    from large_scene import SIZES, make_scene

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mp", type=int, default=12, choices=sorted(SIZES))
    ap.add_argument("--strokes", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    private_settings()
    from bench_large import strokes
    from PySide6.QtWidgets import QApplication

    from mattestudio.machine import describe
    from mattestudio.ui.app import create_app
    from mattestudio.ui.main_window import MainWindow

    h, w = SIZES[args.mp]
    image, trimap, _ = make_scene(h, w)
    hwm_reset = _reset_hwm()
    create_app()
    win = MainWindow()
    win.resize(1400, 900)
    win.show()
    doc, canvas, runner = win.document, win.canvas, win.runner
    doc.set_image(image, trimap)
    win.engine_panel.set_engine("closed-form")
    win.view_panel.set_mode("composite")
    app = QApplication.instance()

    def wait(cond, what: str) -> None:
        end = time.monotonic() + args.timeout
        while not cond():
            if time.monotonic() > end:
                raise SystemExit(f"bench_editor_live: timed out waiting for {what}")
            app.processEvents()
            time.sleep(0.002)

    def settled() -> bool:
        return (
            not runner.busy
            and not canvas.preview_pending
            and doc.result is not None
            and doc.result_revision == doc.revision
        )

    # Peaks per phase too (VmHWM reset at each phase's start): where the editor's peak is.
    phases: dict[str, dict[str, float]] = {}
    runner.warm_up()
    wait(lambda: runner._worker.process.alive, "the engine process")
    engine_pid = runner._worker.process._proc.pid

    def phase_start() -> tuple[float, float]:
        return _hwm_mb(), _hwm_mb(engine_pid)

    def phase_end(name: str, before: tuple[float, float]) -> None:
        phases[name] = {"editor_mb": _hwm_mb(), "engine_mb": _hwm_mb(engine_pid)}
        # The whole run's peak is the largest of the phases' and what came before.
        overall[0] = max(overall[0], before[0], phases[name]["editor_mb"])
        overall[1] = max(overall[1], before[1], phases[name]["engine_mb"])
        _reset_hwm()
        _reset_hwm(engine_pid)

    overall = [0.0, 0.0]
    before = phase_start()
    _reset_hwm()
    _reset_hwm(engine_pid)
    phases["photo + start-up"] = {"editor_mb": before[0], "engine_mb": before[1]}
    overall[:] = list(before)
    t0 = time.perf_counter()
    win.run()
    wait(settled, "Run")
    run_s = time.perf_counter() - t0
    phase_end("Run", before)
    before = phase_start()
    win.set_live(True)
    wait(settled, "Live start")
    phase_end("Live start", before)
    before = phase_start()
    shown: list[tuple[float, int]] = []
    canvas.preview_ready.connect(lambda: shown.append((time.perf_counter(), doc.result_revision)))
    first, final, approx = [], [], []
    for k, tri in enumerate(strokes(trimap, args.strokes)):
        changed = np.argwhere(tri != doc.trimap)
        if not len(changed):
            continue
        shown.clear()
        # One stroke's trimap as one edit (what a brush stroke's mouse-up commits).
        doc.set_trimap(tri, f"stroke {k}", as_base=False, source="bench")
        up = time.perf_counter()
        rev = doc.revision
        wait(lambda rev=rev: any(r == rev for _, r in shown), "first change")
        first.append(next(t for t, r in shown if r == rev) - up)
        wait(settled, "final")
        final.append(time.perf_counter() - up)
        approx.append(len(doc.result.approximate))
    phase_end("Live strokes", before)
    assert runner._worker.process._proc.pid == engine_pid, "the engine process was restarted"
    report = {
        "mp": args.mp,
        "size": f"{w}x{h}",
        "unknown_fraction": float((trimap == 128).mean()),
        "run_s": run_s,
        "first_s": first,
        "final_s": final,
        "approximate_left": approx,
        "first_p50": float(np.percentile(first, 50)),
        "first_p95": float(np.percentile(first, 95)),
        "final_p50": float(np.percentile(final, 50)),
        "final_p95": float(np.percentile(final, 95)),
        "editor_hwm_mb": overall[0],
        "editor_hwm_reset_after_scene": hwm_reset,
        "engine_hwm_mb": overall[1],
        "phase_peaks_mb": phases,
        "editor_rss_end_mb": _rss_parts(),
        "engine_rss_end_mb": _rss_parts(engine_pid),
        "patches": canvas.patches,
        "preview_level": getattr(canvas, "preview_level", None),
        "loadavg": os.getloadavg(),
        "machine": describe("numpy", "scipy", "PySide6"),
    }
    report["together_hwm_mb"] = report["editor_hwm_mb"] + report["engine_hwm_mb"]
    text = json.dumps(report, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    doc.modified = False
    win.close()


if __name__ == "__main__":
    main()
