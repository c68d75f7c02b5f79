#!/usr/bin/env python3
"""Provision and run Shinchoku's local stack natively: Kafka (KRaft), FerretDB, Prometheus.

Standard library only, so it runs before the project's virtual environment exists.

    python3 deploy/local/stack.py install   # idempotent: venv, Kafka jars, FerretDB, Prometheus
    python3 deploy/local/stack.py start     # start what is not running, wait until ready (bounded)
    python3 deploy/local/stack.py stop
    python3 deploy/local/stack.py status
    python3 deploy/local/stack.py run       # install, start, three services; Ctrl-C stops
    python3 deploy/local/stack.py demo      # `run` on the demo clock, the feed, a webhook receiver
    python3 deploy/local/stack.py bench     # install, start, every benchmark, stop what it started

Everything it downloads comes from the registries this machine reaches (Maven Central, the Go module
proxy, PyPI, Debian). Data, logs and build products live under the cache folder (``.cache/`` in the
repo, or ``SHINCHOKU_CACHE_DIR``). Every port can be overridden by environment variable.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CACHE = Path(os.environ.get("SHINCHOKU_CACHE_DIR", ROOT / ".cache")).resolve()
STACK = CACHE / "stack"
LOGS = STACK / "logs"
RUN = STACK / "run"
VENV = ROOT / ".venv"
UV_VERSION = "0.13.9"
PYTHON = os.environ.get("SHINCHOKU_PYTHON", "python3.11")


def port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


KAFKA_PORT = port("SHINCHOKU_KAFKA_PORT", 9092)
POSTGRES_PORT = port("SHINCHOKU_POSTGRES_PORT", 5432)
KAFKA_CONTROLLER_PORT = port("SHINCHOKU_KAFKA_CONTROLLER_PORT", 9093)
MONGO_PORT = port("SHINCHOKU_MONGO_PORT", 27017)
PROMETHEUS_PORT = port("SHINCHOKU_PROMETHEUS_PORT", 9090)
SERVICE_PORTS = {
    "ingest": port("SHINCHOKU_INGEST_PORT", 8001),
    "kpi": port("SHINCHOKU_KPI_PORT", 8002),
    "alerts": port("SHINCHOKU_ALERTS_PORT", 8003),
}
READY_TIMEOUT_S = float(os.environ.get("SHINCHOKU_READY_TIMEOUT", "120"))


class StackError(RuntimeError):
    """A clean, user-facing failure: what could not be done and what to do about it."""


def log(message: str) -> None:
    print(f"[stack] {message}", flush=True)


# ---------------------------------------------------------------------------------------------
# small helpers


def require_tool(tool: str, hint: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise StackError(f"required tool '{tool}' not found on PATH: {hint}")
    return found


def fingerprint(*paths: Path, extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def up_to_date(marker: Path, value: str) -> bool:
    return marker.exists() and marker.read_text() == value


def run(
    cmd: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    quiet_log: Path | None = None,
) -> None:
    """Run a command; on failure show the tail of its output and name the command."""
    printable = " ".join(str(c) for c in cmd)
    if quiet_log is None:
        result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, check=False)
    else:
        quiet_log.parent.mkdir(parents=True, exist_ok=True)
        with quiet_log.open("wb") as out:
            result = subprocess.run(
                [str(c) for c in cmd],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
    if result.returncode != 0:
        tail = ""
        if quiet_log is not None and quiet_log.exists():
            tail = "\n".join(quiet_log.read_text(errors="replace").splitlines()[-25:])
        raise StackError(f"command failed ({result.returncode}): {printable}\n{tail}")


def port_open(port_number: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port_number)) == 0


def http_ok(port: int, path: str) -> bool:
    """GET http://127.0.0.1:port/path answers 200 (a plain socket: no client library needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
            return b" 200 " in sock.recv(256)
    except OSError:
        return False


