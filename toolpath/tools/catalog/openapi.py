"""OpenAPI 3 documents as tool catalogs: ``openapi:PATH_OR_URL[;key=value...]``.

Each operation (path x method) becomes a :class:`~toolpath.tools.base.Tool` that makes the real
HTTP call and returns the response text. Its path, query, header and cookie parameters become
arguments, and so does a JSON request body: an object's properties flattened in when no name
clashes, else one ``body`` argument. Options: ``base_url=URL`` (instead of the document's
``servers``), ``bearer_env=VAR`` (send ``Authorization: Bearer $VAR``), ``api_key_env=VAR``
(send ``$VAR`` where the document's ``apiKey`` scheme says), ``timeout=SECONDS`` (default 30).

Credentials are read from the environment at each call: an operation whose ``security`` names
the matching scheme fails with a ToolError naming the variable when it is unset; the others
send it when set. Local ``$ref``s are resolved with jsonref; an operation whose parameters or
body cannot be (a recursive schema, a broken ref) is skipped and listed in ``Catalog.skipped``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import jsonref

from toolpath.errors import CatalogError, ToolError
from toolpath.tools.base import Tool
from toolpath.tools.catalog.core import (
    MAX_YAML_VALUES,
    Catalog,
    add_entry,
    expanded_size,
    summarize,
    yaml_scalar,
)
from toolpath.tools.catalog.schema import SkipEntry, check_schema, sanitize_name

OPTIONS = ("base_url", "bearer_env", "api_key_env", "timeout")
"""The options of an ``openapi:`` source, each as ``;key=value`` after its path or URL."""
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
DEFAULT_TIMEOUT = 30.0

_OPTION = re.compile(r";(?=\s*[A-Za-z_]\w*\s*=)")
_ENV_NAME = re.compile(r"^[A-Za-z_]\w*$")
_HTTP = re.compile(r"^https?://", re.IGNORECASE)
_NOT_SCHEMA = {"example", "examples", "xml", "externalDocs", "discriminator", "nullable"}
_NOT_SCHEMA |= {"readOnly", "writeOnly", "deprecated"}
_SUBSCHEMAS = ("items", "additionalProperties", "not", "anyOf", "oneOf", "allOf", "prefixItems")
_MAX_DEPTH = 48


@dataclass
class _Source:
    """The source's options, and what the whole document gives every operation."""

    location: str
    base_url: str | None = None
    bearer_env: str | None = None
    api_key_env: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    base: str | None = None
    schemes: dict[str, Any] = field(default_factory=dict)
    security: Any = None
    title: str = ""


@dataclass(frozen=True)
class _Auth:
    """A credential from the environment: where it goes, and whether the operation needs it."""

    env: str
    place: str  # header, query or cookie
    key: str
    prefix: str = ""
    required: bool = False


def openapi_catalog(spec: str) -> Catalog:
    """The tools of the OpenAPI 3 document that ``spec`` (the text after ``openapi:``) names.

    Raises :class:`~toolpath.errors.CatalogError` for an unreadable or non-OpenAPI-3 document,
    an unknown or bad option, ``api_key_env`` without an ``apiKey`` scheme in the document, or
    operations without a usable base URL (a local document whose ``servers`` are relative or
    missing: pass ``base_url=``).
    """
    src = _options(spec)
    where = f"OpenAPI document {src.location}"
    text, uri = _fetch(src.location, src.timeout)
    doc = _parse(text, where)
    _check_version(doc, where)
    doc = jsonref.replace_refs(doc, base_uri=uri, loader=_no_loader)
    try:
        schemes = _plain(doc.get("components", {}).get("securitySchemes"))
        src.schemes = schemes if isinstance(schemes, dict) else {}
        src.security = _plain(doc.get("security"))
    except (SkipEntry, AttributeError, jsonref.JsonRefError) as exc:
        raise CatalogError(f"{where}: unusable security schemes ({exc})") from None
    info = doc.get("info")
    src.title = str(info.get("title") or "").strip() if isinstance(info, dict) else ""
    servers = doc.get("servers") or [{"url": "/"}]  # OpenAPI's default server
    src.base = src.base_url or _server(servers, uri if _HTTP.match(src.location) else None)
    if src.api_key_env and not _key_schemes(src.schemes):
        raise CatalogError(
            f"{where} defines no apiKey security scheme (components.securitySchemes), so "
            "api_key_env has nowhere to send the key; use bearer_env for a bearer token"
        )
    catalog = Catalog([], [], f"openapi:{spec.strip()}")
    paths = doc.get("paths") or {}
    for path, item in paths.items() if isinstance(paths, dict) else ():
        for method in METHODS:
            label = f"{method.upper()} {path}"
            try:
                op = _operation(item, method)
                if op is not None:
                    name = op.get("operationId")
                    name = name.strip() if isinstance(name, str) and name.strip() else None
                    add_entry(catalog, label, _tool(src, op, method, str(path)), name)
            except SkipEntry as exc:
                add_entry(catalog, label, str(exc))
    summarize(catalog)
    return catalog


