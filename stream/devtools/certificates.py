"""A throwaway certificate authority for tests: a CA and one server certificate for 127.0.0.1
and localhost, made with openssl in a directory of the caller's, valid for two days."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stream.devtools.embedded import EmbeddedError


@dataclass(frozen=True)
class TestCA:
    """``ca_file``: the PEM that clients trust. ``cert_file``/``key_file``: the server's PEM pair.
    ``keystore``: the same pair (and the CA) as PKCS12 for a JVM, ``keystore_password``."""

    __test__ = False  # not a pytest test class

    ca_file: Path
    cert_file: Path
    key_file: Path
    keystore: Path
    keystore_password: str


def make_test_ca(directory: Path) -> TestCA:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise EmbeddedError("openssl is needed to make the test CA (apt-get install openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    keystore, password = directory / "server.p12", secrets.token_hex(12)

    def run(*args: str) -> None:
        done = subprocess.run([openssl, *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise EmbeddedError(f"openssl {args[0]} failed: {done.stderr}")

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
        "-days", "2", "-subj", "/CN=upsell-stream test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=localhost")  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    run("pkcs12", "-export", "-in", str(cert), "-inkey", str(key), "-certfile", str(ca),
        "-out", str(keystore), "-passout", f"pass:{password}", "-name", "server")  # fmt: skip
    return TestCA(ca, cert, key, keystore, password)