class StopRequest:
    """Ctrl-C or SIGTERM asks a foreground command (`run`, `demo`) to stop what it started;
    `requested` says whether one has."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGINT, self._request)
        signal.signal(signal.SIGTERM, self._request)

    def _request(self, *_: object) -> None:
        self.requested = True


def wait_until(
    what: str,
    check: Callable[[], bool],
    timeout_s: float,
    alive: Callable[[], bool] | None = None,
    logfile: Path | None = None,
) -> None:
    """Bounded polling with a growing interval; fails early when the process died."""
    deadline = time.monotonic() + timeout_s
    interval = 0.1
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise StackError(f"{what} exited during start-up; see {logfile}\n{tail_of(logfile)}")
        time.sleep(interval)
        interval = min(interval * 1.5, 2.0)
    raise StackError(f"{what} not ready after {timeout_s:.0f}s; see {logfile}\n{tail_of(logfile)}")


def tail_of(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------
# processes


@dataclass
class Component:
    name: str
    port: int
    command: Callable[[], list[str]]
    ready: Callable[[], bool]
    prepare: Callable[[], object] = lambda: None  # what it returns is not used
    env: Callable[[], dict[str, str]] = dict
    extra_ports: list[int] = field(default_factory=list)
    # Run as this system user when started by root (PostgreSQL refuses to run as root).
    user: str | None = None
    # PostgreSQL's "fast" shutdown is SIGINT; its SIGTERM waits for every client to leave.
    stop_signal: int = signal.SIGTERM

    @property
    def pidfile(self) -> Path:
        return RUN / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return LOGS / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        # a zombie left by a parent that has not reaped it is not running
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"):
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def start(self) -> bool:
        """Start unless already running; returns True when this call started it."""
        if self.running():
            if self.ready():
                log(f"{self.name}: already running (pid {self.pid()}) on port {self.port}")
                return False
            wait_until(self.name, self.ready, READY_TIMEOUT_S, self.running, self.logfile)
            return False
        for p in [self.port, *self.extra_ports]:
            if port_open(p):
                raise StackError(
                    f"{self.name}: port {p} on 127.0.0.1 is already in use by another process; "
                    f"stop it or choose another port (see README: SHINCHOKU_*_PORT variables)"
                )
        self.prepare()
        LOGS.mkdir(parents=True, exist_ok=True)
        RUN.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env()}
        uid: int | None = None
        gid: int | None = None
        extra_groups: list[int] | None = None
        if self.user is not None and os.geteuid() == 0:
            account = pwd.getpwnam(self.user)
            uid, gid, extra_groups = account.pw_uid, account.pw_gid, []
        with self.logfile.open("ab") as out:
            process = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd="/" if uid is not None else ROOT,
                env=env,
                start_new_session=True,
                user=uid,
                group=gid,
                extra_groups=extra_groups,
            )
        self.pidfile.write_text(str(process.pid))
        log(f"{self.name}: started (pid {process.pid}), waiting for port {self.port}")
        wait_until(
            self.name, self.ready, READY_TIMEOUT_S, lambda: process.poll() is None, self.logfile
        )
        log(f"{self.name}: ready on 127.0.0.1:{self.port}")
        return True

    def stop(self, timeout_s: float = 30.0) -> None:
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, self.stop_signal)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.running():
            time.sleep(0.2)
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)
        log(f"{self.name}: stopped")


# ---------------------------------------------------------------------------------------------
# Kafka

KAFKA_DIR = STACK / "kafka"
KAFKA_LIBS = KAFKA_DIR / "libs"
KAFKA_DATA = KAFKA_DIR / "data"
KAFKA_CONFIG = KAFKA_DIR / "server.properties"


def install_kafka() -> None:
    require_tool("java", "install a Java 17 runtime (Debian: openjdk-17-jre-headless)")
    mvn = require_tool("mvn", "install Maven (Debian: maven)")
    pom = DEPLOY / "local" / "kafka" / "pom.xml"
    marker = KAFKA_DIR / ".installed"
    want = fingerprint(pom)
    if up_to_date(marker, want) and any(KAFKA_LIBS.glob("kafka_2.13-*.jar")):
        log("kafka: jars up to date")
        return
    log("kafka: resolving the broker's jars from Maven Central")
    shutil.rmtree(KAFKA_LIBS, ignore_errors=True)
    KAFKA_LIBS.mkdir(parents=True, exist_ok=True)
    run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            pom,
            "dependency:copy-dependencies",
            f"-DoutputDirectory={KAFKA_LIBS}",
            "-DincludeScope=runtime",
        ],
        quiet_log=LOGS / "install-kafka.log",
    )
    marker.write_text(want)


def kafka_java(main_class: str, *args: str, heap: str = "256m") -> list[str]:
    log4j = DEPLOY / "local" / "kafka" / "log4j.properties"
    return [
        "java",
        f"-Xmx{heap}",
        f"-Dlog4j.configuration=file:{log4j}",
        "-cp",
        f"{KAFKA_LIBS}/*",
        main_class,
        *args,
    ]


# The broker's SCRAM users, one per service (deploy/README.md, "Who may write to Kafka"):
# `admin` is the super user (topics, ACLs, tests); `ministry-test` has no ACL until a test grants
# it one, as an operator grants a ministry that writes straight to Kafka.
KAFKA_USERS = ("admin", "ingest", "kpi", "alerts", "ministry-test")
KAFKA_CREDENTIALS = KAFKA_DIR / "credentials.json"
KAFKA_ADMIN_PROPERTIES = KAFKA_DIR / "admin.properties"
KAFKA_SECURITY = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512"}


def write_private(path: Path, text: str) -> None:
    """Owner-only from the first byte: the file holds passwords."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)


class KafkaCredentials(TypedDict):
    """The credentials file's shape (harness/stack.py reads it too)."""

    security_protocol: str
    sasl_mechanism: str
    users: dict[str, str]  # user name -> password
    controller: str  # the KRaft controller's own password


def kafka_credentials() -> KafkaCredentials:
    """This stack's Kafka passwords, generated once into the cache folder (never committed).
    Tests and benchmarks read the file named by SHINCHOKU_TEST_KAFKA_CREDENTIALS."""
    import json

    if KAFKA_CREDENTIALS.exists():
        stored: KafkaCredentials = json.loads(KAFKA_CREDENTIALS.read_text())
        if set(stored.get("users", {})) == set(KAFKA_USERS) and stored.get("controller"):
            return stored
    # hex: no character the SCRAM argument syntax or a JAAS string would need quoted
    credentials: KafkaCredentials = {
        "security_protocol": KAFKA_SECURITY["security_protocol"],
        "sasl_mechanism": KAFKA_SECURITY["sasl_mechanism"],
        "users": {name: secrets.token_hex(24) for name in KAFKA_USERS},
        "controller": secrets.token_hex(24),
    }
    write_private(KAFKA_CREDENTIALS, json.dumps(credentials, indent=2) + "\n")
    return credentials


def kafka_password(user: str) -> str:
    return kafka_credentials()["users"][user]


def kafka_client_env(prefix: str, user: str) -> dict[str, str]:
    """A client's settings (shared/settings.py KafkaSettings) as environment variables."""
    return {
        f"{prefix}KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{KAFKA_PORT}",
        f"{prefix}KAFKA__SECURITY_PROTOCOL": KAFKA_SECURITY["security_protocol"],
        f"{prefix}KAFKA__SASL_MECHANISM": KAFKA_SECURITY["sasl_mechanism"],
        f"{prefix}KAFKA__USERNAME": user,
        f"{prefix}KAFKA__PASSWORD": kafka_password(user),
    }