# -- the source text and the document ------------------------------------------------------------


def _options(spec: str) -> _Source:
    location, *pairs = _OPTION.split(spec.strip())
    src = _Source(location.strip())
    if not src.location:
        raise CatalogError("openapi: needs a file or URL, e.g. openapi:https://host/openapi.json")
    for pair in pairs:
        key, _, value = (s.strip() for s in pair.partition("="))
        if key not in OPTIONS:
            raise CatalogError(
                f"unknown option {key!r} in openapi:{spec.strip()}; valid options: "
                + ", ".join(f"{k}=..." for k in OPTIONS)
            )
        if key == "timeout":
            src.timeout = float(value) if re.fullmatch(r"\d*\.?\d+", value) else 0.0
            if src.timeout <= 0:
                raise CatalogError(f"openapi: timeout must be a number of seconds, got {value!r}")
        elif key == "base_url" and not _HTTP.match(value):
            raise CatalogError(f"openapi: base_url must be an http(s) URL, got {value!r}")
        elif key != "base_url" and not _ENV_NAME.match(value):
            raise CatalogError(f"openapi: {key} must name an environment variable, got {value!r}")
        else:
            setattr(src, key, value)
    return src


def _fetch(location: str, timeout: float) -> tuple[str, str]:
    """The text of a local file or an http(s) URL, and the URI it came from."""
    if _HTTP.match(location):
        request = urllib.request.Request(location, headers={"User-Agent": "toolpath"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return _decode(response.read(), response.headers), str(response.geturl())
        except urllib.error.HTTPError as exc:
            raise CatalogError(
                f"cannot fetch the OpenAPI document {location}: HTTP {exc.code} {exc.reason}"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CatalogError(f"cannot fetch the OpenAPI document {location}: {reason}") from None
    path = Path(location).expanduser()
    try:
        return path.read_text(encoding="utf-8"), path.resolve().as_uri()
    except FileNotFoundError:
        raise CatalogError(f"OpenAPI document {location} not found") from None
    except (OSError, UnicodeDecodeError, ValueError, RuntimeError) as exc:
        raise CatalogError(f"cannot read the OpenAPI document {location}: {exc}") from None


def _parse(text: str, where: str) -> Any:
    """JSON or YAML text as JSON data (YAML dates become ISO text)."""
    if text.lstrip()[:1] in ("{", "["):
        with contextlib.suppress(ValueError, RecursionError):  # YAML's flow style looks alike
            return json.loads(text)
    import yaml

    try:
        data = yaml.safe_load(text)
        if (size := expanded_size(data)) is None or size > MAX_YAML_VALUES:
            raise CatalogError(f"{where}: its YAML aliases expand endlessly or enormously")
        return json.loads(json.dumps(data, default=yaml_scalar))
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        raise CatalogError(f"{where} is valid neither as JSON nor as YAML: {exc}") from None


def _check_version(doc: Any, where: str) -> None:
    if not isinstance(doc, dict):
        raise CatalogError(f"{where} is not an OpenAPI document (it holds a {type(doc).__name__})")
    if "swagger" in doc:
        raise CatalogError(
            f"{where} is a Swagger {doc['swagger']} document; only OpenAPI 3.x is supported: "
            "convert it first (e.g. with swagger2openapi or editor.swagger.io)"
        )
    version = doc.get("openapi")  # YAML reads an unquoted 3.0 as a number
    if not isinstance(version, str | float) or not str(version).startswith("3."):
        raise CatalogError(
            f"{where} is not an OpenAPI 3 document: its 'openapi' field is {version!r}, "
            "expected a version such as 3.0.3 or 3.1.0"
        )


def _no_loader(uri: str) -> Any:
    raise ValueError(f"refs into other documents ({uri}) are not followed; bundle the document")


def _plain(node: Any, refs: tuple[str, ...] = (), depth: int = 0) -> Any:
    """``node`` with its lazy refs resolved into plain dicts and lists; a SkipEntry for a
    recursive schema, a broken ref or nesting past the limit."""
    if depth > _MAX_DEPTH:
        raise SkipEntry(f"its schema nests more than {_MAX_DEPTH} deep")
    if isinstance(node, jsonref.JsonRef):
        ref = str(node.__reference__.get("$ref"))
        uri = object.__getattribute__(node, "full_uri")  # not proxied
        if uri in refs:
            raise SkipEntry(f"its schema is recursive ({ref} contains itself)")
        try:
            target = node.__subject__
        except jsonref.JsonRefError as exc:
            raise SkipEntry(f"cannot resolve the $ref {ref}: {exc.cause or exc}") from None
        return _plain(target, (*refs, uri), depth + 1)
    if isinstance(node, dict):
        return {str(k): _plain(v, refs, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v, refs, depth + 1) for v in node]
    return node


def _server(servers: Any, spec_url: str | None) -> str | None:
    """The first server's URL (its variables at their defaults), made absolute; None if none."""
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict):
        return None
    url = str(servers[0].get("url") or "/")
    variables = servers[0].get("variables")
    for name, var in variables.items() if isinstance(variables, dict) else ():
        if isinstance(var, dict) and "default" in var:
            url = url.replace("{" + str(name) + "}", str(var["default"]))
    if _HTTP.match(url):
        return url
    return urllib.parse.urljoin(spec_url, url) if spec_url else None


def _key_schemes(schemes: dict[str, Any]) -> list[str]:
    return [n for n, s in schemes.items() if isinstance(s, dict) and s.get("type") == "apiKey"]


# -- operations ------------------------------------------------------------------------------------


def _operation(item: Any, method: str) -> dict[str, Any] | None:
    """The parts of an operation a tool needs, refs resolved (responses are left out: their
    schemas, often recursive, do not matter here); None where the path has no such method."""
    try:
        if not isinstance(item, dict) or not isinstance(item.get(method), dict):
            return None
        op = {k: _plain(v) for k, v in item[method].items() if k not in ("responses", "callbacks")}
        merged = {}
        for param in [*_plain(item.get("parameters") or []), *(op.get("parameters") or [])]:
            if not isinstance(param, dict) or not isinstance(param.get("name"), str):
                raise SkipEntry("it has a parameter without a name")
            merged[(param.get("in"), param["name"])] = param  # the operation's own win
    except RecursionError:
        raise SkipEntry("its schema nests too deeply") from None
    except jsonref.JsonRefError as exc:
        raise SkipEntry(f"cannot resolve a $ref: {exc.cause or exc}") from None
    op["parameters"] = list(merged.values())
    return op


def _tool(src: _Source, op: dict[str, Any], method: str, path: str) -> Tool:
    op_id = op.get("operationId")
    if not (isinstance(op_id, str) and op_id.strip()):
        op_id = f"{method}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_')}"
    name = sanitize_name(op_id)
    if src.base is None:
        raise CatalogError(
            f"OpenAPI document {src.location} gives no absolute server URL: add the API's "
            f"base URL, as in openapi:{src.location};base_url=https://..."
        )
    call = _Call(name, method.upper(), src.base, path, _auths(src, op), src.timeout)
    props: dict[str, Any] = {}
    required: list[str] = []
    for param in op["parameters"]:
        place, wire = param.get("in"), param["name"]
        if place not in ("path", "query", "header", "cookie"):
            raise SkipEntry(f"parameter {wire!r} has an unknown location {place!r}")
        key = wire if wire not in props else f"{place}_{wire}"
        props[key] = _property(param.get("schema"), param.get("description"))
        explode = param.get("explode", param.get("style", "form") == "form")
        call.where[key] = (place, wire, bool(explode))
        if place == "path" or param.get("required") is True:
            required.append(key)
    _body(op.get("requestBody"), call, props, required)
    params = {"type": "object", "properties": props, "additionalProperties": False}
    params |= {"required": required} if required else {}
    tags = op.get("tags")
    tag = tags[0] if isinstance(tags, list) and tags else ""
    context = " / ".join(str(part) for part in (src.title, tag) if part)
    description = _describe(op, method, path)
    return Tool(name, description, check_schema(params), call, src.timeout, context=context)


def _body(body: Any, call: _Call, props: dict[str, Any], required: list[str]) -> None:
    """Add a JSON request body's arguments: its object's properties, or one ``body``."""
    if not isinstance(body, dict) or not isinstance(body.get("content"), dict):
        return
    content: dict[str, Any] = body["content"]
    media = [m for m in content if m.split(";")[0].strip().lower() == "application/json"]
    media = media or [m for m in content if re.search(r"[/+]json\b", m.lower())]
    call.body_required = body.get("required") is True
    if not media:
        if call.body_required:
            raise SkipEntry(f"its request body is {', '.join(content)}; only JSON is supported")
        return
    schema = _clean((content[media[0]] or {}).get("schema") or {})
    schema = schema if isinstance(schema, dict) else {}
    inner = schema.get("properties")
    simple = schema.get("type", "object") == "object" and not {"allOf", "anyOf", "oneOf"} & set(
        schema
    )
    if isinstance(inner, dict) and inner and simple and not set(inner) & set(props):
        props.update(inner)
        call.body_keys = tuple(inner)
        required += schema.get("required", []) if call.body_required else []
        return
    call.body_key = "body" if "body" not in props else "request_body"
    props[call.body_key] = _property(schema, body.get("description"))
    required += [call.body_key] if call.body_required else []


def _property(schema: Any, description: Any) -> dict[str, Any]:
    prop = _clean(schema) if isinstance(schema, dict) else {}
    if isinstance(description, str) and description.strip():
        prop["description"] = description.strip()
    return prop


def _clean(schema: Any) -> Any:
    """An OpenAPI schema as a JSON schema: ``nullable`` as a null type, examples and other
    OpenAPI-only keys dropped, ``readOnly`` properties (response-only) left out."""
    if isinstance(schema, list):
        return [_clean(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: v for k, v in schema.items() if k not in _NOT_SCHEMA}
    for key in ("properties", "$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            kept = [(n, s) for n, s in schema[key].items() if not _read_only(s)]
            out[key] = {n: _clean(s) for n, s in kept}
    for key in _SUBSCHEMAS:
        if key in schema and not isinstance(schema[key], bool):
            out[key] = _clean(schema[key])
    if isinstance(out.get("required"), list) and isinstance(out.get("properties"), dict):
        out["required"] = [r for r in out["required"] if r in out["properties"]]
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _read_only(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("readOnly") is True


def _describe(op: dict[str, Any], method: str, path: str) -> str:
    """The summary and the description's first paragraph, one line, at most 300 characters."""
    parts: list[str] = []
    for key in ("summary", "description"):
        text = op.get(key)
        if isinstance(text, str) and text.strip():
            text = " ".join(text.strip().split("\n\n")[0].split())
            if not parts or text.lower().rstrip(".") != parts[0].lower().rstrip("."):
                parts.append(text if text[-1] in ".!?" else text + ".")
    text = " ".join(parts) or f"{method.upper()} {path}."
    return text if len(text) <= 300 else text[:299].rstrip() + "…"


def _auths(src: _Source, op: dict[str, Any]) -> list[_Auth]:
    """The credentials to send: required where the operation's security names their scheme."""
    names = _names(op.get("security", src.security))
    out: list[_Auth] = []
    if src.bearer_env:
        bearer = {n for n, s in src.schemes.items() if _is_bearer(s)}
        needed = bool(names & bearer)
        out.append(_Auth(src.bearer_env, "header", "Authorization", "Bearer ", needed))
    if src.api_key_env:
        keys = _key_schemes(src.schemes)
        used = [n for n in keys if n in names] or [n for n in keys if n in _names(src.security)]
        scheme = src.schemes[(used or keys)[0]]
        place, key = scheme.get("in", "header"), str(scheme.get("name") or "X-API-Key")
        out.append(_Auth(src.api_key_env, place, key, "", bool(set(keys) & names)))
    return out


def _names(security: Any) -> set[str]:
    """The scheme names a ``security`` list mentions."""
    reqs = security if isinstance(security, list) else []
    return {str(n) for req in reqs if isinstance(req, dict) for n in req}


def _is_bearer(scheme: Any) -> bool:
    kind = scheme.get("type") if isinstance(scheme, dict) else None
    http_bearer = kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer"
    return http_bearer or kind in ("oauth2", "openIdConnect")


# -- calling ---------------------------------------------------------------------------------------


@dataclass
class _Call:
    """One operation's HTTP call: the tool's arguments in, the response text out."""

    name: str
    method: str
    base: str
    path: str
    auths: list[_Auth]
    timeout: float
    where: dict[str, tuple[str, str, bool]] = field(default_factory=dict)
    body_keys: tuple[str, ...] = ()
    body_key: str | None = None
    body_required: bool = False

    def __call__(self, **arguments: Any) -> str:
        path, query, cookies = self.path, list[tuple[str, str]](), list[str]()
        headers: dict[str, str] = {}
        body = {k: v for k, v in arguments.items() if k in self.body_keys} or None
        body = arguments.get(self.body_key) if self.body_key else body
        for key, (place, wire, explode) in self.where.items():
            if (value := arguments.get(key)) is None:
                continue
            if place == "path":
                path = path.replace("{" + wire + "}", urllib.parse.quote(_text(value), safe=""))
            elif place == "query":
                many = isinstance(value, list) and explode
                query += [(wire, _text(v)) for v in value] if many else [(wire, _text(value))]
            elif place == "header":
                headers[wire] = _text(value)
            else:
                cookies.append(f"{wire}={urllib.parse.quote(_text(value))}")
        for auth in self.auths:
            if not (secret := os.environ.get(auth.env)):
                if auth.required:
                    raise ToolError(
                        f"{self.name} needs a credential: set the environment variable "
                        f"{auth.env} (it is not set)"
                    )
            elif auth.place == "query":
                query.append((auth.key, secret))
            elif auth.place == "cookie":
                cookies.append(f"{auth.key}={urllib.parse.quote(secret)}")
            else:
                headers[auth.key] = auth.prefix + secret
        if cookies:
            headers["Cookie"] = "; ".join(cookies)
        url = self.base.rstrip("/") + "/" + path.lstrip("/")
        if query:
            url += "&" if urllib.parse.urlsplit(url).query else "?"
            url += urllib.parse.urlencode(query)
        return self._send(url, headers, {} if body is None and self.body_required else body)

    def _send(self, url: str, headers: dict[str, str], body: Any) -> str:
        shown = f"{self.method} {urllib.parse.urlsplit(url).path}"  # no query: it may hold a key
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        request = urllib.request.Request(url, data=data, method=self.method, headers=headers)
        request.add_header("Accept", "application/json, */*;q=0.5")
        request.add_header("User-Agent", "toolpath")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text, status = _decode(response.read(), response.headers), response.status
        except urllib.error.HTTPError as exc:
            try:
                detail = _decode(exc.read(2000), exc.headers).strip()[:300]
            except (OSError, ValueError):
                detail = ""
            raise ToolError(
                f"{self.name}: {shown} answered HTTP {exc.code} {exc.reason}"
                + (f": {detail}" if detail else "")
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError) or "timed out" in str(reason):
                raise ToolError(f"{self.name}: {shown} timed out after {self.timeout:g}s") from None
            raise ToolError(f"{self.name}: cannot reach {self.base} ({reason})") from None
        return text if text.strip() else f"{shown}: HTTP {status}, empty response"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value)


def _decode(raw: bytes, headers: Message | None) -> str:
    charset = headers.get_content_charset() if headers is not None else None
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", errors="replace")
