"""The wheel as an operator installs it: built from the checkout, installed into a fresh virtual environment outside
it, and served from there by several gunicorn workers starting at once on a fresh database.

`pip install -e` would hide a wheel that lacks its templates, static files or migrations; this test does not.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 3


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback only
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _run(*command: str | Path, cwd: Path) -> None:
    done = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_it_serves_pages_static_files_and_htmx_from_a_wheel_installed_outside_the_checkout(tmp_path):
    wheels, venv, instance, elsewhere = (tmp_path / name for name in ("wheels", "venv", "instance", "elsewhere"))
    log = tmp_path / "gunicorn.log"
    elsewhere.mkdir()
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, ROOT,
         cwd=elsewhere)
    (wheel,) = wheels.glob("exchange_widget-*.whl")
    _run(sys.executable, "-m", "venv", venv, cwd=elsewhere)
    _run(venv / "bin" / "pip", "install", "-q", f"{wheel}[deploy]", cwd=elsewhere)

    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(WIDGET_INSTANCE_PATH=str(instance), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    server = subprocess.Popen(
        [str(venv / "bin" / "gunicorn"), "--workers", str(WORKERS), "--bind", "127.0.0.1:0", "--log-file", str(log),
         "widget:create_app()"],
        cwd=elsewhere, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # The port the system picked, from gunicorn's log (one picked beforehand could be taken by another test).
        deadline = time.monotonic() + 60
        while not (listening := re.search(r"Listening at: http://127\.0\.0\.1:(\d+)",
                                          log.read_text() if log.exists() else "")):
            assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        base = f"http://127.0.0.1:{listening.group(1)}"
        # Every worker's first request migrates the fresh database: they must wait for each other, not collide.
        with concurrent.futures.ThreadPoolExecutor(max_workers=4 * WORKERS) as pool:
            answers = list(pool.map(_get, [f"{base}/signin"] * (4 * WORKERS)))
        assert [status for status, _ in answers] == [200] * (4 * WORKERS)
        page = answers[0][1].decode()
        assert "<label" in page and "Authorize" in page
        htmx_path = re.search(r'src="(/static/vendor/htmx-[0-9.]+/htmx\.min\.js)"', page).group(1)
        status, htmx = _get(base + htmx_path)
        assert status == 200 and b"htmx" in htmx[:2000]
        css_path = re.search(r'href="(/static/css/widget\.css[^"]*)"', page).group(1)
        assert _get(base + css_path)[0] == 200
        assert _get(f"{base}/healthz")[0] == 200
        # The package came from the virtual environment, not from this checkout.
        location = subprocess.run([str(venv / "bin" / "python"), "-c", "import widget; print(widget.__file__)"],
                                  capture_output=True, text=True, cwd=elsewhere, env=env).stdout
        assert Path(location.strip()).is_relative_to(venv)
    finally:
        server.terminate()
        server.wait(timeout=30)
    output = log.read_text()
    assert "Traceback" not in output, output[-3000:]
