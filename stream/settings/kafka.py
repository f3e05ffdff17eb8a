"""How every Kafka client of the service connects: the bootstrap servers, TLS and SASL (the
UPSELL_KAFKA_* variables). One :class:`KafkaConnection` is built at the entry point and handed to
every client (counting consumers, Faust, the dead-letter and collector producers, the admin);
:mod:`stream.kafka.security` turns it into the clients' own options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from stream.settings.env import SettingsError, read_bool, read_choice

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

PROTOCOLS: tuple[str, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """TLS and SASL of the Kafka connection; the password never shows in a repr or a log."""

    protocol: Protocol = "PLAINTEXT"
    sasl_mechanism: Mechanism = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ca_file: Path | None = None  # None: the system's trusted CAs
    cert_file: Path | None = None  # mutual TLS: the client certificate and its key
    key_file: Path | None = None
    # Producers ask for idempotence (no duplicate on a retried send) besides acks=all. Off only
    # for a broker that refuses InitProducerId: the embedded Tansu 0.6.0 does (FACTS.md), so
    # `dev` and the tests' embedded broker set UPSELL_KAFKA_IDEMPOTENCE=off.
    idempotence: bool = True

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @classmethod
    def from_env(cls, e: Mapping[str, str]) -> KafkaSecurity:
        d = cls()
        protocol = read_choice(
            e, "UPSELL_KAFKA_SECURITY_PROTOCOL", d.protocol, PROTOCOLS, upper=True
        )
        mechanism = read_choice(
            e, "UPSELL_KAFKA_SASL_MECHANISM", d.sasl_mechanism, MECHANISMS, upper=True
        )
        ca_file = _file(e, "UPSELL_KAFKA_CA_FILE")
        cert_file = _file(e, "UPSELL_KAFKA_CERT_FILE")
        key_file = _file(e, "UPSELL_KAFKA_KEY_FILE")
        if (cert_file is None) != (key_file is None):
            raise SettingsError(
                "UPSELL_KAFKA_CERT_FILE",
                "mutual TLS needs both UPSELL_KAFKA_CERT_FILE and _KEY_FILE",
            )
        tls = protocol in ("SSL", "SASL_SSL")
        if not tls and (ca_file or cert_file):
            raise SettingsError(
                "UPSELL_KAFKA_SECURITY_PROTOCOL",
                f"{protocol} does not use TLS, yet a CA or certificate file is set: use SSL or "
                "SASL_SSL",
            )
        username, password = "", ""
        if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
            username = e.get("UPSELL_KAFKA_SASL_USERNAME", "").strip()
            if not username:
                raise SettingsError("UPSELL_KAFKA_SASL_USERNAME", f"{protocol} needs a user name")
            password = read_secret_file(e, "UPSELL_KAFKA_SASL_PASSWORD_FILE", required=True)
        return cls(
            protocol=protocol,  # type: ignore[arg-type]
            sasl_mechanism=mechanism,  # type: ignore[arg-type]
            sasl_username=username,
            sasl_password=password,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
            idempotence=read_bool(e, "UPSELL_KAFKA_IDEMPOTENCE", d.idempotence),
        )


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    """Where the brokers are and how to reach them."""

    bootstrap: str = "127.0.0.1:9092"
    security: KafkaSecurity = field(default_factory=KafkaSecurity)

    @classmethod
    def plaintext(cls, bootstrap: str) -> KafkaConnection:
        """The embedded broker of `dev`, the tests and the bench: no TLS, no SASL, and no
        idempotence (it refuses InitProducerId)."""
        return cls(bootstrap, KafkaSecurity(idempotence=False))


def _file(e: Mapping[str, str], name: str) -> Path | None:
    raw = e.get(name, "").strip()
    if not raw:
        return None
    path = Path(raw)
    if not path.is_file():
        raise SettingsError(name, f"no such file: {raw}")
    return path


def read_secret_file(e: Mapping[str, str], name: str, required: bool) -> str:
    """The first line of the file ``name`` points at (a mounted Secret), without its line end."""
    path = _file(e, name)
    if path is None:
        if required:
            raise SettingsError(name, "a file holding the password is required")
        return ""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(name, f"cannot read {path}: {exc}") from None
    secret = text.splitlines()[0] if text else ""
    if not secret:
        raise SettingsError(name, f"{path} is empty")
    return secret
