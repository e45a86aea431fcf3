"""A local Exchange server speaking EWS over HTTP, for the demo, the tests and the benchmarks."""

from .server import EWS_PATH, Sandbox
from .store import Store, User

__all__ = ["EWS_PATH", "Sandbox", "Store", "User"]
