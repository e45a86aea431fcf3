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

LOCK_RETRY_SECONDS = 30

log = logging.getLogger("widget.jobs")


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
    from widget.sync.scheduler import Scheduler

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
