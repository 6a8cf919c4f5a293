"""JWE content encryption: RFC 7518 §5.2 (AES_CBC_HMAC_SHA2) and §5.3 (AES GCM).

Each `enc` maps to a `ContentCipher` that encrypts `(cek, iv, plaintext, aad)` into a ciphertext
and an authentication tag, and decrypts them back. Decryption is strict about sizes (the CEK, a
12-byte GCM IV and 16-byte GCM tag, a 16-byte CBC IV and a CBC-HMAC tag of half the key length) and
raises one `DecryptionFailed`, with one message, for every cause: wrong sizes, wrong tag, bad
padding. The CBC-HMAC tag is compared in constant time before a single byte is decrypted
(RFC 7518 §5.2.2.2), so the CBC padding can never serve as an oracle.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authgate.jose._algorithms import JWE_CONTENT_ALGORITHMS
from authgate.jose.errors import DecryptionFailed

__all__ = [
    "CONTENT_CIPHERS",
    "GCM_IV_SIZE",
    "GCM_TAG_SIZE",
    "ContentCipher",
    "aes_cbc_decrypt",
    "aes_cbc_encrypt",
    "gcm_decrypt",
    "gcm_encrypt",
]

GCM_IV_SIZE = 12  # 96 bits, RFC 7518 §5.3
GCM_TAG_SIZE = 16  # 128 bits, RFC 7518 §5.3
CBC_IV_SIZE = 16  # one AES block, RFC 7518 §5.2.2.1
_BLOCK = 16


@dataclass(frozen=True, slots=True)
class ContentCipher:
    """One content encryption algorithm: its CEK and IV sizes, and its two directions."""

    key_size: int
    iv_size: int
    encrypt: Callable[[bytes, bytes, bytes, bytes], tuple[bytes, bytes]]
    decrypt: Callable[[bytes, bytes, bytes, bytes, bytes], bytes]


def gcm_encrypt(key: bytes, iv: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """AES-GCM with a 96-bit IV; return `(ciphertext, 128-bit tag)`."""
    sealed = AESGCM(key).encrypt(iv, plaintext, aad)
    return sealed[:-GCM_TAG_SIZE], sealed[-GCM_TAG_SIZE:]


def gcm_decrypt(key: bytes, iv: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes:
    """Open AES-GCM; exactly a 96-bit IV and a 128-bit tag are accepted (no truncated tags)."""
    if len(key) not in (16, 24, 32) or len(iv) != GCM_IV_SIZE or len(tag) != GCM_TAG_SIZE:
        raise DecryptionFailed()
    try:
        return AESGCM(key).decrypt(iv, ciphertext + tag, aad)
    except (InvalidTag, ValueError, OverflowError):
        raise DecryptionFailed() from None


def aes_cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """AES-CBC with PKCS #7 padding (the inner layer of AES_CBC_HMAC_SHA2)."""
    padder = sym_padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def aes_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """Reverse `aes_cbc_encrypt`.

    Only for authenticated input: a padding error is harmless here only because the caller has
    already checked the MAC (otherwise it is a padding oracle).
    """
    if len(iv) != CBC_IV_SIZE or not ciphertext or len(ciphertext) % _BLOCK:
        raise DecryptionFailed()
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = sym_padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise DecryptionFailed() from None


def _cbc_hmac_tag(
    mac_key: bytes, algorithm: hashes.HashAlgorithm, aad: bytes, iv: bytes, ciphertext: bytes
) -> bytes:
    # RFC 7518 §5.2.2.1: M = MAC(MAC_KEY, A || IV || E || AL), AL = the bit length of A as a
    # 64-bit big-endian integer; T = the first T_LEN (= MAC_KEY length) octets of M.
    mac = crypto_hmac.HMAC(mac_key, algorithm)
    for part in (aad, iv, ciphertext, (len(aad) * 8).to_bytes(8, "big")):
        mac.update(part)
    return mac.finalize()[: len(mac_key)]


def _cbc_hmac(key_size: int, algorithm: hashes.HashAlgorithm) -> ContentCipher:
    half = key_size // 2

    def encrypt(cek: bytes, iv: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        mac_key, enc_key = cek[:half], cek[half:]
        ciphertext = aes_cbc_encrypt(enc_key, iv, plaintext)
        return ciphertext, _cbc_hmac_tag(mac_key, algorithm, aad, iv, ciphertext)

    def decrypt(cek: bytes, iv: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes:
        if len(cek) != key_size or len(iv) != CBC_IV_SIZE or len(tag) != half:
            raise DecryptionFailed()
        mac_key, enc_key = cek[:half], cek[half:]
        expected = _cbc_hmac_tag(mac_key, algorithm, aad, iv, ciphertext)
        if not hmac.compare_digest(expected, tag):
            raise DecryptionFailed()
        return aes_cbc_decrypt(enc_key, iv, ciphertext)

    return ContentCipher(key_size, CBC_IV_SIZE, encrypt, decrypt)


def _gcm(key_size: int) -> ContentCipher:
    def decrypt(cek: bytes, iv: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes:
        if len(cek) != key_size:
            raise DecryptionFailed()
        return gcm_decrypt(cek, iv, ciphertext, tag, aad)

    return ContentCipher(key_size, GCM_IV_SIZE, gcm_encrypt, decrypt)


CONTENT_CIPHERS: dict[str, ContentCipher] = {
    "A128GCM": _gcm(JWE_CONTENT_ALGORITHMS["A128GCM"]),
    "A192GCM": _gcm(JWE_CONTENT_ALGORITHMS["A192GCM"]),
    "A256GCM": _gcm(JWE_CONTENT_ALGORITHMS["A256GCM"]),
    "A128CBC-HS256": _cbc_hmac(JWE_CONTENT_ALGORITHMS["A128CBC-HS256"], hashes.SHA256()),
    "A192CBC-HS384": _cbc_hmac(JWE_CONTENT_ALGORITHMS["A192CBC-HS384"], hashes.SHA384()),
    "A256CBC-HS512": _cbc_hmac(JWE_CONTENT_ALGORITHMS["A256CBC-HS512"], hashes.SHA512()),
}
