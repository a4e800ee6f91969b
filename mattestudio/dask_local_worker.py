"""Preloaded into the worker processes of ``mattestudio batch --workers N`` (a LocalCluster).

A terminal's Ctrl-C reaches the whole process group. The batch itself handles it (cancels the
tasks, closes the cluster, exits 130), so its local workers ignore it instead of each printing a
traceback; and, like the batch, they keep Dask's shutdown chatter off stderr (a worker whose
scheduler has just closed logs a heartbeat ERROR with a traceback). Their real failures still
reach the batch: a failed task's error travels back with its future and is reported by image.
Not meant for ``dask worker`` processes started by hand.
"""

from __future__ import annotations

import logging
import signal
import threading


def dask_setup(worker) -> None:
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
