"""The test organisation of the Exchange sandbox: three people and a service account allowed to impersonate."""

from __future__ import annotations

from widget.sandbox import Store

PASSWORDS = {
    "alice@contoso.com": "Alice-pw-1",
    "bob@contoso.com": "Bob-pw-1",
    "carol@contoso.com": "Carol-pw-1",
    "svc-crm@contoso.com": "Service-pw-1",
}

# Other secrets the tests use, which no log may show either (the web tests' administrator password).
# The Graph tests' client secret is one too.
EXTRA_SECRETS = ("Admin-password-1", "Graph-app-secret-1")


def make_store() -> Store:
    """A fresh store holding the test organisation."""
    store = Store(lockout_threshold=5)
    store.add_user("alice@contoso.com", PASSWORDS["alice@contoso.com"], "Alice Adams")
    store.add_user("bob@contoso.com", PASSWORDS["bob@contoso.com"], "Bob Brown")
    store.add_user("carol@contoso.com", PASSWORDS["carol@contoso.com"], "Carol Chen")
    store.add_user(
        "svc-crm@contoso.com", PASSWORDS["svc-crm@contoso.com"], "CRM Service", username="svc-crm", can_impersonate=True
    )
    return store
