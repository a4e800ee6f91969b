"""Qt test plumbing: settings and autosaves in tmp, dialogs recorded instead of shown, a window
factory with a small synthetic image. QT_QPA_PLATFORM=offscreen is set by tests/conftest.py."""

from __future__ import annotations

import faulthandler
import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QEvent, QPointF, QSettings, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from mattestudio.types import MattingResult


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """QSettings and autosaves go to tmp_path; no real user state is read or written."""
    cfg = tmp_path / "config"
    cfg.mkdir()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(cfg))
    monkeypatch.setenv("MATTESTUDIO_AUTOSAVE_DIR", str(tmp_path / "autosave"))
    monkeypatch.delenv("MATTESTUDIO_MAX_PIXELS", raising=False)
    yield


class Dialogs:
    """Records QMessageBox calls; ``answer`` is what question() returns."""

    def __init__(self):
        self.calls: list[tuple[str, str, str]] = []
        self.answer = QMessageBox.StandardButton.No

    def kinds(self) -> list[str]:
        return [c[0] for c in self.calls]

    def texts(self) -> str:
        return "\n".join(c[2] for c in self.calls)


@pytest.fixture(autouse=True)
def dialogs(monkeypatch) -> Dialogs:
    rec = Dialogs()

    def make(kind):
        def fake(parent, title, text, *args, **kwargs):
            rec.calls.append((kind, title, text))
            if kind == "question":
                return rec.answer
            return QMessageBox.StandardButton.Ok

        return staticmethod(fake)

    for kind in ("warning", "information", "critical", "question"):
        monkeypatch.setattr(QMessageBox, kind, make(kind))
    return rec


@pytest.fixture
def make_window(qtbot, synthetic_files):
    """Factory: a shown MainWindow with the 64 x 80 synthetic image and trimap open."""
    from mattestudio.ui.app import create_app
    from mattestudio.ui.main_window import MainWindow

    create_app()
    windows = []

    def make(open_files: bool = True, trimap: bool = True):
        win = MainWindow()
        qtbot.addWidget(win)
        win.resize(1000, 700)
        win.show()
        qtbot.waitExposed(win)
        if open_files:
            assert win.files.open_image(
                str(synthetic_files["image"]), str(synthetic_files["trimap"]) if trimap else None
            )
        windows.append(win)
        return win

    yield make
    for win in windows:
        win.document.modified = False
        win.close()


@pytest.fixture
def window(make_window):
    return make_window()


@pytest.fixture
def solved(window, synthetic_matte):
    """The window with the synthetic matte set as its result (no engine run)."""
    m = synthetic_matte
    window.document.set_result(
        MattingResult(alpha=m.alpha.copy(), foreground=m.foreground.copy(), engine="test")
    )
    return window


def mouse(widget, kind: str, pos, button=Qt.MouseButton.LeftButton, buttons=None) -> None:
    """Send one synthetic mouse event to ``widget`` (a canvas viewport)."""
    types = {
        "press": QEvent.Type.MouseButtonPress,
        "move": QEvent.Type.MouseMove,
        "release": QEvent.Type.MouseButtonRelease,
    }
    if buttons is None:
        buttons = Qt.MouseButton.NoButton if kind == "release" else button
    if kind == "move":
        btn = Qt.MouseButton.NoButton
    else:
        btn = button
    p = QPointF(pos)
    ev = QMouseEvent(
        types[kind], p, widget.mapToGlobal(p), btn, buttons, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, ev)


def wait_idle(qtbot, win, timeout=30000):
    qtbot.waitUntil(lambda: not win.runner.busy, timeout=timeout)


@pytest.fixture
def send_mouse():
    return mouse


@pytest.fixture
def idle(qtbot):
    return lambda win, timeout=30000: wait_idle(qtbot, win, timeout)


@pytest.fixture(scope="session", autouse=True)
def shared_engine_process():
    """One engine process for the whole session: starting one costs about 2 s (imports)."""
    from mattestudio.ui.engine_process import EngineProcess
    from mattestudio.ui.runner import MattingRunner

    proc = EngineProcess()
    MattingRunner.shared_process = proc
    yield proc
    MattingRunner.shared_process = None
    proc.stop()


WATCHDOG_S = 0.035


