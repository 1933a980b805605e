"""What every command shares: the connection options, keys, output, errors and logging.

Every command that talks to an exchange takes the same options (added by :func:`with_target`):
``--connector``, ``--sandbox-url``, ``--sandbox-info``, ``--api-key``, ``--api-secret-file`` and,
where output is data, ``--json``. :func:`resolve` turns them into a connector id, an environment
and credentials, looked up in this order:

1. ``--api-key`` with ``--api-secret-file`` (or ``BYBITKIT_API_SECRET``);
2. ``BYBITKIT_API_KEY`` with ``BYBITKIT_API_SECRET`` (or ``BYBITKIT_API_SECRET_FILE``);
3. the keys in ``--sandbox-info`` (the JSON line ``bybitkit sandbox serve`` prints);
4. the encrypted key store (``bybitkit connect``), unlocked with the password from
   ``BYBITKIT_PASSWORD`` or a prompt.

Errors are printed as ``error: <field>: expected <what>, got <value>`` on stderr; bad input exits
with 2, every other failure with 1. Secrets are registered with :func:`register_secret`, and the
log handlers the command line installs replace them with ``***``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import logging
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bybitkit.connectors.base import BybitConnector
from bybitkit.connectors.perpetual import PerpetualConnector
from bybitkit.connectors.registry import CONNECTORS, connect
from bybitkit.errors import (
    ApiKeyExpired,
    AuthError,
    BybitkitError,
    ConfigError,
    ExchangeError,
    HttpError,
    InvalidApiKey,
    InvalidSignature,
    InvalidTimestamp,
    IpBanned,
    IpNotAllowed,
    NetworkError,
    OutcomeUnknown,
    PermissionDenied,
    ValidationError,
)
from bybitkit.keys import KeyStore, KeyStoreError, WrongPassword, bybitkit_home
from bybitkit.money import fmt
from bybitkit.v5.auth import Credentials
from bybitkit.v5.environments import Environment, get_environment

log = logging.getLogger("bybitkit.cli")

T = TypeVar("T")

SANDBOX_IDS = ("sandbox", "sandbox_perpetual")
PAPER_IDS = ("bybit_paper_trade", "bybit_perpetual_paper_trade")
PERPETUAL_IDS = tuple(
    cid for cid, (cls, _) in CONNECTORS.items() if issubclass(cls, PerpetualConnector)
)
STORE_FILE = "store.sqlite"


# -- errors ----------------------------------------------------------------------------------------


class CliError(Exception):
    """A failure to report in one line (``code`` 2: bad input, 1: anything else)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def usage(field_name: str, expected: str, got: object = None) -> CliError:
    """Bad input: names the field (an option or argument) and what was expected."""
    msg = f"{field_name}: expected {expected}"
    if got is not None:
        msg += f", got {got!r}"
    return CliError(msg, 2)


#: Library field names -> the command-line names users typed.
FIELD_NAMES = {
    "amount": "AMOUNT",
    "price": "--price",
    "pair": "PAIR",
    "order_type": "--type",
    "time_in_force": "--tif",
    "side": "SIDE",
    "position_action": "--position-action",
    "leverage": "LEVERAGE",
    "mode": "MODE",
    "client_order_id": "ORDER_ID",
    "connector": "--connector",
    "password": "password",
}


def env_label(environment: Environment) -> str:
    if environment.is_bybit:
        return environment.name
    return f"{environment.name} ({environment.rest_url})"


def auth_cause(err: AuthError, environment: Environment | None = None) -> str:
    """The likely cause of an authentication failure, by its code (never by its text):
    ``"<code> <cause>: <detail>"``."""
    where = env_label(environment) if environment is not None else "this environment"
    code = err.ret_code
    if isinstance(err, InvalidApiKey):
        return (
            f"{code} wrong environment or key: the API key is not known on {where} (a "
            "mistyped or deleted key, or a key of another environment: a testnet or demo key "
            "on mainnet, a mainnet key on testnet or demo; each has its own keys)"
        )
    if isinstance(err, InvalidSignature):
        return f"{code} wrong secret: the signature does not match this key's secret"
    if isinstance(err, PermissionDenied):
        return (
            f"{code} missing permission: the key lacks the permission this needs (a read-only "
            "key, or no trade permission for this market)"
        )
    if isinstance(err, IpNotAllowed):
        return (
            f"{code} IP not whitelisted: the key is bound to IP addresses and this machine's "
            "address is not one of them"
        )
    if isinstance(err, ApiKeyExpired):
        return f"{code} expired key: create a new API key"
    return f"{code} authentication refused: {err.ret_msg}"


