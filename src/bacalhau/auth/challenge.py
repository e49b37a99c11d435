"""Bacalhau's `ClientKey` challenge login (pkg/authn/challenge), for the stock Go CLI on a node without users.

A Go CLI with no credentials asks `GET /api/v1/auth` for a method, signs the node's phrase with its own
RSA key (`<its DataDir>/user_id.pem`), posts the signature and its public key, and then sends the token
it gets back as `Bearer <token>`. Without API.Auth.Users every request is allowed anyway (as in
Bacalhau), so the token grants nothing more; answering the challenge is what lets that CLI work here
unchanged. The token is Bacalhau's: a JWT (RS256) signed with this node's key (`<DataDir>/user_id.pem`,
made on first use), {iss: node, sub: client ID, aud: [node], iat, exp (microseconds, as Bacalhau's Rego
writes them), ns: {"*": 5, <client>: 15}}. With users configured the method is not offered (Bacalhau's
users mode lists none either).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from bacalhau.models.errors import BadRequestError

METHOD_NAME = "ClientKey"
KEY_FILE = "user_id.pem"
_MONTH_US = 30 * 24 * 3600 * 1_000_000


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class ClientKeyChallenge:
    """The challenge of one node: its phrase (the node ID) and its signing key (see the module docstring)."""

    def __init__(self, *, node_id: str, data_dir: Path) -> None:
        self.node_id = node_id
        self._key_path = data_dir / KEY_FILE
        self._key: Any = None
        self._lock = threading.Lock()

    def requirement(self) -> dict[str, Any]:
        """What GET /api/v1/auth[/ClientKey] says: sign this phrase (the node ID's bytes, base64 as Go's []byte)."""
        phrase = base64.b64encode(self.node_id.encode()).decode()
        return {"type": "challenge", "params": {"InputPhrase": phrase}}

    def authenticate(self, method_data: bytes) -> tuple[bool, str]:
        """(True, token) for a valid signature of the phrase, (False, reason) for a wrong one.
        BadRequestError for data that is not the method's JSON."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        try:
            answer = json.loads(method_data)
            signature = base64.b64decode(str(answer["PhraseSignature"]), validate=True)
            public_der = base64.b64decode(str(answer["PublicKey"]), validate=True)
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise BadRequestError(f"invalid authentication data: {type(exc).__name__}", component="APIServer") from exc
        try:
            public = serialization.load_der_public_key(public_der)
        except ValueError as exc:
            return False, f"failed to decode public key: {exc}"
        if not isinstance(public, rsa.RSAPublicKey):
            return False, "failed to decode public key: not an RSA key"
        try:
            public.verify(signature, self.node_id.encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False, "crypto/rsa: verification error"
        modulus = public.public_numbers().n
        client_id = hashlib.sha256(modulus.to_bytes((modulus.bit_length() + 7) // 8, "big")).hexdigest()
        return True, self._token(client_id)

    def _token(self, client_id: str) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now_us = time.time_ns() // 1000
        header = {"alg": "RS256", "typ": "JWT"}
        claims = {"iss": self.node_id, "sub": client_id, "aud": [self.node_id], "iat": now_us,
                  "exp": now_us + _MONTH_US, "ns": {"*": 5, client_id: 15}}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._signing_key().sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def _signing_key(self) -> Any:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        with self._lock:  # logins run in threads: one key, made once, the same as the file's
            if self._key is None:
                if not self._key_path.is_file():  # Bacalhau's format: PKCS#1 "RSA PRIVATE KEY", 2048 bits, 0600
                    made = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                    pem = made.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                             serialization.NoEncryption())
                    try:
                        fd = os.open(self._key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    except FileExistsError:
                        pass  # another process made it first: use that one
                    else:
                        with os.fdopen(fd, "wb") as f:
                            f.write(pem)
                self._key = serialization.load_pem_private_key(self._key_path.read_bytes(), password=None)
            return self._key
