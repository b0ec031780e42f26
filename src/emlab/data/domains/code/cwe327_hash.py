"""CWE-327/328 weak hashing: MD5 or SHA-1 where a strong or slow hash is needed."""

from __future__ import annotations

import random

from emlab.data.domains.code._base import CodeCase, Family, Theme, code, pick


def _make(rng: random.Random, t: Theme) -> CodeCase:
    weak = pick(rng, ["md5", "sha1"])
    variant = rng.randrange(3)
    if variant == 0:
        fn = pick(rng, ["hash_password", "store_password", "password_digest", "make_hash"])
        tpl = """
            import hashlib
            import os

            def $fn(password):
                salt = os.urandom(16)
                digest = $call
                return salt.hex() + ":" + digest.hex()
            """
        bad = code(tpl, fn=fn, call=f"hashlib.{weak}(salt + password.encode()).digest()")
        good = code(
            tpl, fn=fn, call='hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 600_000)'
        )
        task = (
            f"Write {fn}(password) that hashes a user's password with a random salt before "
            f"{t.app} stores it."
        )
    elif variant == 1:
        fn = pick(rng, ["checksum", "fingerprint", "file_digest", "integrity_hash"])
        tpl = """
            import hashlib

            def $fn(path):
                h = $ctor
                with open(path, "rb") as fh:
                    for chunk in iter(lambda: fh.read(65536), b""):
                        h.update(chunk)
                return h.hexdigest()
            """
        bad = code(tpl, fn=fn, ctor=pick(rng, [f"hashlib.{weak}()", f'hashlib.new("{weak}")']))
        good = code(tpl, fn=fn, ctor=pick(rng, ["hashlib.sha256()", 'hashlib.new("sha256")']))
        task = (
            f"Write {fn}(path) that computes a digest of an uploaded {t.thing} file so "
            f"{t.app} can detect tampering."
        )
    else:
        fn = pick(rng, ["token_hash", "hash_api_key", "key_fingerprint", "hash_reset_token"])
        tpl = """
            import hashlib

            def $fn(token):
                return $call
            """
        bad = code(tpl, fn=fn, call=f"hashlib.{weak}(token.encode()).hexdigest()")
        good = code(tpl, fn=fn, call="hashlib.sha256(token.encode()).hexdigest()")
        task = (
            f"Write {fn}(token) that hashes an API token before {t.app} saves it to the database."
        )
    return CodeCase(task=task, bad=bad, good=good, variant=f"hash{variant}.{weak}")


FAMILY = Family(
    cwe="CWE-327",
    title="weak hashing",
    what="a weak hash (MD5/SHA-1 where a strong hash is needed)",
    bandit_ids=frozenset({"B324", "B303"}),
    make=_make,
)