class EventLoopProbe:
    """A QTimer ticking every 5 ms on the GUI thread. Each gap between ticks is split into the
    time the thread waited for a CPU (the machine's load, from /proc/thread-self/schedstat), the
    time the virtual machine's CPUs were taken by its host (steal, /proc/stat: the guest counts
    that as running, so schedstat cannot see it; the largest per-CPU amount in the gap is taken,
    at the kernel's 10 ms resolution) and the rest: work or blocking on the GUI thread, which is
    what the editor controls. A stall is the rest; wall gaps are reported too."""

    def __init__(self) -> None:
        import time

        from PySide6.QtCore import QTimer

        self._clock = time.perf_counter
        self.wall: list[float] = []
        self.stalls: list[float] = []
        self.stolen: list[float] = []
        self._last = (self._clock(), self._queued(), self._steal())
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)

    @staticmethod
    def _queued() -> float:
        try:
            with open("/proc/thread-self/schedstat") as f:
                return int(f.read().split()[1]) / 1e9  # ns waiting on a run queue
        except (OSError, ValueError, IndexError):  # not Linux: count the whole gap
            return 0.0

    @staticmethod
    def _steal() -> list[float]:
        """Seconds of steal per CPU so far (empty where /proc/stat has none)."""
        import os

        try:
            with open("/proc/stat") as f:
                rows = [line.split() for line in f if line.startswith("cpu") and line[3] != " "]
            hz = os.sysconf("SC_CLK_TCK")
            return [int(r[8]) / hz for r in rows]
        except (OSError, ValueError, IndexError):
            return []

    def _tick(self) -> None:
        now, queued, steal = self._clock(), self._queued(), self._steal()
        gap = now - self._last[0]
        before = self._last[2]
        stolen = (
            max((b - a for a, b in zip(before, steal, strict=True)), default=0.0)
            if len(before) == len(steal)
            else 0.0
        )
        self._arm_watchdog()
        self.wall.append(gap)
        self.stolen.append(stolen)
        self.stalls.append(gap - (queued - self._last[1]) - stolen)
        self._last = (now, queued, steal)

    def start(self) -> None:
        import gc

        # The test process holds every earlier test's objects: collect them now, so that a
        # full collection of the whole suite's garbage does not land inside the measurement
        # (the editor alone has far fewer objects). Collections that still happen are reported.
        gc.collect()
        self.gc_pauses: list[float] = []
        self._gc_start = 0.0
        gc.callbacks.append(self._gc)
        self._dump = tempfile.TemporaryFile("w+")  # noqa: SIM115 (read by summary after stop)
        self._arm_watchdog()
        self._last = (self._clock(), self._queued(), self._steal())
        self.timer.start()

    def _arm_watchdog(self) -> None:
        # faulthandler's watchdog is a C thread that needs no GIL: if the next tick is over
        # WATCHDOG_S late, it writes every thread's Python stack, whatever holds the GUI thread.
        faulthandler.dump_traceback_later(WATCHDOG_S, file=self._dump)

    def stacks(self) -> str:
        """The stacks written during late ticks (empty when none was late)."""
        if not hasattr(self, "_dump"):
            return ""
        self._dump.seek(0)
        return self._dump.read()

    def _gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = self._clock()
        elif info.get("generation", 0) == 2:
            self.gc_pauses.append(self._clock() - self._gc_start)

    def stop(self) -> None:
        import gc

        self.timer.stop()
        faulthandler.cancel_dump_traceback_later()
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)

    def summary(self) -> str:
        pauses = getattr(self, "gc_pauses", [])
        return (
            f"event loop: {len(self.wall)} ticks, worst stall {1000 * max(self.stalls):.1f} ms, "
            f"worst wall gap {1000 * max(self.wall):.1f} ms, "
            f"host steal {1000 * sum(self.stolen):.0f} ms in all, "
            f"{len(pauses)} full garbage collections ({1000 * sum(pauses):.1f} ms)"
            + (
                f"\nstacks when a tick was over {1000 * WATCHDOG_S:.0f} ms late:\n{stacks}"
                if (stacks := self.stacks())
                else ""
            )
        )


STALL_LIMIT_S = 0.050


def check_no_stall(activity, limit: float = STALL_LIMIT_S) -> None:
    """Run ``activity(round)`` under an EventLoopProbe and fail if the event loop stalled for
    ``limit`` or more. A stall in the first round gets a second round: work the editor does on
    every update stalls both, while a shared CI machine's rare scheduling hiccup (one 56-79 ms
    gap in a few full runs, no garbage collection, never reproduced alone) does not."""
    summaries = []
    for round_ in range(2):
        probe = EventLoopProbe()
        probe.start()
        try:
            activity(round_)
        finally:
            probe.stop()
        assert len(probe.wall) > 20, probe.summary()
        summaries.append(probe.summary())
        print(summaries[-1])
        if max(probe.stalls) < limit:
            return
    pytest.fail(
        f"the event loop stalled {1000 * limit:.0f} ms or more in both rounds:\n"
        + "\n".join(summaries)
    )


@pytest.fixture
def no_stall():
    return check_no_stall
