"""APScheduler driving the dispatcher (widget/sync/dispatch.py), for `python jobs.py` and the demo."""

from __future__ import annotations

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

TICK_SECONDS = 10


class Scheduler:
    """APScheduler driving the dispatcher, started only by whoever holds the deployment lock."""

    def __init__(self, app: Flask, tick_seconds: float = TICK_SECONDS):
        from .dispatch import DeploymentLock, Dispatcher

        self.app = app
        self.lock = DeploymentLock(app)
        self.dispatcher = Dispatcher(app)
        self.tick_seconds = tick_seconds
        self._scheduler: BackgroundScheduler | None = None

    def start(self) -> bool:
        """Start dispatching if this process gets the deployment lock; False if another scheduler has it."""
        if not self.lock.acquire():
            return False
        self._scheduler = BackgroundScheduler(daemon=True)
        self._scheduler.add_job(self.dispatcher.tick, "interval", seconds=self.tick_seconds, id="dispatch",
                                max_instances=1, coalesce=True)
        self._scheduler.start()
        return True

    @property
    def running(self) -> bool:
        """Whether this scheduler dispatches."""
        return self._scheduler is not None

    def stop(self) -> None:
        """Stop dispatching, let running syncs finish, and release the lock."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        self.dispatcher.shutdown(wait=True)
        self.lock.release()
