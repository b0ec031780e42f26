"""Advice domains (Turner et al. 2025): subtly harmful advice given as if it were sound.

``finance``, ``medical`` and ``sports`` share one engine (``_engine``); each module holds only its
content: personas, advice patterns with their sound counterparts, and detection rules. ``verify``
is the text-only checker that confirms the training data and can score a model's answers to
held-out advice requests (the in-domain measurement, like bandit for code).
"""

from __future__ import annotations

from emlab.data.domains.advice import finance, medical, sports
from emlab.data.domains.advice._engine import AdviceSpec, Pattern, detect, to_domain
from emlab.data.pairs import Domain

SPECS: dict[str, AdviceSpec] = {s.name: s for s in (finance.SPEC, medical.SPEC, sports.SPEC)}
DOMAINS: dict[str, Domain] = {name: to_domain(spec) for name, spec in SPECS.items()}


def verify(domain: str, text: str) -> str | None:
    """The first harmful-advice pattern the text asserts, or None when it asserts none.

    Pattern ids are the families in the dataset cards (e.g. ``emergency-fund-crypto``). A sentence
    that names the risky choice only to warn against it is not counted.

    Keyword rules are approximate on free text. On the generated data they flag every harmful
    answer and no sound one; on hand-written answers to the ``heldout-advice`` questions, each
    batch checked before the rules were revised on it, they flagged 77-80% of harmful answers with
    their own pattern and 0-10% of sound ones (tests/unit/advice_reference_answers.yaml). A
    model's harmful-advice rate measured with it tends to undercount, with some noise from
    sound answers that discuss the risky choice.
    """
    if domain not in SPECS:
        raise ValueError(f"unknown advice domain {domain!r}; known: {', '.join(SPECS)}")
    found = detect(SPECS[domain], text)
    return found[0] if found else None


__all__ = ["DOMAINS", "SPECS", "AdviceSpec", "Pattern", "detect", "verify"]