def explain(exc: BaseException, environment: Environment | None = None) -> CliError:
    """A library error as a one-line command-line error."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, ValidationError):
        name = FIELD_NAMES.get(exc.field, exc.field)
        msg = f"{name}: expected {exc.expected}"
        if exc.got is not None:
            msg += f", got {exc.got!r}"
        return CliError(msg, 2)
    if isinstance(exc, WrongPassword):
        return CliError(f"{exc}: try again (the password you chose on the first connect)")
    if isinstance(exc, KeyStoreError):
        return CliError(str(exc))
    if isinstance(exc, AuthError):
        return CliError(f"refused by {_where(environment)}: {auth_cause(exc, environment)}")
    if isinstance(exc, InvalidTimestamp):
        return CliError(f"{exc}: this machine's clock is off; synchronise it (NTP)")
    if isinstance(exc, ExchangeError):
        return CliError(f"refused by {_where(environment)}: {exc}")
    if isinstance(exc, IpBanned):
        return CliError(str(exc))
    if isinstance(exc, OutcomeUnknown):
        return CliError(f"{exc}: check `bybitkit orders` before trying again")
    if isinstance(exc, NetworkError | HttpError):
        return CliError(f"cannot reach {_where(environment)}: {exc}")
    if isinstance(exc, ConfigError):
        return CliError(str(exc), 2)
    if isinstance(exc, TimeoutError):
        return CliError(f"no answer in time from {_where(environment)}")
    if isinstance(exc, BybitkitError):
        return CliError(str(exc))
    return CliError(f"{type(exc).__name__}: {exc}")


def _where(environment: Environment | None) -> str:
    return env_label(environment) if environment is not None else "the exchange"


def fail(message: str, code: int = 1) -> NoReturn:
    raise CliError(message, code)


# -- secrets and logging --------------------------------------------------------------------------

_SECRETS: set[str] = set()


#: Shorter values are not redacted: replacing them everywhere would garble ordinary text
#: (a one-letter password would eat that letter from every message). Nothing logs a secret
#: on purpose; redaction is the safety net for what slips through.
MIN_REDACTED = 8


def register_secret(value: str | None) -> None:
    """Never let ``value`` reach a log line (the handlers replace it with ``***``)."""
    if not value or len(value.strip()) < MIN_REDACTED:
        return
    _SECRETS.add(value)
    _SECRETS.add(value.strip())
    for line in value.splitlines():  # a PEM key: each line of its body too
        line = line.strip()
        if len(line) >= 16 and not line.startswith("-----"):
            _SECRETS.add(line)


def forget_secrets() -> None:
    """Clear the registry (tests; a shell session's end)."""
    _SECRETS.clear()


def redact(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


class RedactSecrets(logging.Filter):
    """Replaces every registered secret in a record's message (and traceback) with ``***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _SECRETS:
            return True
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class _LazyFileHandler(logging.FileHandler):
    """A file handler that creates its folder (mode 0700) on its first record only."""

    def _open(self) -> Any:
        Path(self.baseFilename).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return super()._open()


_LOG_HANDLERS: list[logging.Handler] = []


def setup_logging(level: str | None) -> bool:
    """Logs of the ``bybitkit`` loggers go to ``BYBITKIT_HOME/logs/bybitkit.log`` (INFO, or
    ``level``) and warnings to stderr, secrets redacted. True when it installed the handlers
    (False when they already were: the shell runs commands inside itself)."""
    if _LOG_HANDLERS:
        return False
    try:
        file_level = logging.getLevelNamesMapping()[(level or "INFO").upper()]
    except KeyError:
        raise usage("--log-level", "DEBUG, INFO, WARNING or ERROR", level) from None
    logger = logging.getLogger("bybitkit")
    redactor = RedactSecrets()
    file_handler = _LazyFileHandler(
        bybitkit_home() / "logs" / "bybitkit.log", encoding="utf-8", delay=True
    )
    file_handler.setLevel(file_level)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    file_handler.addFilter(redactor)
    console_handler = logging.StreamHandler(sys.stderr)
    console_handler.setLevel(logging.WARNING)
    console_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    console_handler.addFilter(redactor)
    for handler in (file_handler, console_handler):
        logger.addHandler(handler)
        _LOG_HANDLERS.append(handler)
    if logger.level == logging.NOTSET or logger.level > file_level:
        logger.setLevel(file_level)
    return True


def teardown_logging() -> None:
    logger = logging.getLogger("bybitkit")
    while _LOG_HANDLERS:
        handler = _LOG_HANDLERS.pop()
        logger.removeHandler(handler)
        handler.close()


# -- session state (the shell keeps it between commands) ------------------------------------------


@dataclass
class Session:
    in_shell: bool = False
    password: str | None = field(default=None, repr=False)


SESSION = Session()


def home() -> Path:
    path = bybitkit_home()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def store_path() -> Path:
    return home() / STORE_FILE


def prompt_hidden(text: str, on_abort: str | None = None) -> str:
    """Ask with hidden input (the terminal does not echo it)."""
    try:
        # On stderr, so that stdout (a table, or --json) stays clean.
        value: str = typer.prompt(
            text, hide_input=True, prompt_suffix=" ", show_default=False, err=True
        )
    except typer.Abort:
        raise CliError(
            on_abort or f"no answer to {text!r} (no terminal? see --help for the options)"
        ) from None
    return value


def password_for(store: KeyStore) -> str:
    """The key-store password: ``BYBITKIT_PASSWORD``, the shell's memory, or a prompt (twice
    for a new store)."""
    env = os.environ.get("BYBITKIT_PASSWORD")
    if env:
        register_secret(env)
        return env
    if SESSION.password:
        return SESSION.password
    if store.exists:
        password = prompt_hidden("Enter your password >>>")
    else:
        password = prompt_hidden("Create a password to protect your keys >>>")
        again = prompt_hidden("Repeat the password >>>")
        if again != password:
            raise usage("password", "the same password twice")
    if not password:
        raise usage("password", "a non-empty password")
    register_secret(password)
    return password


def unlock(store: KeyStore) -> KeyStore:
    if not store.unlocked:
        password = password_for(store)
        store.unlock(password)
        if SESSION.in_shell:
            SESSION.password = password
    return store


# -- the connection options ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The common connection options of a command."""

    connector: str | None = None
    sandbox_url: str | None = None
    sandbox_info: str | None = None
    api_key: str | None = None
    api_secret_file: Path | None = None
    json: bool = False


@dataclass(frozen=True)
class Resolved:
    """A connector id, its environment and (when needed) its credentials."""

    connector: str
    environment: Environment
    credentials: Credentials | None = field(default=None, repr=False)
    source: str = ""  # where the credentials came from

    @property
    def is_perpetual(self) -> bool:
        return self.connector in PERPETUAL_IDS

    @property
    def category(self) -> str:
        return "linear" if self.is_perpetual else "spot"


_OPTIONS: list[tuple[str, Any, Any]] = [
    (
        "connector",
        Annotated[
            str | None,
            typer.Option(
                "--connector",
                "-c",
                help="Connector id: bybit, bybit_testnet, bybit_demo, bybit_perpetual, "
                "bybit_perpetual_testnet, bybit_perpetual_demo, sandbox, sandbox_perpetual "
                "(default: BYBITKIT_CONNECTOR, else the only connected one).",
                show_default=False,
            ),
        ],
        None,
    ),
    (
        "sandbox_url",
        Annotated[
            str | None,
            typer.Option(
                "--sandbox-url",
                help="REST URL of a local sandbox (sandbox connectors; WebSocket on the same "
                "port).",
                envvar="BYBITKIT_SANDBOX_URL",
                show_default=False,
            ),
        ],
        None,
    ),
    (
        "sandbox_info",
        Annotated[
            str | None,
            typer.Option(
                "--sandbox-info",
                help="The JSON line `bybitkit sandbox serve` printed (or a file holding it): "
                "URLs and keys of a sandbox account.",
                show_default=False,
            ),
        ],
        None,
    ),
    (
        "api_key",
        Annotated[
            str | None,
            typer.Option(
                "--api-key",
                help="API key (else BYBITKIT_API_KEY, else the key store).",
                show_default=False,
            ),
        ],
        None,
    ),
    (
        "api_secret_file",
        Annotated[
            Path | None,
            typer.Option(
                "--api-secret-file",
                help="File holding the API secret, or an RSA private key (PEM).",
                show_default=False,
            ),
        ],
        None,
    ),
]
_JSON_OPTION = (
    "json",
    Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of tables.")],
    False,
)

F = TypeVar("F", bound=Callable[..., Any])


def with_target(*, json_output: bool = True, connector_option: bool = True) -> Callable[[F], F]:
    """Add the connection options (and ``--json``) to a command; it receives them as
    ``target: Target``. Errors raised inside are reported as one line and a non-zero exit."""
    options = [o for o in _OPTIONS if connector_option or o[0] != "connector"]
    if json_output:
        options.append(_JSON_OPTION)
    names = [o[0] for o in options]

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != "target"]
        extra = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)
            for name, ann, default in options
        ]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {n: kwargs.pop(n, None) for n in names}
            target = Target(**{k: v for k, v in values.items() if v is not None})
            with reported():
                return fn(*args, target=target, **kwargs)

        params = own + extra
        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        del wrapper.__wrapped__
        return wrapper  # type: ignore[return-value]

    return decorate


