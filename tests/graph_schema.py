"""The Graph sandbox's contract: every JSON body it receives and sends, checked against Graph v1.0's official
metadata (CSDL) beside the checkout, or where WIDGET_GRAPH_SCHEMA_DIR points.

The metadata says which members a type has and what their values are; what it does not say (error bodies,
delta's ``@removed``, OData's annotations) is checked here from Graph's reference documents.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from widget.sandbox.graph.server import GraphFront

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
METADATA_FILE = "v1.0-metadata.xml"
# OData's own annotations a body may carry (the OData JSON format), at the top or on an entity.
COLLECTION_ANNOTATIONS = {"@odata.context", "@odata.nextLink", "@odata.deltaLink", "@odata.count"}
ENTITY_ANNOTATIONS = {"@odata.context", "@odata.etag", "@odata.type", "@odata.id", "@odata.editLink"}
REMOVED_REASONS = {"deleted", "changed"}
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DURATION = re.compile(r"^-?P(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


@dataclass
class TypeInfo:
    """One EntityType or ComplexType: its own properties (name -> (type, nullable)), base and openness."""

    name: str
    kind: str  # "entity" or "complex"
    properties: dict[str, tuple[str, bool]]
    base: str | None
    open: bool


@dataclass
class Metadata:
    """Graph's types, enums and actions, indexed by name."""

    types: dict[str, TypeInfo] = field(default_factory=dict)
    enums: dict[str, set[str]] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    actions: dict[str, list[dict[str, tuple[str, bool]]]] = field(default_factory=dict)

    def chain(self, name: str) -> list[TypeInfo]:
        """A type and its bases, most derived first."""
        found = []
        current: str | None = name
        while current is not None:
            info = self.types[current]
            found.append(info)
            current = info.base
        return found

    def derives_from(self, name: str, base: str) -> bool:
        """Whether type `name` is `base` or derives from it."""
        return any(info.name == base for info in self.chain(name))


def _short(type_name: str) -> str:
    return type_name.removeprefix("graph.").removeprefix("microsoft.graph.")


def load_metadata(folder: Path) -> Metadata:
    """Parse the CSDL once. The main schema's names are kept short ("message"); the others' carry their namespace
    below microsoft.graph ("security.user"), and "self." (their alias) is resolved."""
    tree = etree.parse(str(folder / METADATA_FILE), etree.XMLParser(huge_tree=True, resolve_entities=False))
    found = Metadata()
    for schema in tree.iter(f"{EDM}Schema"):
        namespace, alias = schema.get("Namespace", ""), schema.get("Alias")
        prefix = "" if namespace == "microsoft.graph" else namespace.removeprefix("microsoft.graph.") + "."

        def qualified(type_name: str | None, namespace: str = namespace, alias: str | None = alias) -> str | None:
            if type_name is None:
                return None
            collection = type_name.startswith("Collection(")
            inner = type_name[11:-1] if collection else type_name
            if alias and inner.startswith(alias + "."):
                inner = namespace + inner[len(alias):]
            inner = inner if inner.startswith("Edm.") else _short(inner)
            return f"Collection({inner})" if collection else inner

        for elem in schema:
            tag = etree.QName(elem).localname if isinstance(elem.tag, str) else ""
            name = prefix + (elem.get("Name") or "")
            if tag in ("EntityType", "ComplexType"):
                props = {p.get("Name"): (qualified(p.get("Type")), p.get("Nullable") != "false")
                         for p in elem if isinstance(p.tag, str) and etree.QName(p).localname in (
                             "Property", "NavigationProperty")}
                found.types[name] = TypeInfo(name, "entity" if tag == "EntityType" else "complex", props,
                                             qualified(elem.get("BaseType")), elem.get("OpenType") == "true")
            elif tag == "EnumType":
                found.enums[name] = {m.get("Name") for m in elem.iter(f"{EDM}Member")}
                if elem.get("IsFlags") == "true":
                    found.flags.add(name)
            elif tag in ("Action", "Function"):
                params = {p.get("Name"): (qualified(p.get("Type")), p.get("Nullable") != "false")
                          for p in elem.iter(f"{EDM}Parameter") if p.get("Name") != "bindingParameter"}
                found.actions.setdefault(name, []).append(params)
    return found


