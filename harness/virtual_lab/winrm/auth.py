"""Authentication for the virtual lab's WinRM listener: NTLM/Negotiate (pyspnego acceptor) and Basic.

NTLM is per TCP connection (one `ConnectionAuth` per accepted socket); Basic is checked on every
request. Decisions follow a default-configured Windows WinRM service: Basic and unencrypted
messages are refused over plain HTTP unless the endpoint allows unencrypted traffic.

pyspnego's NTLM acceptor reads credentials from the file named by the *process-wide* environment
variable `NTLM_USER_FILE` (lines `DOMAIN:user:password`). `register_ntlm_user` therefore keeps
ONE file per process: it reuses the file the variable already names, or creates
`$TMPDIR/harness-ntlm-users-<pid>.txt` (mode 0600) and points the variable at it, then appends the
user once; a file it created is removed when the process exits. Several endpoints in one
process thus share the file; a (domain, user) pair may only
have one password per process (a conflicting registration raises `ValueError`).

>>> register_ntlm_user("LAB", "tester", "s3cret")                   # doctest: +SKIP
>>> auth = ConnectionAuth(Credentials("LAB", "tester", "s3cret"))    # doctest: +SKIP
>>> auth.check(headers.get("Authorization"), https=False, allow_unencrypted=False)  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import base64
import binascii
import enum
import hmac
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import spnego
from spnego.channel_bindings import GssChannelBindings

NTLM_USER_FILE_ENV = "NTLM_USER_FILE"


@dataclass(frozen=True)
class Credentials:
    """The one account the endpoint accepts. `domain` may be empty."""

    domain: str
    username: str
    password: str = field(repr=False)

    @classmethod
    def parse(cls, username: str, password: str, default_domain: str = "") -> Credentials:
        """Accept `user`, `DOMAIN\\user`; refuse characters the user file cannot hold."""
        domain, _, user = username.rpartition("\\")
        creds = cls(domain or default_domain, user, password)
        for value in (creds.domain, creds.username, creds.password):
            if ":" in value or "\n" in value or "\r" in value:
                raise ValueError("NTLM credentials must not contain ':' or line breaks")
        return creds

    def matches_basic(self, user: str, password: str) -> bool:
        domain, _, name = user.rpartition("\\")
        same_user = name.lower() == self.username.lower() and domain.lower() in (
            "",
            self.domain.lower(),
        )
        return same_user and hmac.compare_digest(password.encode(), self.password.encode())


def register_ntlm_user(creds: Credentials) -> Path:
    """Make `creds` known to pyspnego's acceptor in this process; returns the user file."""
    current = os.environ.get(NTLM_USER_FILE_ENV)
    path = (
        Path(current)
        if current
        else Path(tempfile.gettempdir()) / f"harness-ntlm-users-{os.getpid()}.txt"
    )
    if not current:
        # The file holds the lab's (generated) passwords: it goes when the process ends.
        atexit.register(path.unlink, missing_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "r+", encoding="utf-8") as fh:
        fh.seek(0)
        known = [line.rstrip("\r\n").split(":", 2) for line in fh if line.count(":") >= 2]
        wanted = {(creds.domain, creds.username), ("", creds.username)}
        missing = []
        for dom, user in wanted:
            existing = [
                p for d, u, p in known if d.lower() == dom.lower() and u.lower() == user.lower()
            ]
            if existing and existing[0] != creds.password:
                raise ValueError(
                    f"NTLM user {dom}\\{user} is already registered in this process "
                    "with another password"
                )
            if not existing:
                missing.append(f"{dom}:{user}:{creds.password}\n")
        if missing:
            fh.write("".join(sorted(missing)))  # one write(2) with O_APPEND: atomic
    os.environ[NTLM_USER_FILE_ENV] = str(path)
    return path


