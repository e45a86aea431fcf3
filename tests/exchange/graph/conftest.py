"""Fixtures of the Graph adapter's tests: the sandbox with its Graph front (traffic checked against Graph's metadata),
the default application registered, and the adapter for a mailbox, pointed at the sandbox's authority and Graph."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from contoso import make_store
from graph_client import APP_ID, APP_SECRET, Graph, register_app
from graph_schema import watch_graph_schema

from widget.exchange.graph.adapter import GraphMailboxPort
from widget.exchange.graph.client import GraphConfig
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


def config_for(front: GraphFront, client_id: str = APP_ID, secret: str = APP_SECRET) -> GraphConfig:
    """The adapter's configuration for the sandbox: its authority, its Graph URL and its CA."""
    authority, _, tenant = front.authority.rpartition("/")
    return GraphConfig(tenant=tenant, client_id=client_id, client_secret=secret, authority_url=authority,
                       base_url=front.graph_url, ca_bundle_file=str(front.ca_file))


@pytest.fixture
def port(front: GraphFront) -> Callable[..., GraphMailboxPort]:
    """The Graph adapter for a mailbox: port("bob@contoso.com")."""

    def build(email: str = "alice@contoso.com", **options: object) -> GraphMailboxPort:
        return GraphMailboxPort(config_for(front, **options), email)  # type: ignore[arg-type]

    return build


@pytest.fixture
def graph(front: GraphFront) -> Graph:
    """A plain Graph client (msal token, requests) to arrange what the adapter then reads."""
    return Graph.app_only(front)
