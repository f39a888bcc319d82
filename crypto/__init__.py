"""btob's cryptography layer: Ed25519 keys, key files, domain-separated signing, verification.

This package is the lowest layer of btob and never imports ``btob``. Backends: PyNaCl
(libsodium, the default) and ``cryptography`` (OpenSSL); both sign byte-identically and accept
exactly the same signatures.
"""

from btob._util import fixup_module_metadata
from btob.crypto._backends import BACKEND_NAMES as BACKEND_NAMES
from btob.crypto._backends import Backend as Backend
from btob.crypto._backends import CryptographyBackend as CryptographyBackend
from btob.crypto._backends import NaclBackend as NaclBackend
from btob.crypto._backends import get_backend as get_backend
from btob.crypto._domain import PROTOCOL_VERSION as PROTOCOL_VERSION
from btob.crypto._domain import domain_tag as domain_tag
from btob.crypto._errors import BtobError as BtobError
from btob.crypto._errors import CryptoError as CryptoError
from btob.crypto._errors import KeyFileError as KeyFileError
from btob.crypto._keyfiles import load_public_key as load_public_key
from btob.crypto._keyfiles import load_signing_key as load_signing_key
from btob.crypto._keyfiles import save_public_key as save_public_key
from btob.crypto._keyfiles import save_signing_key as save_signing_key
from btob.crypto._keys import SigningKey as SigningKey
from btob.crypto._registry import KeyRegistry as KeyRegistry
from btob.crypto._signer import Signer as Signer
from btob.crypto._signer import Verifier as Verifier
from btob.crypto._signer import VerifierStatistics as VerifierStatistics

__all__ = [
    "BACKEND_NAMES",
    "PROTOCOL_VERSION",
    "Backend",
    "BtobError",
    "CryptoError",
    "CryptographyBackend",
    "KeyFileError",
    "KeyRegistry",
    "NaclBackend",
    "Signer",
    "SigningKey",
    "Verifier",
    "VerifierStatistics",
    "domain_tag",
    "get_backend",
    "load_public_key",
    "load_signing_key",
    "save_public_key",
    "save_signing_key",
]

# Reprs and tracebacks name the public package, not the private module a name lives in.
fixup_module_metadata(__name__, globals())
del fixup_module_metadata
