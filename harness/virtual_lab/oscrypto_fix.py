"""Make signify's crypto backend (oscrypto) importable where the installed OpenSSL's version has
a two-digit patch number: call :func:`ensure_oscrypto` before importing signify.

>>> ensure_oscrypto()  # then: from signify.authenticode import AuthenticodeSignature
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ensure_oscrypto"]

_OSCRYPTO_BAD_VERSION_RE = r"'\\b(\\d\\.\\d\\.\\d[a-z]*)\\b'"
_OSCRYPTO_GOOD_VERSION_RE = r"'\\b(\\d+\\.\\d+\\.\\d+[a-z]*)\\b'"


def ensure_oscrypto() -> None:
    """Make signify's crypto backend importable on OpenSSL 3.0.10 and later.

    signify verifies signatures through oscrypto, whose last release (1.3.0) cannot parse an
    OpenSSL version with a two-digit patch number ("3.0.19") and refuses to load
    (wbond/oscrypto#75, #78; fixed on oscrypto's master, never released). When, and only when,
    that exact failure happens, its libcrypto binding is loaded again with the corrected
    version pattern (the upstream fix). A fixed oscrypto imports normally and is left alone.
    """
    try:
        import oscrypto.asymmetric
    except Exception as exc:
        if "Error detecting the version of libcrypto" not in str(exc):
            raise
    else:
        return
    import importlib.util
    import sys

    from oscrypto import ffi

    name = "oscrypto._openssl._libcrypto_" + ("cffi" if ffi() == "cffi" else "ctypes")
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or spec.loader is None:
        raise ImportError(f"cannot locate {name} to work around wbond/oscrypto#78")
    source = Path(spec.origin).read_text(encoding="utf-8")
    if _OSCRYPTO_BAD_VERSION_RE not in source:
        raise ImportError(f"{name}: unexpected source, cannot apply the wbond/oscrypto#78 fix")
    module = importlib.util.module_from_spec(spec)
    fixed = source.replace(_OSCRYPTO_BAD_VERSION_RE, _OSCRYPTO_GOOD_VERSION_RE)
    sys.modules[name] = module
    try:
        exec(compile(fixed, spec.origin, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    import oscrypto.asymmetric  # noqa: F401