def registered_ntlm_password(username: str, domain: str = "") -> str | None:
    """The password `domain\\username` is registered with in this process, or None.

    Lets a second lab in the same process (tests) reuse an account instead of clashing.
    """
    current = os.environ.get(NTLM_USER_FILE_ENV)
    if not current:
        return None
    try:
        lines = Path(current).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and (parts[0].lower(), parts[1].lower()) == (
            domain.lower(),
            username.lower(),
        ):
            return parts[2]
    return None


class Verdict(enum.Enum):
    """What the HTTP layer must do with a request after authentication."""

    ALLOW = "allow"
    CHALLENGE = "challenge"  # 401 with a Negotiate token: the handshake continues
    DENY = "deny"  # 401: no or wrong credentials
    BAD_REQUEST = "bad_request"  # 400: a scheme this listener refuses outright


@dataclass
class AuthResult:
    verdict: Verdict
    www_authenticate: list[str]
    user: str = ""


class ConnectionAuth:
    """Authentication state of one TCP connection."""

    def __init__(
        self,
        creds: Credentials,
        *,
        https: bool,
        allow_unencrypted: bool,
        channel_bindings: GssChannelBindings | None = None,
    ) -> None:
        self._creds = creds
        self._https = https
        self._allow_unencrypted = allow_unencrypted
        self._cbt = channel_bindings
        self._ctx: Any = None
        self.ntlm_complete = False
        self.user = ""

    @property
    def basic_allowed(self) -> bool:
        return self._https or self._allow_unencrypted

    def offers(self) -> list[str]:
        """The WWW-Authenticate values a 401 carries on this listener."""
        return ["Negotiate", 'Basic realm="WSMAN"'] if self.basic_allowed else ["Negotiate"]

    @property
    def context(self) -> Any:
        """The established NTLM context (for message sealing), or None."""
        return self._ctx if self.ntlm_complete else None

    def check(self, authorization: str | None) -> AuthResult:
        if not authorization:
            if self.ntlm_complete:
                return AuthResult(Verdict.ALLOW, [], self.user)
            return AuthResult(Verdict.DENY, self.offers())
        scheme, _, token = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            return self._basic(token.strip())
        if scheme in ("negotiate", "ntlm"):
            return self._negotiate(token.strip(), scheme)
        return AuthResult(Verdict.DENY, self.offers())

    def _basic(self, token: str) -> AuthResult:
        if not self.basic_allowed:
            # Like WinRM with AllowUnencrypted=false: Basic over HTTP is not offered at all.
            return AuthResult(Verdict.DENY, self.offers())
        try:
            user, _, password = (
                base64.b64decode(token, validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return AuthResult(Verdict.BAD_REQUEST, [])
        if self._creds.matches_basic(user, password):
            return AuthResult(Verdict.ALLOW, [], user)
        return AuthResult(Verdict.DENY, self.offers())

    def _negotiate(self, token: str, scheme: str) -> AuthResult:
        try:
            raw = base64.b64decode(token, validate=True)
        except binascii.Error:
            return AuthResult(Verdict.BAD_REQUEST, [])
        if self._ctx is None or self.ntlm_complete:
            # A new handshake on this connection (first one, or re-authentication).
            self.ntlm_complete = False
            self._ctx = spnego.server(protocol="negotiate", channel_bindings=self._cbt)
        try:
            out = self._ctx.step(raw)
        except Exception:  # pyspnego: bad password, unknown user, CBT mismatch, garbage
            self._ctx = None
            return AuthResult(Verdict.DENY, self.offers())
        header = "Negotiate" if scheme == "negotiate" else "NTLM"
        if not self._ctx.complete:
            return AuthResult(
                Verdict.CHALLENGE, [f"{header} {base64.b64encode(out or b'').decode()}"]
            )
        self.ntlm_complete = True
        self.user = str(getattr(self._ctx, "client_principal", "") or self._creds.username)
        final = [f"{header} {base64.b64encode(out).decode()}"] if out else []
        return AuthResult(Verdict.ALLOW, final, self.user)
