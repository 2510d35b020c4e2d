"""The configuration of ``netprobe serve``: modules, the targets a request may name, limits.

YAML, like blackbox exporter's ``blackbox.yml`` next to which it usually lives::

    listen: 127.0.0.1:9116       # default; 0.0.0.0:9116 to be scraped from elsewhere
    max_concurrent: 16           # diagnoses at once; more wait within their scrape timeout
    allow:                       # what ?target= may name; anything else gets 403
      - db.internal:5432         # one host and port
      - "*.svc.cluster.local"    # a host pattern, any port
      - 10.20.0.0/16             # IP addresses of a network, any port
      - "[fd00::/8]:443"         # ... on one port
    modules:
      tcp_connect: {}            # every field optional: the diagnosis defaults
      http_2xx:
        scheme: https            # how a bare host:port target is read
        expect_status: [200, 204]
        timeout: 5
      postgres:
        scheme: postgresql
        user: monitor
        password_env: PG_MONITOR_PASSWORD   # a credential comes from the environment
        headers_env: {}                     # (HTTP) header -> environment variable

A module holds any diagnosis option (``timeout``, ``connect_timeout``, ``ca_file``,
``expect_status``, ``icmp``...: docs/defaults.md) plus ``scheme``, ``user``, ``password_env``
and ``headers_env``. Credentials never come from the request: a target with a password, or a
secret-looking query parameter, is refused.

Every mistake is one line naming the file, the key and the problem (:class:`ConfigError`),
raised at start, before the server listens.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .._errors import InvalidOption, InvalidTarget
from ..options import Options, make_options
from ..probes.db_login import require_driver
from ..target import Target, is_secret_param, parse_target

__all__ = [
    "DEFAULT_LISTEN",
    "AllowRule",
    "ConfigError",
    "ExporterConfig",
    "Module",
    "TargetRefused",
    "load_config",
    "parse_config",
]

DEFAULT_LISTEN = "127.0.0.1:9116"
_TOP_KEYS = ("listen", "max_concurrent", "allow", "modules")
_MODULE_KEYS = ("scheme", "user", "password_env", "headers_env")
_SCHEMES = (
    "tcp",
    "tls",
    "http",
    "https",
    "mysql",
    "mariadb",
    "postgresql",
    "postgres",
    "redis",
    "rediss",
)


class ConfigError(InvalidOption):
    """The configuration file is wrong; the message names the file, the key and the problem."""


class TargetRefused(ValueError):
    """A ``/probe`` request names a target the configuration does not allow (or a malformed
    one, or one carrying credentials).

    Attributes:
        reason: ``not_allowed`` (outside the allow list, or with credentials: HTTP 403) or
            ``bad_target`` (missing or malformed: HTTP 400).
    """

    def __init__(self, message: str, reason: Literal["not_allowed", "bad_target"]) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class AllowRule:
    """One entry of ``allow``: a host pattern (or a network) and a port (None: any)."""

    text: str
    host: str | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None

    def matches(self, target: Target) -> bool:
        if self.port is not None and target.port != self.port:
            return False
        if self.network is not None:
            if not target.is_ip:
                return False
            address = ipaddress.ip_address(target.host)
            return address.version == self.network.version and address in self.network
        assert self.host is not None
        return fnmatch.fnmatchcase(target.host.lower(), self.host)


@dataclass(frozen=True)
class Module:
    """One module: how a target is diagnosed."""

    name: str
    options: Options
    scheme: str | None = None
    user: str | None = None
    password_env: str | None = None
    headers_env: Mapping[str, str] = field(default_factory=dict)

    def target(self, text: str, allow: tuple[AllowRule, ...]) -> Target:
        """The target a request names, read with this module, checked against ``allow``.

        Raises:
            TargetRefused: malformed, carrying credentials, or not allowed.
        """
        if not text:
            raise TargetRefused("Target parameter is missing", "bad_target")
        if "://" not in text and self.scheme is not None:
            text = f"{self.scheme}://{text}"
        try:
            target = parse_target(text)
        except InvalidTarget as exc:
            raise TargetRefused(str(exc), "bad_target") from None
        if target.password is not None or any(is_secret_param(k) for k in target.params):
            raise TargetRefused(
                "credentials in the target are refused: give them in the module "
                "(user, password_env) of the configuration",
                "not_allowed",
            )
        if "?" in target.path and is_secret_query(target.path):
            raise TargetRefused(
                "a secret in the target's query is refused: give it in the module "
                "(headers_env) of the configuration",
                "not_allowed",
            )
        if not any(rule.matches(target) for rule in allow):
            raise TargetRefused(f"target {target.netloc} is not in the allow list", "not_allowed")
        changes: dict[str, Any] = {}
        if self.user is not None and target.username is None:
            changes["username"] = self.user
        if self.password_env is not None:
            changes["password"] = os.environ.get(self.password_env, "")
        target = target.replace(**changes) if changes else target
        try:
            require_driver(target)
        except InvalidOption as exc:
            raise TargetRefused(str(exc), "bad_target") from None
        return target

    def diagnosis_options(self) -> Options:
        """The options, with the header values read from the environment now."""
        if not self.headers_env:
            return self.options
        headers = dict(self.options.headers)
        headers.update({h: os.environ.get(env, "") for h, env in self.headers_env.items()})
        return make_options(self.options, headers=headers)


def is_secret_query(path: str) -> bool:
    query = path.partition("?")[2]
    return any(is_secret_param(item.partition("=")[0]) for item in query.split("&") if item)


@dataclass(frozen=True)
class ExporterConfig:
    """A loaded configuration (see the module docstring)."""

    modules: Mapping[str, Module]
    allow: tuple[AllowRule, ...]
    listen: str = DEFAULT_LISTEN
    max_concurrent: int = 16
    source: str = "<config>"

    @property
    def host(self) -> str:
        return _split_listen(self.listen, self.source)[0]

    @property
    def port(self) -> int:
        return _split_listen(self.listen, self.source)[1]


def load_config(path: str | os.PathLike[str]) -> ExporterConfig:
    """Read and check a configuration file.

    Raises:
        ConfigError: the file cannot be read, is not YAML, or a key is wrong (one line).
    """
    shown = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read it ({exc.strerror or exc})") from None
    return parse_config(text, source=shown)


def parse_config(text: str, *, source: str = "<config>") -> ExporterConfig:
    """Check a configuration given as YAML text (see :func:`load_config`)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{source}: {problem}{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with 'modules' and 'allow'")

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {problem}")

    for key in data:
        if key not in _TOP_KEYS:
            raise fail(str(key), f"unknown key (known: {', '.join(_TOP_KEYS)})")
    listen = data.get("listen", DEFAULT_LISTEN)
    if not isinstance(listen, str):
        raise fail("listen", "expected 'host:port'")
    _split_listen(listen, source)
    max_concurrent = data.get("max_concurrent", 16)
    if not isinstance(max_concurrent, int) or isinstance(max_concurrent, bool):
        raise fail("max_concurrent", "expected a whole number")
    if not 1 <= max_concurrent <= 1000:
        raise fail("max_concurrent", f"{max_concurrent} is not in 1-1000")

    allow_list = data.get("allow")
    if allow_list is None:
        raise fail(
            "allow",
            "missing: list the targets /probe may diagnose (a scraper must not make this "
            "server connect anywhere); '*' allows every host, knowingly",
        )
    if not isinstance(allow_list, list) or not allow_list:
        raise fail("allow", "expected a non-empty list of host[:port] patterns or networks")
    allow = tuple(_allow_rule(entry, i, fail) for i, entry in enumerate(allow_list))

    raw_modules = data.get("modules")
    if not isinstance(raw_modules, dict) or not raw_modules:
        raise fail("modules", "expected a mapping of module names to their settings")
    modules = {str(name): _module(str(name), spec, fail) for name, spec in raw_modules.items()}
    return ExporterConfig(
        modules=modules,
        allow=allow,
        listen=listen,
        max_concurrent=max_concurrent,
        source=source,
    )


def _split_listen(listen: str, source: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{source}: listen: {listen!r} is not 'host:port'")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ConfigError(
                f"{source}: listen: {host!r} is not an IP address (or localhost)"
            ) from None
    return host, int(port)


def _allow_rule(entry: Any, index: int, fail: Any) -> AllowRule:
    key = f"allow[{index}]"
    if not isinstance(entry, str) or not entry.strip():
        raise fail(key, "expected a string: host, host:port, *.domain, or a network a.b.c.d/n")
    text = entry.strip()
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else None
        if rest and port_text is None:
            raise fail(key, f"{text!r}: expected [address]:port")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        port_text = None
    if port_text is not None and port_text != "*":
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise fail(key, f"{text!r}: port {port_text!r} is not 1-65535 or *")
        port = int(port_text)
    if "/" in host:
        try:
            network = ipaddress.ip_network(host, strict=False)
        except ValueError:
            raise fail(key, f"{text!r}: {host!r} is not a network") from None
        return AllowRule(text=text, network=network, port=port)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not host or any(c in host for c in " /@?#"):
            raise fail(key, f"{text!r} is not a host pattern") from None
        return AllowRule(text=text, host=host.lower().rstrip("."), port=port)
    return AllowRule(text=text, network=ipaddress.ip_network(address), port=port)


def _module(name: str, spec: Any, fail: Any) -> Module:
    key = f"modules.{name}"
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise fail(key, "expected a mapping of settings ({} for the defaults)")
    extra = {k: v for k, v in spec.items() if k in _MODULE_KEYS}
    options = {k: v for k, v in spec.items() if k not in _MODULE_KEYS}
    unknown = [k for k in options if k not in Options.model_fields or k == "ssl_context"]
    if unknown:
        known = ", ".join([*_MODULE_KEYS, *(f for f in Options.model_fields if f != "ssl_context")])
        raise fail(f"{key}.{unknown[0]}", f"unknown setting (known: {known})")
    try:
        opts = make_options(**options)
    except InvalidOption as exc:
        raise fail(key, str(exc).removeprefix("option ")) from None
    scheme = extra.get("scheme")
    if scheme is not None and scheme not in _SCHEMES:
        raise fail(f"{key}.scheme", f"{scheme!r} is not one of {', '.join(_SCHEMES)}")
    for text_key in ("user", "password_env"):
        value = extra.get(text_key)
        if value is not None and (not isinstance(value, str) or not value):
            raise fail(f"{key}.{text_key}", "expected a non-empty string")
    password_env = extra.get("password_env")
    if password_env is not None and password_env not in os.environ:
        raise fail(f"{key}.password_env", f"the environment has no {password_env}")
    headers_env = extra.get("headers_env") or {}
    if not isinstance(headers_env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers_env.items()
    ):
        raise fail(f"{key}.headers_env", "expected a mapping of header name to variable name")
    for header, env in headers_env.items():
        if env not in os.environ:
            raise fail(f"{key}.headers_env.{header}", f"the environment has no {env}")
    return Module(
        name=name,
        options=opts,
        scheme=scheme,
        user=extra.get("user"),
        password_env=password_env,
        headers_env=dict(headers_env),
    )