def prepare_kafka() -> None:
    global _kafka_log_offset
    _kafka_log_offset = KAFKA.logfile.stat().st_size if KAFKA.logfile.exists() else 0
    credentials = kafka_credentials()
    template = (DEPLOY / "local" / "kafka" / "server.properties.template").read_text()
    rendered = string.Template(template).substitute(
        KAFKA_PORT=KAFKA_PORT,
        CONTROLLER_PORT=KAFKA_CONTROLLER_PORT,
        DATA_DIR=KAFKA_DATA,
        ADMIN_PASSWORD=kafka_password("admin"),
        CONTROLLER_PASSWORD=credentials["controller"],
    )
    write_private(KAFKA_CONFIG, rendered)
    # For Kafka's own tools as the admin (`--command-config`, deploy/README.md).
    write_private(
        KAFKA_ADMIN_PROPERTIES,
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="admin" password="{kafka_password("admin")}";\n',
    )
    # SCRAM users are written into the metadata when the storage is formatted: storage formatted
    # before this stack had them (or with other passwords) is formatted again, empty.
    formatted_marker = KAFKA_DIR / ".formatted-users"
    users_fingerprint = fingerprint(KAFKA_CREDENTIALS)
    if (KAFKA_DATA / "meta.properties").exists():
        if up_to_date(formatted_marker, users_fingerprint):
            return
        log("kafka: the data predates this stack's SCRAM users; formatting it again (empty)")
        shutil.rmtree(KAFKA_DATA)
    # KRaft refuses to start on unformatted storage: format once with a fresh cluster id.
    KAFKA_DATA.mkdir(parents=True, exist_ok=True)
    cluster_id = (
        subprocess.run(
            kafka_java("kafka.tools.StorageTool", "random-uuid"),
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    scram_users: list[str] = []
    for user in KAFKA_USERS:
        scram = f"SCRAM-SHA-512=[name={user},password={kafka_password(user)}]"
        scram_users += ["--add-scram", scram]
    try:
        run(
            kafka_java(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(KAFKA_CONFIG),
                "--ignore-formatted",
                *scram_users,
            ),
            quiet_log=LOGS / "kafka-format.log",
        )
    except StackError as error:
        message = str(error)
        for user in KAFKA_USERS:
            message = message.replace(kafka_password(user), "***")
        raise StackError(message) from None
    formatted_marker.write_text(users_fingerprint)


def kafka_api_versions_ok(port: int = KAFKA_PORT) -> bool:
    """A real Kafka protocol round trip (ApiVersions v0) against 127.0.0.1:port, not just an
    open port (tests/support/kafka_broker.py asks it of the private brokers it starts)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            client_id = b"shinchoku-stack"
            body = (
                (18).to_bytes(2, "big")
                + (0).to_bytes(2, "big")
                + (7).to_bytes(4, "big")
                + len(client_id).to_bytes(2, "big")
                + client_id
            )
            sock.sendall(len(body).to_bytes(4, "big") + body)
            header = sock.recv(10)
            if len(header) < 10:
                return False
            correlation = int.from_bytes(header[4:8], "big")
            error_code = int.from_bytes(header[8:10], "big", signed=True)
            return correlation == 7 and error_code == 0
    except OSError:
        return False


# Where this start's log output begins: the broker counts as ready once it has logged that it
# started *in this run* (ApiVersions alone answers a little before the broker is usable).
_kafka_log_offset: int | None = None


def kafka_ready() -> bool:
    if not kafka_api_versions_ok():
        return False
    if _kafka_log_offset is None:  # running before this command: the protocol answer suffices
        return True
    with KAFKA.logfile.open("rb") as log_file:
        log_file.seek(_kafka_log_offset)
        return b"Kafka Server started" in log_file.read()


KAFKA = Component(
    name="kafka",
    port=KAFKA_PORT,
    extra_ports=[KAFKA_CONTROLLER_PORT],
    prepare=prepare_kafka,
    command=lambda: kafka_java("kafka.Kafka", str(KAFKA_CONFIG), heap="768m"),
    ready=kafka_ready,
)


# ---------------------------------------------------------------------------------------------
# PostgreSQL (FerretDB's default backend)

POSTGRES_DIR = STACK / "postgres"


def reachable_by_others(path: Path) -> bool:
    """Every existing folder on the way to `path` can be entered by any user (folders still to
    be created are made 0755)."""
    return all(
        os.stat(folder).st_mode & 0o001 for folder in [*path.parents, path] if folder.exists()
    )


def postgres_data_dir(explicit: str | None, default: Path, as_root: bool) -> Path:
    """The cluster's folder: SHINCHOKU_POSTGRES_DATA_DIR, else the cache folder's
    `stack/postgres/data`, unless the stack runs as root from a checkout the `postgres` account
    cannot enter (say under /root, 0700): then one cluster per cache folder in that account's
    home, /var/lib/postgresql/shinchoku-<hash of the cache folder>/data."""
    if explicit:
        return Path(explicit).resolve()
    if not as_root or reachable_by_others(default):
        return default
    digest = hashlib.sha256(str(default).encode()).hexdigest()[:12]
    return Path("/var/lib/postgresql") / f"shinchoku-{digest}" / "data"


POSTGRES_DATA = postgres_data_dir(
    os.environ.get("SHINCHOKU_POSTGRES_DATA_DIR"),
    (POSTGRES_DIR / "data").resolve(),
    as_root=os.geteuid() == 0,
)
# The system account PostgreSQL runs as when the stack is started by root (Debian's package
# creates it); an unprivileged user runs it as themself.
POSTGRES_USER = "postgres"
# The PostgreSQL database FerretDB stores in (each MongoDB database is a schema inside it).
FERRETDB_PG_DATABASE = "ferretdb"
# A throw-away development and test database, tuned like MongoDB's default durability (writes
# acknowledged before they reach the disk, the journal flushed within ~100 ms): a committed
# transaction is in the WAL and survives a crash of PostgreSQL itself, but an operating-system
# crash may lose the last few hundred milliseconds of commits (never corrupts: fsync stays on).
POSTGRES_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "synchronous_commit": "off",
    "max_connections": "200",
    "shared_buffers": "256MB",
    "max_wal_size": "2GB",
}


def postgres_bin_dir() -> Path:
    """The newest installed major version of Debian's PostgreSQL (/usr/lib/postgresql/N/bin)."""
    found = [
        path.parent
        for path in Path("/usr/lib/postgresql").glob("*/bin/postgres")
        if path.parent.parent.name.isdigit()
    ]
    if found:
        return max(found, key=lambda path: int(path.parent.name))
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).resolve().parent
    raise StackError(
        "PostgreSQL not found (/usr/lib/postgresql/*/bin/postgres): "
        "`python3 deploy/local/stack.py install` installs Debian's postgresql package"
    )


def apt_install(package: str, otherwise: str) -> None:
    """Debian's `package`, then its system-wide service stopped: the stack runs its own
    instance from the cache folder, on its own ports. `otherwise` says what to do without
    apt-get."""
    apt = require_tool("apt-get", otherwise)
    log(f"{package}: installing Debian's {package} package")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    prefix = [] if os.geteuid() == 0 else [require_tool("sudo", "run as root or install sudo")]
    run([*prefix, apt, "update", "-qq"], env=env, quiet_log=LOGS / "install-apt.log")
    run(
        [*prefix, apt, "install", "-y", "-qq", "--no-install-recommends", package],
        env=env,
        quiet_log=LOGS / f"install-{package}.log",
    )
    with contextlib.suppress(Exception):
        subprocess.run(["service", package, "stop"], capture_output=True, check=False)


def postgres_installed() -> bool:
    try:
        bin_dir = postgres_bin_dir()
    except StackError:
        return False
    return all((bin_dir / tool).exists() for tool in ("initdb", "postgres", "pg_isready", "psql"))


def install_postgres() -> None:
    if postgres_installed():
        log(f"postgresql: installed ({postgres_bin_dir()})")
        return
    # Debian's package may start its own cluster on 5432; ours runs from the cache folder.
    apt_install("postgresql", "install PostgreSQL (Debian: postgresql) by hand")
    if not postgres_installed():
        raise StackError("the postgresql package installed no /usr/lib/postgresql/*/bin/postgres")


def as_postgres(cmd: Sequence[str | Path]) -> list[str]:
    """The command run as the PostgreSQL account when we are root (it refuses to run as root)."""
    if os.geteuid() != 0:
        return [str(c) for c in cmd]
    try:
        pwd.getpwnam(POSTGRES_USER)
    except KeyError:
        raise StackError(
            f"no '{POSTGRES_USER}' system user to run PostgreSQL as (Debian's postgresql "
            "package creates it): reinstall the package or run the stack as a non-root user"
        ) from None
    runuser = require_tool("runuser", "install util-linux")
    return [runuser, "-u", POSTGRES_USER, "--", *[str(c) for c in cmd]]


def prepare_postgres() -> None:
    """Create the cluster once (idempotent), owned by the account PostgreSQL runs as."""
    bin_dir = postgres_bin_dir()
    POSTGRES_DATA.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        account = pwd.getpwnam(POSTGRES_USER)
        # Every folder above the cluster must be traversable by that account.
        if not reachable_by_others(POSTGRES_DATA.parent):
            raise StackError(
                f"postgresql: the '{POSTGRES_USER}' user cannot reach {POSTGRES_DATA}; set "
                "SHINCHOKU_POSTGRES_DATA_DIR to a folder it can reach"
            )
        if not POSTGRES_DATA.exists():
            POSTGRES_DATA.mkdir(mode=0o700)
        os.chown(POSTGRES_DATA, account.pw_uid, account.pw_gid)
    else:
        POSTGRES_DATA.mkdir(mode=0o700, exist_ok=True)
    if (POSTGRES_DATA / "PG_VERSION").exists():
        return
    log(f"postgresql: creating a cluster in {POSTGRES_DATA}")
    run(
        as_postgres(
            [
                bin_dir / "initdb",
                "-D",
                POSTGRES_DATA,
                "-U",
                "postgres",
                # Local development only: it listens on 127.0.0.1 and trusts connections there.
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ]
        ),
        quiet_log=LOGS / "postgres-initdb.log",
    )


def postgres_command() -> list[str]:
    settings = [f"--{name}={value}" for name, value in POSTGRES_SETTINGS.items()]
    return [
        str(postgres_bin_dir() / "postgres"),
        "-D",
        str(POSTGRES_DATA),
        "-p",
        str(POSTGRES_PORT),
        *settings,
    ]


def postgres_ready() -> bool:
    """pg_isready: accepting connections (not merely listening while it recovers)."""
    try:
        result = subprocess.run(
            [
                str(postgres_bin_dir() / "pg_isready"),
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                str(POSTGRES_PORT),
                "-t",
                "2",
            ],
            capture_output=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired, StackError):
        return False
    return result.returncode == 0


def postgres_url(database: str = FERRETDB_PG_DATABASE) -> str:
    return f"postgres://postgres@127.0.0.1:{POSTGRES_PORT}/{database}"


def ensure_postgres_database(name: str) -> None:
    """CREATE DATABASE unless it exists (FerretDB creates its schemas, not the database)."""
    psql = [str(postgres_bin_dir() / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"]
    psql += ["-h", "127.0.0.1", "-p", str(POSTGRES_PORT), "-U", "postgres", "-d", "postgres"]
    exists = subprocess.run(
        [*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
        capture_output=True,
        text=True,
        check=False,
    )
    if exists.returncode != 0:
        raise StackError(f"postgresql: cannot query its databases: {exists.stderr.strip()}")
    if exists.stdout.strip() == "1":
        return
    run([*psql, "-c", f'CREATE DATABASE "{name}"'], quiet_log=LOGS / "postgres-createdb.log")


POSTGRES = Component(
    name="postgres",
    port=POSTGRES_PORT,
    prepare=prepare_postgres,
    command=postgres_command,
    ready=postgres_ready,
    user=POSTGRES_USER,
    stop_signal=signal.SIGINT,
)

# ---------------------------------------------------------------------------------------------
# FerretDB

FERRETDB_DIR = STACK / "ferretdb"
FERRETDB_BIN = FERRETDB_DIR / "bin" / "shinchoku-ferretdb"
FERRETDB_DATA = FERRETDB_DIR / "data"
# postgresql (the default) or sqlite: FerretDB's storage; deploy/README.md compares the two.
FERRETDB_BACKEND = os.environ.get("SHINCHOKU_FERRETDB_BACKEND", "postgresql")
if FERRETDB_BACKEND not in ("postgresql", "sqlite"):
    raise SystemExit(
        f"SHINCHOKU_FERRETDB_BACKEND={FERRETDB_BACKEND!r}: choose postgresql (default) or sqlite"
    )


def install_ferretdb() -> None:
    go = require_tool("go", "install Go >= 1.22 (it builds FerretDB from the Go module proxy)")
    source = DEPLOY / "local" / "ferretdb"
    marker = FERRETDB_DIR / ".installed"
    want = fingerprint(source / "go.mod", source / "go.sum", source / "main.go")
    if up_to_date(marker, want) and FERRETDB_BIN.exists():
        log("ferretdb: binary up to date")
        return
    log("ferretdb: building FerretDB v1 from the Go module proxy (first time takes a few minutes)")
    FERRETDB_BIN.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}
    run(
        [go, "build", "-trimpath", "-ldflags=-checklinkname=0", "-o", FERRETDB_BIN, "."],
        cwd=source,
        env=env,
        quiet_log=LOGS / "install-ferretdb.log",
    )
    marker.write_text(want)


def mongo_ready(port_number: int = MONGO_PORT) -> bool:
    """OP_MSG {ping: 1} on admin: a real wire-protocol round trip, answered ok: 1."""
    try:
        with socket.create_connection(("127.0.0.1", port_number), timeout=1.0) as sock:
            # BSON document {"ping": 1, "$db": "admin"}
            elements = b"\x10ping\x00" + (1).to_bytes(4, "little")
            elements += b"\x02$db\x00" + (6).to_bytes(4, "little") + b"admin\x00"
            document = (len(elements) + 5).to_bytes(4, "little") + elements + b"\x00"
            body = (0).to_bytes(4, "little") + b"\x00" + document  # flagBits, kind 0 section
            header = (16 + len(body)).to_bytes(4, "little") + (1).to_bytes(4, "little")
            header += (0).to_bytes(4, "little") + (2013).to_bytes(4, "little")
            sock.sendall(header + body)
            reply = sock.recv(4096)
            return b"ok\x00" in reply and b"\x01ok\x00\x00\x00\x00\x00\x00\x00\xf0?" in reply
    except OSError:
        return False


def ferretdb_command(port_number: int, backend: str, data_dir: Path) -> list[str]:
    common = [str(FERRETDB_BIN), f"-listen-addr=127.0.0.1:{port_number}"]
    if backend == "sqlite":
        return [*common, "-handler=sqlite", f"-sqlite-url=file:{data_dir}/"]
    return [*common, "-handler=postgresql", f"-postgresql-url={postgres_url()}"]


def ferretdb_component(name: str, port_number: int, backend: str) -> Component:
    data_dir = FERRETDB_DATA if name == "ferretdb" else FERRETDB_DIR / f"data-{name}"
    backend_file = RUN / f"{name}.backend"

    def prepare() -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        if backend == "postgresql":
            ensure_postgres_database(FERRETDB_PG_DATABASE)
        RUN.mkdir(parents=True, exist_ok=True)
        backend_file.write_text(backend)

    return Component(
        name=name,
        port=port_number,
        prepare=prepare,
        command=lambda: ferretdb_command(port_number, backend, data_dir),
        ready=lambda: mongo_ready(port_number),
    )


def running_backend(component: Component) -> str | None:
    """The backend a running FerretDB was started on (None when it is not running)."""
    if not component.running():
        return None
    backend_file = RUN / f"{component.name}.backend"
    return backend_file.read_text().strip() if backend_file.exists() else "sqlite"


FERRETDB = ferretdb_component("ferretdb", MONGO_PORT, FERRETDB_BACKEND)
# `make bench` compares the backends in one run: a second FerretDB, on SQLite, beside the
# PostgreSQL-backed one (started and stopped by `bench` only).
MONGO_SQLITE_PORT = port("SHINCHOKU_MONGO_SQLITE_PORT", MONGO_PORT + 1)
BENCH_SQLITE_FERRETDB = ferretdb_component("ferretdb-sqlite", MONGO_SQLITE_PORT, "sqlite")


# ---------------------------------------------------------------------------------------------
# Prometheus

PROMETHEUS_DIR = STACK / "prometheus"


def install_prometheus() -> None:
    if shutil.which("prometheus") and shutil.which("promtool"):
        log("prometheus: installed")
        return
    # Debian's package may start a system-wide instance on :9090; ours runs on its own config.
    apt_install("prometheus", "install Prometheus 2.x and promtool by hand")


PROMETHEUS_TARGETS = PROMETHEUS_DIR / "targets"


def render_local_prometheus_config(target: Path | None = None) -> Path:
    """The compose configuration is the one source; locally the targets and the `deployment`
    label differ, and each job also scrapes the services listed in file_sd files
    (``targets/<service>-*.json``, as tests write them for the services they start)."""
    source = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    for service, local_port in SERVICE_PORTS.items():
        compose_target = f"'{service}:8000'"
        labels = f"labels: {{service: {service}, deployment: compose}}"
        if compose_target not in source or labels not in source:
            raise StackError(f"deploy/prometheus/prometheus.yml: no {compose_target} with {labels}")
        source = source.replace(compose_target, f"'127.0.0.1:{local_port}'")
        file_sd = (
            f"labels: {{service: {service}, deployment: local}}\n"
            "    file_sd_configs:\n"
            f"      - files: ['{PROMETHEUS_TARGETS}/{service}-*.json']\n"
            "        refresh_interval: 10s"
        )
        source = source.replace(labels, file_sd)
    source = source.replace("/etc/prometheus/rules/", f"{DEPLOY / 'prometheus' / 'rules'}/")
    if target is None:  # tests render elsewhere, never over a running stack's configuration
        PROMETHEUS_TARGETS.mkdir(parents=True, exist_ok=True)
        target = PROMETHEUS_DIR / "prometheus.yml"
    target.write_text(source)
    return target


def prometheus_ready() -> bool:
    return http_ok(PROMETHEUS_PORT, "/-/ready")


PROMETHEUS = Component(
    name="prometheus",
    port=PROMETHEUS_PORT,
    prepare=lambda: render_local_prometheus_config(),
    command=lambda: [
        "prometheus",
        f"--config.file={PROMETHEUS_DIR / 'prometheus.yml'}",
        f"--storage.tsdb.path={PROMETHEUS_DIR / 'data'}",
        f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}",
        "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=7d",
    ],
    ready=prometheus_ready,
)

# Started in this order (FerretDB needs its PostgreSQL), stopped in the reverse; PostgreSQL only
# when FerretDB stores in it, but `stop` stops it whatever the backend.
ALL_INFRASTRUCTURE = [KAFKA, POSTGRES, FERRETDB, PROMETHEUS]
INFRASTRUCTURE = [
    c for c in ALL_INFRASTRUCTURE if c is not POSTGRES or FERRETDB_BACKEND == "postgresql"
]


# ---------------------------------------------------------------------------------------------
# Python environment and the three services


def install_python() -> None:
    uv = shutil.which("uv")
    if uv is None:
        tools = CACHE / "tools"
        uv_path = tools / "bin" / "uv"
        if not uv_path.exists():
            python = require_tool("python3", "install Python 3.11")
            log(f"python: installing uv {UV_VERSION} from PyPI")
            run([python, "-m", "venv", tools], quiet_log=LOGS / "install-uv.log")
            run(
                [tools / "bin" / "pip", "install", "-q", f"uv=={UV_VERSION}"],
                quiet_log=LOGS / "install-uv.log",
            )
        uv = str(uv_path)
    log("python: syncing .venv from uv.lock")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    run(
        [uv, "sync", "--frozen", "--python", PYTHON],
        cwd=ROOT,
        env=env,
        quiet_log=LOGS / "install-python.log",
    )


def service_env() -> dict[str, str]:
    """Settings for the locally run services, by their documented environment variables."""
    env: dict[str, str] = {}
    for service in SERVICE_PORTS:
        prefix = f"SHINCHOKU_{service.upper()}_"
        # each service as its own Kafka principal (user = service name), with only its ACLs
        for name, value in kafka_client_env(prefix, service).items():
            env.setdefault(name, value)
        env.setdefault(f"{prefix}MONGO__URL", f"mongodb://127.0.0.1:{MONGO_PORT}")
    return {**env, **{k: v for k, v in os.environ.items() if k.startswith("SHINCHOKU_")}}


def service_component(service: str) -> Component:
    service_port = SERVICE_PORTS[service]
    return Component(
        name=service,
        port=service_port,
        command=lambda: [
            str(VENV / "bin" / "python"),
            "-m",
            f"services.{service}",
            "--host",
            "127.0.0.1",
            "--port",
            str(service_port),
        ],
        ready=lambda: http_ok(service_port, "/healthz"),
        env=service_env,
    )


SERVICES = [service_component(name) for name in SERVICE_PORTS]


def shinchoku(*args: str, env: dict[str, str] | None = None) -> None:
    run([VENV / "bin" / "shinchoku", *args], env={**os.environ, **(env or {})})


# ---------------------------------------------------------------------------------------------
# commands


def cmd_install() -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    install_python()
    install_kafka()
    install_ferretdb()
    if FERRETDB_BACKEND == "postgresql":
        install_postgres()
    install_prometheus()


def cmd_start(with_prometheus: bool = True) -> list[Component]:
    running_on = running_backend(FERRETDB)
    if running_on not in (None, FERRETDB_BACKEND):
        raise StackError(
            f"ferretdb is running on the {running_on} backend, not {FERRETDB_BACKEND} "
            "(SHINCHOKU_FERRETDB_BACKEND): stop the stack first (make down)"
        )
    started = []
    for component in INFRASTRUCTURE:
        if component is PROMETHEUS and not with_prometheus:
            continue
        if component.start():
            started.append(component)
    # Topics with explicit partition counts and each service's database indexes (by the variables
    # the services read), through the real clients; then each service's ACLs (idempotent), as the
    # admin principal.
    admin = {**kafka_client_env("SHINCHOKU_", "admin"), **service_env()}
    shinchoku("infra", "init", env=admin)
    shinchoku("kafka", "acls", env=admin)
    return started


def cmd_stop() -> None:
    for component in [*reversed(SERVICES), BENCH_SQLITE_FERRETDB, *reversed(ALL_INFRASTRUCTURE)]:
        component.stop()


def cmd_status() -> int:
    down = 0
    for component in [*ALL_INFRASTRUCTURE, *SERVICES]:
        pid = component.pid()
        if component in ALL_INFRASTRUCTURE and component not in INFRASTRUCTURE and pid is None:
            continue
        state = "ready" if pid and component.ready() else ("starting" if pid else "down")
        down += state != "ready" and component in INFRASTRUCTURE
        print(
            f"{component.name:<11} {state:<9} pid={pid or '-':<8} 127.0.0.1:{component.port}"
            f"  log={component.logfile}"
        )
    return 1 if down else 0


def cmd_run() -> None:
    cmd_install()
    started = cmd_start()
    if not os.environ.get("SHINCHOKU_ADMIN_TOKEN"):
        token = secrets.token_urlsafe(24)
        os.environ["SHINCHOKU_ADMIN_TOKEN"] = token
        log(f"SHINCHOKU_ADMIN_TOKEN was unset; generated for this run: {token}")
    # The catalogue first, so the services' first sweep evaluates every KPI and milestone.
    shinchoku("catalogue", "load", env=service_env())
    started += [svc for svc in SERVICES if svc.start()]
    print()
    print("Shinchoku is running:")
    for name, service_port in SERVICE_PORTS.items():
        print(f"  {name:<7} http://127.0.0.1:{service_port}   (docs: /docs, metrics: /metrics)")
    print(f"  prometheus http://127.0.0.1:{PROMETHEUS_PORT}")
    print(f"  kafka 127.0.0.1:{KAFKA_PORT}   mongodb://127.0.0.1:{MONGO_PORT} (FerretDB)")
    print(f"  logs: {LOGS}")
    print("Ctrl-C stops what this command started.", flush=True)
    stop = StopRequest()
    try:
        while not stop.requested:
            for svc in SERVICES:
                if not svc.running():
                    log(f"{svc.name} exited; see {svc.logfile}")
                    stop.requested = True
            time.sleep(1.0)
    finally:
        for component in reversed(started):
            component.stop()


def cmd_test(pytest_args: Sequence[str]) -> int:
    """Install, start what is not running, run the whole suite, stop what this started."""
    cmd_install()
    started = cmd_start()
    try:
        env = {
            **os.environ,
            "SHINCHOKU_TEST_KAFKA": f"127.0.0.1:{KAFKA_PORT}",
            "SHINCHOKU_TEST_KAFKA_CREDENTIALS": str(KAFKA_CREDENTIALS),
            "SHINCHOKU_TEST_MONGO": f"mongodb://127.0.0.1:{MONGO_PORT}",
            "SHINCHOKU_TEST_PROMETHEUS": f"http://127.0.0.1:{PROMETHEUS_PORT}",
        }
        if FERRETDB_BACKEND == "postgresql":
            # Tests that stop a FerretDB of their own run it on this PostgreSQL too.
            env["SHINCHOKU_TEST_POSTGRES"] = f"postgres://postgres@127.0.0.1:{POSTGRES_PORT}"
        result = subprocess.run(
            [str(VENV / "bin" / "pytest"), *pytest_args], cwd=ROOT, env=env, check=False
        )
        return result.returncode
    finally:
        for component in reversed(started):
            component.stop()


def cmd_bench(bench_args: Sequence[str]) -> int:
    """Install, start what is not running (Prometheus is not needed), run every benchmark
    (benchmarks/run_all.py), stop what this started."""
    cmd_install()
    started = cmd_start(with_prometheus=False)
    try:
        env = {
            **os.environ,
            "SHINCHOKU_TEST_KAFKA": f"127.0.0.1:{KAFKA_PORT}",
            "SHINCHOKU_TEST_KAFKA_CREDENTIALS": str(KAFKA_CREDENTIALS),
            "SHINCHOKU_TEST_MONGO": f"mongodb://127.0.0.1:{MONGO_PORT}",
            "SHINCHOKU_BENCH_BACKEND": FERRETDB_BACKEND,
        }
        compare = os.environ.get("SHINCHOKU_BENCH_COMPARE_SQLITE", "1") != "0"
        if FERRETDB_BACKEND == "postgresql" and compare:
            if BENCH_SQLITE_FERRETDB.start():
                started.append(BENCH_SQLITE_FERRETDB)
            env["SHINCHOKU_BENCH_COMPARE_MONGO"] = f"mongodb://127.0.0.1:{MONGO_SQLITE_PORT}"
            env["SHINCHOKU_BENCH_COMPARE_BACKEND"] = "sqlite"
        result = subprocess.run(
            [str(VENV / "bin" / "python"), "-m", "benchmarks.run_all", *bench_args],
            cwd=ROOT,
            env=env,
            check=False,
        )
        return result.returncode
    finally:
        for component in reversed(started):
            component.stop()


# ---------------------------------------------------------------------------------------------
# The demo: the stack, a webhook receiver and the feed, on a compressed clock

DEMO_DATABASE = os.environ.get("SHINCHOKU_DEMO_DATABASE", "shinchoku_demo")
DEMO_RECEIVER_PORT = port("SHINCHOKU_DEMO_RECEIVER_PORT", 8090)
# Seconds allowed for the services to start before the simulated clock does (a slower start
# only means the feed's first simulated days are posted at once).
DEMO_STARTUP_S = 20.0


def drop_mongo_database(name: str) -> None:
    """OP_MSG {dropDatabase: 1, $db: name}, like mongo_ready's ping (no driver needed yet)."""
    db = name.encode()
    elements = b"\x10dropDatabase\x00" + (1).to_bytes(4, "little")
    elements += b"\x02$db\x00" + (len(db) + 1).to_bytes(4, "little") + db + b"\x00"
    document = (len(elements) + 5).to_bytes(4, "little") + elements + b"\x00"
    body = (0).to_bytes(4, "little") + b"\x00" + document
    header = (16 + len(body)).to_bytes(4, "little") + (1).to_bytes(4, "little")
    header += (0).to_bytes(4, "little") + (2013).to_bytes(4, "little")
    with socket.create_connection(("127.0.0.1", MONGO_PORT), timeout=30.0) as sock:
        sock.sendall(header + body)
        reply = sock.recv(4096)
    if b"\x01ok\x00\x00\x00\x00\x00\x00\x00\xf0?" not in reply:
        raise StackError(f"could not drop the demo database {name!r}: {reply[:200]!r}")


def demo_env(days: int, speed: float) -> dict[str, str]:
    """The demo's settings: its own database, the kpi service on the catch-up clock (see
    services/kpi/settings.py) starting DEMO_STARTUP_S from now, the receiver allowed as a
    webhook target, a short grouping window."""
    start = time.time() + DEMO_STARTUP_S
    env = {
        "SHINCHOKU_KPI_CLOCK_OFFSET_DAYS": str(-days),
        "SHINCHOKU_KPI_CLOCK_RATE": repr(speed * 86_400),
        "SHINCHOKU_KPI_CLOCK_START": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(start)),
        "SHINCHOKU_KPI_SWEEP_INTERVAL_S": "5",
        "SHINCHOKU_ALERTS_ALLOWED_TARGET_NETWORKS": '["127.0.0.1/32"]',
        "SHINCHOKU_ALERTS_GROUPING_WINDOW_S": "5",
    }
    for service in SERVICE_PORTS:
        env[f"SHINCHOKU_{service.upper()}_MONGO__DATABASE"] = demo_database(service)
    return env


def demo_database(service: str) -> str:
    return f"{DEMO_DATABASE}_{service}"


def wait_for_subscription(
    receiver: subprocess.Popen[bytes], receiver_url: str, token: str, timeout_s: float = 30.0
) -> None:
    """Until the alerts service lists the receiver's subscription (the receiver makes it)."""
    import json
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{SERVICE_PORTS['alerts']}/v1/subscriptions",
        headers={"authorization": f"Bearer {token}"},
    )

    def subscribed() -> bool:
        try:
            with urllib.request.urlopen(request, timeout=2.0) as answer:
                items = json.load(answer).get("items", [])
        except OSError:
            return False
        return any(item.get("url") == receiver_url for item in items)

    deadline = time.monotonic() + timeout_s
    while not subscribed():
        if receiver.poll() is not None:
            raise StackError("the webhook receiver exited (its output is above)")
        if time.monotonic() > deadline:
            raise StackError(f"the alerts service lists no subscription for {receiver_url}")
        time.sleep(0.5)


