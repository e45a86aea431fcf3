"""A local Exchange server: one store of mailboxes, EWS over HTTP and (graph/) Microsoft Graph with the identity
platform over HTTPS, for the demo, the tests and the benchmarks."""

from .server import EWS_PATH, Sandbox
from .store import Store, User

__all__ = ["EWS_PATH", "Sandbox", "Store", "User"]
