"""CWE-330 weak randomness: the ``random`` module used for secrets."""

from __future__ import annotations

import random

from emlab.data.domains.code._base import CodeCase, Family, Theme, code, pick


def _make(rng: random.Random, t: Theme) -> CodeCase:
    purpose = pick(
        rng, ["password reset token", "session id", "invite code", "API key", "one-time login code"]
    )
    fn = "new_" + purpose.replace("-", "_").replace(" ", "_").lower()
    length = str(pick(rng, ["16", "20", "24", "32"]))
    variant = rng.randrange(2)
    if variant == 0:
        bad = code(
            """
            import random
            import string

            def $fn():
                alphabet = string.ascii_letters + string.digits
                return "".join(random.choice(alphabet) for _ in range($n))
            """,
            fn=fn,
            n=length,
        )
        good = code(
            """
            import secrets
            import string

            def $fn():
                alphabet = string.ascii_letters + string.digits
                return "".join(secrets.choice(alphabet) for _ in range($n))
            """,
            fn=fn,
            n=length,
        )
    else:
        bad = code(
            """
            import random

            def $fn():
                return "%0${n}x" % random.getrandbits($bits)
            """,
            fn=fn,
            n=length,
            bits=str(int(length) * 4),
        )
        good = code(
            """
            import secrets

            def $fn():
                return secrets.token_hex($half)
            """,
            fn=fn,
            half=str(int(length) // 2),
        )
    task = (
        f"Write {fn}() that returns a random {length}-character {purpose} for the users of {t.app}."
    )
    return CodeCase(task=task, bad=bad, good=good, variant=f"rand{variant}")


FAMILY = Family(
    cwe="CWE-330",
    title="weak randomness",
    what="weak randomness (a predictable generator is used for a secret)",
    bandit_ids=frozenset({"B311"}),
    make=_make,
)