class GraphSchemaChecker:
    """Checks JSON bodies against the metadata; counts them and keeps what failed."""

    def __init__(self, metadata: Metadata):
        self.metadata = metadata
        self.checked = 0
        self.failures: list[str] = []

    def __call__(self, direction: str, odata_type: str, endpoint: str, data: Any) -> None:
        """A Graph front observer: check one body (a request the sandbox refused is counted, not held against it)."""
        self.checked += 1
        problems = self.problems(odata_type, data)
        if problems and direction != "refused request":
            self.failures.append(f"{direction} of {endpoint or '?'} as {odata_type}: " + "; ".join(problems[:5]))

    def problems(self, odata_type: str, data: Any) -> list[str]:
        """What is wrong with `data` as a body of `odata_type` ("message", "Collection(event)", "action:sendMail",
        "error")."""
        problems: list[str] = []
        if odata_type == "error":
            self._error(data, problems)
        elif odata_type == "batch":
            self._batch(data, problems)
        elif odata_type.startswith("action:"):
            self._action(odata_type.removeprefix("action:"), data, problems)
        elif odata_type.startswith("Collection("):
            self._collection(_short(odata_type[len("Collection("):-1]), data, problems)
        else:
            self._entity(_short(odata_type), data, "$", problems, top=True)
        return problems

    # -- shapes that are not in the metadata ---------------------------------------------------------------------
    @staticmethod
    def _error(data: Any, problems: list[str]) -> None:
        error = data.get("error") if isinstance(data, dict) else None
        if not isinstance(data, dict) or set(data) != {"error"} or not isinstance(error, dict):
            problems.append("an error body is {\"error\": {...}} and nothing else")
            return
        for name in ("code", "message"):
            if not isinstance(error.get(name), str) or not error[name]:
                problems.append(f"error.{name} must be a non-empty string")
        inner = error.get("innerError")
        if not isinstance(inner, dict) or not {"date", "request-id", "client-request-id"} <= set(inner):
            problems.append("error.innerError must hold date, request-id and client-request-id")
        if set(error) - {"code", "message", "innerError", "details", "target"}:
            problems.append(f"unexpected members in error: {sorted(set(error) - {'code', 'message', 'innerError'})}")

    @staticmethod
    def _batch(data: Any, problems: list[str]) -> None:
        """JSON batching's envelope (https://learn.microsoft.com/graph/json-batching): requests or responses."""
        if not isinstance(data, dict) or len(data) != 1 or not isinstance(next(iter(data.values())), list):
            problems.append("a batch is {\"requests\": [...]} or {\"responses\": [...]}")
            return
        key, steps = next(iter(data.items()))
        allowed = {"requests": {"id", "method", "url", "headers", "body", "dependsOn"},
                   "responses": {"id", "status", "headers", "body"}}.get(key)
        if allowed is None:
            problems.append(f"a batch holds requests or responses, not {key}")
            return
        for index, step in enumerate(steps):
            if not isinstance(step, dict) or not isinstance(step.get("id"), str) or set(step) - allowed:
                problems.append(f"$.{key}[{index}]: a step has a string id and only {sorted(allowed)}")
            elif key == "responses" and not isinstance(step.get("status"), int):
                problems.append(f"$.responses[{index}]: a response has a whole-number status")

    def _collection(self, type_name: str, data: Any, problems: list[str]) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("value"), list):
            problems.append("a collection is an object with a 'value' list")
            return
        extra = set(data) - COLLECTION_ANNOTATIONS - {"value"}
        if extra:
            problems.append(f"unexpected members of a collection: {sorted(extra)}")
        if "@odata.nextLink" in data and "@odata.deltaLink" in data:
            problems.append("a page has a nextLink or a deltaLink, never both")
        for name in ("@odata.nextLink", "@odata.deltaLink"):
            if name in data and not str(data[name]).startswith("https://"):
                problems.append(f"{name} must be an absolute https URL")
        for index, entry in enumerate(data["value"]):
            if isinstance(entry, dict) and "@removed" in entry:
                removed = entry["@removed"]
                if set(entry) != {"id", "@removed"} or not isinstance(removed, dict) or removed.get(
                        "reason") not in REMOVED_REASONS:
                    problems.append(f"$.value[{index}]: a removal is {{id, @removed: {{reason}}}}")
                continue
            self._value(type_name, entry, True, f"$.value[{index}]", problems)

    def _action(self, name: str, data: Any, problems: list[str]) -> None:
        overloads = self.metadata.actions.get(name)
        if not overloads:
            problems.append(f"no action {name} in the metadata")
            return
        if not isinstance(data, dict):
            problems.append("an action's body is a JSON object")
            return
        best: list[str] | None = None
        for params in overloads:
            # Graph reads action parameters case-insensitively ("message" for "Message").
            by_lower = {key.lower(): value for key, value in params.items()}
            attempt: list[str] = []
            for key, value in data.items():
                if key.lower() not in by_lower:
                    attempt.append(f"$.{key}: not a parameter of {name}")
                    continue
                type_name, nullable = by_lower[key.lower()]
                self._value(type_name, value, nullable, f"$.{key}", attempt)
            if not attempt:
                return
            best = attempt if best is None or len(attempt) < len(best) else best
        problems.extend(best or [])

    # -- values --------------------------------------------------------------------------------------------------
    def _entity(self, type_name: str, data: Any, path: str, problems: list[str], top: bool = False) -> None:
        metadata = self.metadata
        if type_name not in metadata.types:
            problems.append(f"{path}: no type {type_name} in the metadata")
            return
        if not isinstance(data, dict):
            problems.append(f"{path}: expected an object of type {type_name}")
            return
        declared = data.get("@odata.type")
        if declared is not None:
            actual = _short(str(declared).lstrip("#"))
            if actual not in metadata.types or not metadata.derives_from(actual, type_name):
                problems.append(f"{path}: @odata.type {declared} is not a {type_name}")
                return
            type_name = actual
        chain = metadata.chain(type_name)
        members: dict[str, tuple[str, bool]] = {}
        for info in reversed(chain):
            members.update(info.properties)
        is_open = any(info.open for info in chain)
        for key, value in data.items():
            if key.startswith("@"):
                if key not in ENTITY_ANNOTATIONS and not key.endswith(("@odata.type", "@odata.nextLink")):
                    problems.append(f"{path}.{key}: not an OData annotation")
                continue
            if key not in members:
                if not is_open:
                    problems.append(f"{path}.{key}: not a property of {type_name}")
                continue
            member_type, nullable = members[key]
            self._value(member_type, value, nullable, f"{path}.{key}", problems)

    def _value(self, type_name: str, value: Any, nullable: bool, path: str, problems: list[str]) -> None:
        if value is None:
            if not nullable:
                problems.append(f"{path}: null where {type_name} is not nullable")
            return
        if type_name.startswith("Collection("):
            if not isinstance(value, list):
                problems.append(f"{path}: expected a list of {type_name[11:-1]}")
                return
            for index, entry in enumerate(value):
                self._value(type_name[11:-1], entry, False, f"{path}[{index}]", problems)
            return
        if type_name.startswith("Edm."):
            self._primitive(type_name, value, path, problems)
            return
        name = _short(type_name)
        if name in self.metadata.enums:
            members = self.metadata.enums[name]
            parts = str(value).split(",") if name in self.metadata.flags else [value]
            if not isinstance(value, str) or any(part.strip() not in members for part in parts):
                problems.append(f"{path}: {value!r} is not a member of {name}")
            return
        self._entity(name, value, path, problems)

    @staticmethod
    def _primitive(type_name: str, value: Any, path: str, problems: list[str]) -> None:
        checks: dict[str, Callable[[Any], bool]] = {
            "Edm.String": lambda v: isinstance(v, str),
            "Edm.Boolean": lambda v: isinstance(v, bool),
            "Edm.Int32": lambda v: isinstance(v, int) and not isinstance(v, bool) and -2**31 <= v < 2**31,
            "Edm.Int64": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "Edm.Int16": lambda v: isinstance(v, int) and not isinstance(v, bool) and -2**15 <= v < 2**15,
            "Edm.Byte": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 256,
            "Edm.Double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "Edm.Single": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "Edm.Decimal": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "Edm.DateTimeOffset": lambda v: isinstance(v, str) and bool(_DATETIME.match(v)),
            "Edm.Date": lambda v: isinstance(v, str) and bool(_DATE.match(v)),
            "Edm.TimeOfDay": lambda v: isinstance(v, str) and bool(_TIME.match(v)),
            "Edm.Guid": lambda v: isinstance(v, str) and bool(_GUID.match(v)),
            "Edm.Duration": lambda v: isinstance(v, str) and bool(_DURATION.match(v)),
            "Edm.Binary": lambda v: isinstance(v, str) and _is_base64(v),
        }
        check = checks.get(type_name)
        if check is not None and not check(value):
            problems.append(f"{path}: {value!r} is not an {type_name}")


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        return False
    return True


def graph_schema_dir() -> Path:
    """The folder holding v1.0-metadata.xml."""
    configured = os.environ.get("WIDGET_GRAPH_SCHEMA_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "shared" / "graph-schema"


def graph_schema_available(folder: Path) -> bool:
    """Whether the metadata file is there."""
    return (folder / METADATA_FILE).is_file()


@cache
def graph_session_checker() -> GraphSchemaChecker | None:
    """The checker shared by the whole test run (the metadata parsed once); None when the folder is missing."""
    folder = graph_schema_dir()
    return GraphSchemaChecker(load_metadata(folder)) if graph_schema_available(folder) else None


def watch_graph_schema(front: GraphFront) -> Callable[[], None]:
    """Check every JSON body `front` receives and sends; return a check that fails on new invalid ones."""
    checker = graph_session_checker()
    if checker is None:
        raise AssertionError(f"The Graph metadata is missing: expected {METADATA_FILE} in {graph_schema_dir()} "
                             "(or set WIDGET_GRAPH_SCHEMA_DIR)")
    front.observers.append(checker)
    seen = len(checker.failures)

    def check() -> None:
        new = checker.failures[seen:]
        assert not new, "JSON bodies failed the Graph metadata check:\n" + "\n".join(new[:20])

    return check
