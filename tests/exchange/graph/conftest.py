"""Fixtures of the Graph adapter's tests: the sandbox with its Graph front (traffic checked against Graph's metadata),
the default application registered, and the adapter for a mailbox, pointed at the sandbox's authority and Graph."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from contoso import make_store
from graph_client import APP_ID, APP_SECRET, Graph, adapter_config, register_app
from graph_schema import watch_graph_schema

from widget.exchange.graph.adapter import GraphMailboxPort
from widget.sandbox import Sandbox
from widget.sandbox.graph.server import GraphFront


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox serving EWS and Graph on one store, with the default application registered (every mailbox)."""
    box = Sandbox(make_store()).start()
    front = box.start_graph(tls_dir=tmp_path / "tls")
    check = watch_graph_schema(front)
    register_app(box, client_id=APP_ID, secret=APP_SECRET)
    yield box
    box.stop()
    check()


@pytest.fixture
def front(sandbox: Sandbox) -> GraphFront:
    """The sandbox's Graph front."""
    assert sandbox.graph is not None
    return sandbox.graph


@pytest.fixture
def port(front: GraphFront) -> Callable[..., GraphMailboxPort]:
    """The Graph adapter for a mailbox: port("bob@contoso.com")."""

    def build(email: str = "alice@contoso.com", **options: object) -> GraphMailboxPort:
        return GraphMailboxPort(adapter_config(front, **options), email)  # type: ignore[arg-type]

    return build


@pytest.fixture
def graph(front: GraphFront) -> Graph:
    """A plain Graph client (msal token, requests) to arrange what the adapter then reads."""
    return Graph.app_only(front)