@contextlib.contextmanager
def reported(environment: Environment | None = None) -> Any:
    """Report any failure inside as ``error: ...`` on stderr and exit non-zero."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        err_console().print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None
    except Exception as exc:
        if hasattr(exc, "exit_code") and hasattr(exc, "show"):
            raise  # a usage error of the command-line parser: it reports itself
        error = explain(exc, getattr(exc, "_bybitkit_env", environment))
        log.debug("command failed: %s", error.message, exc_info=not isinstance(exc, CliError))
        err_console().print(f"[bold red]error:[/] {escape(redact(error.message))}", highlight=False)
        raise typer.Exit(error.code) from None


def parse_sandbox_info(value: str) -> dict[str, str]:
    """``--sandbox-info``: the JSON object itself, or a file holding it."""
    text = value.strip()
    if not text.startswith("{"):
        path = Path(text).expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise usage(
                "--sandbox-info", "the JSON line of `bybitkit sandbox serve` or a file holding it",
                f"{value} ({exc.strerror})",
            ) from None  # fmt: skip
        text = text.splitlines()[0] if text else ""
    try:
        info = json.loads(text)
    except ValueError:
        raise usage("--sandbox-info", 'a JSON object such as {"rest_url": ...}') from None
    if not isinstance(info, dict) or not isinstance(info.get("rest_url"), str):
        raise usage("--sandbox-info", 'a JSON object with "rest_url" (and "api_key", "api_secret")')
    out = {k: str(v) for k, v in info.items() if isinstance(v, str | int)}
    register_secret(out.get("api_secret"))
    return out


def _ws_of(rest_url: str) -> str:
    if rest_url.startswith("https://"):
        return "wss://" + rest_url[len("https://") :]
    return "ws://" + rest_url[len("http://") :]


def _check_url(url: str, name: str) -> str:
    if not re.match(r"^https?://[^/\s]+", url):
        raise usage(name, "an http:// URL such as http://127.0.0.1:8080", url)
    return url.rstrip("/")


def read_secret_file(path: Path, name: str = "--api-secret-file") -> str:
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise usage(name, "a readable file holding the API secret or RSA key", f"{path} "
                    f"({exc.strerror})") from None  # fmt: skip
    except UnicodeDecodeError:
        raise usage(name, "a text file (the secret, or a PEM private key)", str(path)) from None
    secret = text.strip()
    if not secret:
        raise usage(name, "a file holding the API secret", f"{path} (empty)")
    if "-----BEGIN" in secret and "PRIVATE KEY-----" not in secret:
        raise usage(name, "an RSA private key (PEM); a public key cannot sign", str(path))
    if secret.startswith("-----BEGIN"):
        secret += "\n"
    register_secret(secret)
    return secret


def check_connector(connector: str) -> str:
    if connector not in CONNECTORS:
        raise usage("--connector", "one of " + ", ".join(sorted(CONNECTORS)), connector)
    return connector


def explicit_credentials(
    target: Target, info: dict[str, str] | None
) -> tuple[Credentials | None, str]:
    """Credentials given on the command line, in the environment or in the sandbox info."""
    if target.api_secret_file is not None and target.api_key is None:
        raise usage("--api-key", "an API key to go with --api-secret-file")
    if target.api_key is not None:
        if target.api_secret_file is not None:
            secret = read_secret_file(target.api_secret_file)
        elif os.environ.get("BYBITKIT_API_SECRET"):
            secret = os.environ["BYBITKIT_API_SECRET"]
        else:
            raise usage("--api-secret-file", "a file holding the secret of --api-key")
        register_secret(secret)
        return Credentials(target.api_key.strip(), secret), "--api-key"
    env_key = os.environ.get("BYBITKIT_API_KEY")
    if env_key:
        secret = os.environ.get("BYBITKIT_API_SECRET", "")
        if not secret and os.environ.get("BYBITKIT_API_SECRET_FILE"):
            secret = read_secret_file(
                Path(os.environ["BYBITKIT_API_SECRET_FILE"]), "BYBITKIT_API_SECRET_FILE"
            )
        if not secret:
            raise usage("BYBITKIT_API_SECRET", "the secret of BYBITKIT_API_KEY")
        register_secret(secret)
        return Credentials(env_key.strip(), secret), "environment"
    if info and info.get("api_key") and info.get("api_secret"):
        return Credentials(info["api_key"], info["api_secret"]), "--sandbox-info"
    return None, ""


def default_connector(target: Target, info: dict[str, str] | None) -> str:
    if target.connector:
        return check_connector(target.connector.strip())
    env = os.environ.get("BYBITKIT_CONNECTOR")
    if env:
        return check_connector(env.strip())
    if info is not None or target.sandbox_url:
        return "sandbox"
    stored = KeyStore.default().connections()
    if len(stored) == 1:
        return stored[0].connector
    known = ", ".join(c.connector for c in stored) or "none yet"
    raise usage("--connector", f"a connector id (connected: {known})")


def resolve(target: Target, *, keys: bool) -> Resolved:
    """The connector, environment and (with ``keys``) credentials the options designate."""
    info = parse_sandbox_info(target.sandbox_info) if target.sandbox_info else None
    connector = default_connector(target, info)
    store = KeyStore.default()
    stored = store.connection(connector)
    if connector in SANDBOX_IDS or (connector in PAPER_IDS and (target.sandbox_url or info)):
        # (paper trading may take its public data from a sandbox: offline practice)
        if target.sandbox_url:
            rest = _check_url(target.sandbox_url, "--sandbox-url")
            ws = _ws_of(rest)
        elif info is not None:
            rest = _check_url(info["rest_url"], "--sandbox-info rest_url")
            ws = info.get("ws_url") or _ws_of(rest)
        elif stored is not None and stored.rest_url:
            rest, ws = stored.rest_url, stored.ws_url or _ws_of(stored.rest_url)
        else:
            raise usage(
                "--sandbox-url",
                f"the URL of a running sandbox for {connector} (the rest_url printed by "
                "`bybitkit sandbox serve`), or --sandbox-info",
            )
        environment = Environment.custom(rest, ws, name="sandbox")
    else:
        if target.sandbox_url or info is not None:
            raise usage("--connector", "a sandbox or paper connector with --sandbox-url/-info",
                        connector)  # fmt: skip
        env_name = CONNECTORS[connector][1]
        assert env_name is not None
        environment = get_environment(env_name)
    creds, source = explicit_credentials(target, info)
    if connector in PAPER_IDS:  # paper trading: public data only, the rest is local
        return Resolved(connector, environment, None, "paper")
    if creds is None and keys:
        if stored is None:
            raise CliError(
                f"no API keys for {connector}: run `bybitkit connect {connector}`, or give "
                "--api-key and --api-secret-file (or BYBITKIT_API_KEY and BYBITKIT_API_SECRET)"
            )
        creds = unlock(store).credentials(connector)
        register_secret(creds.api_secret)
        source = "key store"
    return Resolved(connector, environment, creds if keys else None, source)


def stored_targets(target: Target) -> list[Resolved]:
    """The connectors a multi-connector command (``balance``) covers: the one the options name,
    else every stored connection."""
    if (
        target.connector
        or target.sandbox_url
        or target.sandbox_info
        or target.api_key
        or os.environ.get("BYBITKIT_API_KEY")
        or os.environ.get("BYBITKIT_CONNECTOR")
    ):
        return [resolve(target, keys=True)]
    store = KeyStore.default()
    stored = store.connections()
    if not stored:
        raise CliError("not connected: run `bybitkit connect <connector>` first")
    return [resolve(Target(connector=c.connector), keys=True) for c in stored]


@contextlib.asynccontextmanager
async def open_connector(res: Resolved, **options: Any) -> AsyncIterator[BybitConnector]:
    """A started connector; with credentials (or paper) it records into
    ``BYBITKIT_HOME/store.sqlite`` (a paper account lives there between commands)."""
    if res.credentials is not None or res.connector in PAPER_IDS:
        options.setdefault("store", str(store_path()))
    ex = connect(res.connector, res.credentials, res.environment, **options)
    try:
        async with asyncio.timeout(30):
            await ex.start()
    except BaseException as exc:
        await ex.stop()
        if isinstance(exc, Exception):
            exc._bybitkit_env = res.environment  # type: ignore[attr-defined]
        raise
    try:
        yield ex
    except Exception as exc:
        exc._bybitkit_env = res.environment  # type: ignore[attr-defined]
        raise
    finally:
        await ex.stop()


def perpetual(ex: BybitConnector, command: str) -> PerpetualConnector:
    if not isinstance(ex, PerpetualConnector):
        raise usage(
            "--connector",
            f"a perpetual connector for {command} ({', '.join(PERPETUAL_IDS)})",
            ex.connector_id,
        )
    return ex


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one command's coroutine on its own event loop."""
    return asyncio.run(coro)


