"""The scheduler: every few seconds the dispatcher syncs the accounts that are due.

`python jobs.py` runs it alone, for deployments whose web workers run without it. Only one scheduler runs
per deployment (see widget/sync/dispatch.py: DeploymentLock); a second one waits, taking over if the first
stops. State that matters (when each account is due, whether it is being synced, how its last sync went)
lives in the application database; jobs take no arguments but the ids they look up.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

TICK_SECONDS = 10
LOCK_RETRY_SECONDS = 30

log = logging.getLogger("widget.jobs")


class Scheduler:
    """APScheduler driving the dispatcher, started only by whoever holds the deployment lock."""

    def __init__(self, app: Flask, tick_seconds: float = TICK_SECONDS):
        from widget.sync.dispatch import DeploymentLock, Dispatcher

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


def main() -> int:
    """Run the scheduler in the foreground until SIGINT or SIGTERM."""
    from widget import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app()
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with app.app_context():
        from flask_migrate import upgrade

        from widget import MIGRATIONS

        upgrade(directory=str(MIGRATIONS))
    scheduler = Scheduler(app)
    while not stop.is_set():
        if scheduler.start():
            print("Scheduler running: syncing accounts as they fall due.", flush=True)
            stop.wait()
            break
        print("Another scheduler runs this deployment; waiting to take over.", flush=True)
        stop.wait(LOCK_RETRY_SECONDS)
    scheduler.stop()
    print("Scheduler stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
