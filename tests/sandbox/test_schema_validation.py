"""The schema validation that watches the whole suite: it must catch what is invalid."""

from __future__ import annotations

from lxml import etree


def _envelope(body: str) -> etree._Element:
    return etree.fromstring(
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
        'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">'
        f'<s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body>{body}</s:Body></s:Envelope>'
    )


def test_it_accepts_a_valid_request(schema_validator):
    valid = _envelope(
        "<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>"
        '<m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>'
    )
    assert schema_validator.errors(valid) == []


def test_it_catches_an_invalid_document(schema_validator):
    # Elements out of order, an unknown folder name and a missing required child.
    invalid = _envelope(
        '<m:GetFolder><m:FolderIds><t:DistinguishedFolderId Id="postbox"/></m:FolderIds>'
        "<m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape></m:GetFolder>"
    )
    errors = schema_validator.errors(invalid)
    assert errors and all(error.startswith("GetFolder:") for error in errors)
    wrong_header = _envelope("<m:GetFolder/>")
    wrong_header.find("{http://schemas.xmlsoap.org/soap/envelope/}Header")[0].set("Version", "Exchange1999")
    assert any(error.startswith("RequestServerVersion:") for error in schema_validator.errors(wrong_header))


def test_it_catches_an_invalid_reply_from_the_sandbox(sandbox, account, schema_validator, monkeypatch):
    alice = account("alice@contoso.com")
    alice.inbox.refresh()
    before = len(schema_validator.failures)
    # Make the sandbox write an element the schema does not know: the validator must notice the invalid reply.
    from widget.sandbox.operations import folders

    original = folders.render_folder

    def broken(parent, store, folder, fields):  # noqa: ANN001, ANN202 - same signature as the original
        original(parent, store, folder, fields)
        etree.SubElement(parent[-1], "{http://schemas.microsoft.com/exchange/services/2006/types}Colour").text = "red"

    monkeypatch.setattr(folders, "render_folder", broken)
    alice.inbox.refresh()
    new = schema_validator.failures[before:]
    assert any("response GetFolderResponse" in failure and "Colour" in failure for failure in new)
    del schema_validator.failures[before:]