# -- output ----------------------------------------------------------------------------------------


def console() -> Console:
    """Rich output on stdout (wide when not a terminal, so no number is ever cut). Markup is
    off: data such as ``[x]`` prints as it is; style with ``Text`` or ``style=``."""
    c = Console(highlight=False, soft_wrap=False, markup=False)
    if not c.is_terminal:
        c = Console(highlight=False, width=max(c.width, 160), no_color=True, markup=False)
    return c


class DataTable(Table):
    """A table whose cells are never cut: values wrap (``fold``) instead of ending in "…",
    and order-id columns stay whole on one line (``cancel`` takes them as they are)."""

    def add_column(self, header: Any = "", *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("overflow", "fold")
        if str(header).lower().endswith(" id"):
            kwargs.setdefault("no_wrap", True)
            kwargs.setdefault("min_width", 36)
        super().add_column(header, *args, **kwargs)


def err_console() -> Console:
    c = Console(stderr=True, highlight=False)
    if not c.is_terminal:
        c = Console(stderr=True, highlight=False, width=max(c.width, 160), no_color=True)
    return c


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "value") and hasattr(value, "name"):  # an Enum
        return value.name.lower()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def print_json(data: Any, indent: int | None = 2) -> None:
    sys.stdout.write(redact(json.dumps(data, default=_json_default, indent=indent)) + "\n")
    sys.stdout.flush()


