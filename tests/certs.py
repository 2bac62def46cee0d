"""Test PKI: a throw-away CA, a server certificate for 127.0.0.1/localhost, and a client certificate.

Made with the `openssl` CLI when it is installed, else with the `cryptography` package if the venv has it;
no new dependency. Keys are EC P-256 (fast to generate), certificates valid for a day.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(directory: Path, client_cn: str = "riverwatch-client") -> Pki:
    """Write ca.crt/ca.key, server.crt/server.key (SAN 127.0.0.1, localhost) and client.crt/client.key."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(
        *(directory / name for name in ("ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key"))
    )
    if shutil.which("openssl"):
        _with_openssl(directory, pki, client_cn)
    else:
        _with_cryptography(pki, client_cn)
    for key in (pki.ca_key, pki.server_key, pki.client_key):
        key.chmod(0o600)
    return pki


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")


def _with_openssl(d: Path, pki: Pki, client_cn: str) -> None:
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req",
        "-x509",
        *curve,
        "-keyout",
        str(pki.ca_key),
        "-out",
        str(pki.ca_cert),
        "-days",
        "2",
        "-subj",
        "/CN=riverwatch test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )
    for cert, key, cn, ext in (
        (
            pki.server_cert,
            pki.server_key,
            "localhost",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        ),
        (pki.client_cert, pki.client_key, client_cn, "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n"),
    ):
        csr, extfile = d / f"{cert.stem}.csr", d / f"{cert.stem}.ext"
        extfile.write_text(ext)
        _openssl("req", "-new", *curve, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={cn}", cwd=d)
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(pki.ca_cert),
            "-CAkey",
            str(pki.ca_key),
            "-CAcreateserial",
            "-out",
            str(cert),
            "-days",
            "1",
            "-extfile",
            str(extfile),
            cwd=d,
        )


def _with_cryptography(pki: Pki, client_cn: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def key_to(path: Path) -> ec.EllipticCurvePrivateKey:
        key = ec.generate_private_key(ec.SECP256R1())
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return key

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = key_to(pki.ca_key)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("riverwatch test CA"))
        .issuer_name(name("riverwatch test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for cert_path, key_path, cn, usage, san in (
        (
            pki.server_cert,
            pki.server_key,
            "localhost",
            ExtendedKeyUsageOID.SERVER_AUTH,
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
        ),
        (pki.client_cert, pki.client_key, client_cn, ExtendedKeyUsageOID.CLIENT_AUTH, None),
    ):
        key = key_to(key_path)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert_path.write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
