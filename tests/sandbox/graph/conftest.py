"""Fixtures of the Graph sandbox tests: the sandbox with its Graph front, traffic checked against the EWS schema
and Graph's metadata, and the default application registered (secret, the four permissions, every mailbox)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from contoso import make_store
from ews_schema import watch_schema
from exchangelib.protocol import close_connections
from graph_client import APP_ID, APP_SECRET, Graph, register_app
from graph_schema import watch_graph_schema

from widget.sandbox import Sandbox
from widget.sandbox.graph.server import GraphFront


@pytest.fixture
def graph_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox serving EWS and Graph on one store, with the default application registered."""
    box = Sandbox(make_store()).start()
    front = box.start_graph(tls_dir=tmp_path / "tls")
    ews_check = watch_schema(box)
    graph_check = watch_graph_schema(front)
    register_app(box, client_id=APP_ID, secret=APP_SECRET)
    yield box
    close_connections()
    box.stop()
    ews_check()
    graph_check()


@pytest.fixture
def front(graph_sandbox: Sandbox) -> GraphFront:
    """The sandbox's Graph front."""
    assert graph_sandbox.graph is not None
    return graph_sandbox.graph


@pytest.fixture
def graph(front: GraphFront) -> Graph:
    """A Graph client with an app-only token (client secret) from msal."""
    return Graph.app_only(front)


@pytest.fixture
def sandbox(graph_sandbox: Sandbox) -> Sandbox:
    """The suite's `account` fixture builds exchangelib accounts on `sandbox`: here, the one with a Graph front."""
    return graph_sandbox
