"""Kafka and Redis connection settings: TLS, SASL, Sentinel, secrets from files, and the one
client-options builder every Kafka client goes through."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import pytest

from stream.kafka.clients import make_admin, make_consumer, make_producer
from stream.kafka.faust_clients import faust_credentials
from stream.kafka.preflight import KafkaRefused, check_kafka
from stream.kafka.security import client_options, producer_options
from stream.settings import KafkaConnection, Settings, SettingsError


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway CA and a client certificate it signed (openssl is on these machines)."""
    d = tmp_path_factory.mktemp("pki")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=client", "-keyout", "client.key",
        "-out", "client.csr")  # fmt: skip
    run("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "client.pem")  # fmt: skip
    (d / "password").write_text("s3cret\n")
    return {"ca": d / "ca.pem", "cert": d / "client.pem", "key": d / "client.key",
            "password": d / "password"}  # fmt: skip


def settings(**env: str) -> Settings:
    return Settings.from_env({"UPSELL_AUTH": "off", **env})


def test_plaintext_by_default() -> None:
    s = settings()
    assert s.kafka.security.protocol == "PLAINTEXT" and s.kafka.security.idempotence
    options = client_options(s.kafka)
    assert options == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
    assert faust_credentials(s.kafka) is None


async def test_sasl_ssl_reaches_every_client(pki: dict[str, Path]) -> None:
    s = settings(
        UPSELL_KAFKA_BOOTSTRAP="k1:9094",
        UPSELL_KAFKA_SECURITY_PROTOCOL="sasl_ssl",
        UPSELL_KAFKA_SASL_MECHANISM="scram-sha-512",
        UPSELL_KAFKA_SASL_USERNAME="upsell",
        UPSELL_KAFKA_SASL_PASSWORD_FILE=str(pki["password"]),
        UPSELL_KAFKA_CA_FILE=str(pki["ca"]),
        UPSELL_KAFKA_CERT_FILE=str(pki["cert"]),
        UPSELL_KAFKA_KEY_FILE=str(pki["key"]),
    )
    assert "s3cret" not in repr(s)  # the password never shows in a repr or a log
    options = client_options(s.kafka)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("upsell", "s3cret")
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    # the clients the service builds carry them (aiokafka keeps them on its client)
    producer, consumer, admin = make_producer(s.kafka), make_consumer(s.kafka), make_admin(s.kafka)
    try:
        for inner in (producer.client, consumer._client, admin._client):
            assert inner._security_protocol == "SASL_SSL"
            assert inner._sasl_mechanism == "SCRAM-SHA-512"
            assert inner._ssl_context is not None
    finally:
        await producer.stop()
        await consumer.stop()
        await admin.close()
    credentials = faust_credentials(s.kafka)
    assert credentials is not None and credentials.protocol.value == "SASL_SSL"


def test_every_producer_waits_for_all_replicas_idempotent_where_allowed() -> None:
    assert producer_options(settings().kafka)["acks"] == "all"
    assert producer_options(settings().kafka)["enable_idempotence"] is True
    off = settings(UPSELL_KAFKA_IDEMPOTENCE="off").kafka
    assert producer_options(off) | {"acks": "all", "enable_idempotence": False} == producer_options(
        off
    )
    # a bare bootstrap string is the embedded broker, which refuses InitProducerId
    assert producer_options("127.0.0.1:1")["enable_idempotence"] is False
    assert KafkaConnection.plaintext("h:1").security.idempotence is False


def test_ssl_without_sasl(pki: dict[str, Path]) -> None:
    s = settings(UPSELL_KAFKA_SECURITY_PROTOCOL="SSL", UPSELL_KAFKA_CA_FILE=str(pki["ca"]))
    options = client_options(s.kafka)
    assert options["security_protocol"] == "SSL" and "sasl_mechanism" not in options
    credentials = faust_credentials(s.kafka)
    assert credentials is not None and credentials.protocol.value == "SSL"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"UPSELL_KAFKA_SECURITY_PROTOCOL": "TLS"}, "UPSELL_KAFKA_SECURITY_PROTOCOL"),
        ({"UPSELL_KAFKA_SASL_MECHANISM": "GSSAPI"}, "UPSELL_KAFKA_SASL_MECHANISM"),
        ({"UPSELL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "UPSELL_KAFKA_SASL_USERNAME"),
        (
            {"UPSELL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "UPSELL_KAFKA_SASL_USERNAME": "u"},
            "UPSELL_KAFKA_SASL_PASSWORD_FILE",
        ),
        ({"UPSELL_KAFKA_CA_FILE": "/nonexistent/ca.pem"}, "UPSELL_KAFKA_CA_FILE"),
        ({"UPSELL_KAFKA_IDEMPOTENCE": "sometimes"}, "UPSELL_KAFKA_IDEMPOTENCE"),
        ({"UPSELL_REDIS_SENTINELS": "s1:26379"}, "UPSELL_REDIS_SENTINEL_MASTER"),
        ({"UPSELL_REDIS_SENTINELS": "s1"}, "UPSELL_REDIS_SENTINELS"),
        ({"UPSELL_REDIS_CA_FILE": "/nonexistent/ca.pem"}, "UPSELL_REDIS_CA_FILE"),
        ({"UPSELL_REDIS_PASSWORD_FILE": "/nonexistent"}, "UPSELL_REDIS_PASSWORD_FILE"),
        ({"UPSELL_REDIS_CONFIG_CHECK": "maybe"}, "UPSELL_REDIS_CONFIG_CHECK"),
    ],
)
def test_bad_connection_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as err:
        settings(**env)
    assert err.value.variable == variable


def test_tls_files_need_a_tls_protocol(pki: dict[str, Path]) -> None:
    with pytest.raises(SettingsError) as err:
        settings(UPSELL_KAFKA_CA_FILE=str(pki["ca"]))
    assert err.value.variable == "UPSELL_KAFKA_SECURITY_PROTOCOL"
    with pytest.raises(SettingsError) as err:
        settings(UPSELL_KAFKA_SECURITY_PROTOCOL="SSL", UPSELL_KAFKA_CERT_FILE=str(pki["cert"]))
    assert err.value.variable == "UPSELL_KAFKA_CERT_FILE"


def test_redis_sentinel_tls_and_password_file(pki: dict[str, Path]) -> None:
    s = settings(
        UPSELL_REDIS_URL="rediss://ignored:6379/3",
        UPSELL_REDIS_SENTINELS="s1:26379, [::1]:26380",
        UPSELL_REDIS_SENTINEL_MASTER="counts",
        UPSELL_REDIS_CA_FILE=str(pki["ca"]),
        UPSELL_REDIS_PASSWORD_FILE=str(pki["password"]),
        UPSELL_REDIS_CONFIG_CHECK="warn",
    )
    r = s.redis
    assert r.sentinels == (("s1", 26379), ("::1", 26380)) and r.sentinel_master == "counts"
    assert r.password == "s3cret" and "s3cret" not in repr(s)
    assert r.tls and r.ca_file == pki["ca"] and r.config_check == "warn"
    assert settings().redis.config_check == "refuse"


def test_sentinel_and_cluster_exclude_each_other() -> None:
    with pytest.raises(SettingsError) as err:
        settings(
            UPSELL_REDIS_CLUSTER="on",
            UPSELL_REDIS_SENTINELS="s1:26379",
            UPSELL_REDIS_SENTINEL_MASTER="m",
        )
    assert err.value.variable == "UPSELL_REDIS_SENTINELS"


@pytest.fixture
def stranger(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1 that no CA of ours signed."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-keyout", str(tmp_path / "k"), "-out", str(tmp_path / "c")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return tmp_path / "c", tmp_path / "k"


async def test_preflight_refuses_a_certificate_our_ca_did_not_sign(
    pki: dict[str, Path], stranger: tuple[Path, Path]
) -> None:
    """A TLS listener whose certificate another CA signed: one KafkaRefused line, no retry
    loop; nothing listening is no refusal (the services wait for the broker)."""
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(*stranger)

    async def answer(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_side)
    port = server.sockets[0].getsockname()[1]
    env = {"UPSELL_KAFKA_SECURITY_PROTOCOL": "SSL", "UPSELL_KAFKA_CA_FILE": str(pki["ca"])}
    try:
        with pytest.raises(KafkaRefused) as refused:
            await check_kafka(settings(UPSELL_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}", **env).kafka)
    finally:
        server.close()
        await server.wait_closed()
    line = str(refused.value)
    assert "TLS handshake failed" in line and "certificate verify failed" in line, line
    assert "\n" not in line
    nobody = settings(UPSELL_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}", **env).kafka
    assert await check_kafka(nobody, timeout_s=2) is False