def cmd_demo() -> None:
    """Install, start the stack and the services on the demo clock, a webhook receiver and the
    feed (`shinchoku simulate`); the stack keeps running after the feed until Ctrl-C, which
    stops what this command started."""
    days = int(os.environ.get("SHINCHOKU_DEMO_DAYS", "365"))
    speed = float(os.environ.get("SHINCHOKU_DEMO_SPEED", "3"))
    cmd_install()
    running = [svc.name for svc in SERVICES if svc.running()]
    if running:
        raise StackError(
            f"{', '.join(running)} already running: the demo starts the services on its own clock "
            "and database; stop them first (python3 deploy/local/stack.py stop-services)"
        )
    if port_open(DEMO_RECEIVER_PORT):
        raise StackError(
            f"port {DEMO_RECEIVER_PORT} (the demo's webhook receiver) is in use; "
            "choose another with SHINCHOKU_DEMO_RECEIVER_PORT"
        )
    started = cmd_start()
    if not os.environ.get("SHINCHOKU_ADMIN_TOKEN"):
        os.environ["SHINCHOKU_ADMIN_TOKEN"] = secrets.token_urlsafe(24)
    token = os.environ["SHINCHOKU_ADMIN_TOKEN"]
    log(f"demo: fresh databases {DEMO_DATABASE}_<service>, the catalogue in ingest's and kpi's")
    for service in SERVICE_PORTS:
        drop_mongo_database(demo_database(service))
    environment = {
        **kafka_client_env("SHINCHOKU_", "admin"),
        **service_env(),
        **demo_env(days, speed),
    }
    shinchoku("infra", "init", env=environment)
    shinchoku("catalogue", "load", env=environment)
    children: list[subprocess.Popen[bytes]] = []
    stop = StopRequest()
    try:
        # The services and the feed (a child) read the same clock settings.
        os.environ.update(demo_env(days, speed))
        started += [svc for svc in SERVICES if svc.start()]
        receiver_url = f"http://127.0.0.1:{DEMO_RECEIVER_PORT}/hooks"
        python = str(VENV / "bin" / "python")
        # Own sessions: Ctrl-C reaches this process only, which then stops them in order.
        receiver = subprocess.Popen(
            [
                python,
                "-m",
                "demo.receiver",
                "--port",
                str(DEMO_RECEIVER_PORT),
                "--alerts-url",
                f"http://127.0.0.1:{SERVICE_PORTS['alerts']}",
            ],
            cwd=ROOT,
            start_new_session=True,
        )
        children.append(receiver)
        wait_for_subscription(receiver, receiver_url, token)
        feed = subprocess.Popen(
            [
                str(VENV / "bin" / "shinchoku"),
                "simulate",
                "--ingest-url",
                f"http://127.0.0.1:{SERVICE_PORTS['ingest']}",
            ],
            cwd=ROOT,
            start_new_session=True,
        )
        children.append(feed)
        print(
            f"\nThe demo feed replays {days} days at {speed:g} days/s "
            f"(about {days / speed:.0f} s); webhooks print as they arrive.\n"
            f"  prometheus http://127.0.0.1:{PROMETHEUS_PORT}   "
            f"kpi http://127.0.0.1:{SERVICE_PORTS['kpi']}/docs   logs {LOGS}\n"
            "Ctrl-C stops what this command started.\n",
            flush=True,
        )
        reported = False
        while not stop.requested:
            for svc in SERVICES:
                if not svc.running():
                    log(f"{svc.name} exited; see {svc.logfile}")
                    stop.requested = True
            if not reported and feed.poll() is not None:
                reported = True
                verdict = "finished" if feed.returncode == 0 else f"failed ({feed.returncode})"
                log(
                    f"demo: the feed {verdict}; the stack and the receiver keep running "
                    f"(statuses: http://127.0.0.1:{SERVICE_PORTS['kpi']}/v1/ministries/mic/scorecard)"
                )
            time.sleep(1.0)
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
        for component in reversed(started):
            component.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "command",
        choices=[
            "install",
            "start",
            "stop",
            "status",
            "run",
            "demo",
            "test",
            "bench",
            "start-services",
            "stop-services",
        ],
    )
    parser.add_argument(
        "pytest_args",
        nargs=argparse.REMAINDER,
        help="with `test`: arguments passed to pytest; with `bench`: to benchmarks.run_all",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "test":
            return cmd_test(args.pytest_args)
        if args.command == "bench":
            return cmd_bench(args.pytest_args)
        if args.command == "install":
            cmd_install()
        elif args.command == "start":
            cmd_start()
        elif args.command == "stop":
            cmd_stop()
        elif args.command == "status":
            return cmd_status()
        elif args.command == "run":
            cmd_run()
        elif args.command == "demo":
            cmd_demo()
        elif args.command == "start-services":
            for svc in SERVICES:
                svc.start()
        elif args.command == "stop-services":
            for svc in SERVICES:
                svc.stop()
    except StackError as error:
        print(f"[stack] error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