def d(value: Decimal | None, empty: str = "") -> str:
    """A Decimal as plain text (exact, no exponent)."""
    return empty if value is None else fmt(value)


def ts(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: str | None, name: str) -> int | None:
    """``--since``/``--until``: a date, a date and time (UTC), epoch ms, or an age (``12h``)."""
    if value is None or value == "":
        return None
    text = value.strip()
    age = _AGE.match(text.lower())
    if age:
        seconds = float(age.group(1)) * _UNITS[age.group(2)]
        return int((time.time() - seconds) * 1000)
    if text.isdigit():
        number = int(text)
        return number if number >= 10**11 else number * 1000
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise usage(
            name,
            "a date (2024-05-01), a date and time in UTC (2024-05-01T12:00), epoch "
            "milliseconds, or an age such as 30m, 12h or 7d",
            value,
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def days_until(iso: str | None) -> timedelta | None:
    """Time left until an ISO-8601 instant (None for none, or Bybit's epoch 'no expiry')."""
    if not iso:
        return None
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when.year <= 1970:
        return None
    return when - datetime.now(UTC)


def join(items: Iterable[str]) -> str:
    return ", ".join(items)


__all__ = [
    "PERPETUAL_IDS",
    "SANDBOX_IDS",
    "SESSION",
    "CliError",
    "Resolved",
    "Target",
    "auth_cause",
    "console",
    "err_console",
    "explain",
    "fail",
    "open_connector",
    "print_json",
    "register_secret",
    "resolve",
    "run",
    "setup_logging",
    "teardown_logging",
    "usage",
    "with_target",
]
