"""Registry of narrow domains. Each module exposes ``DOMAIN``; add a module, add it here."""

from __future__ import annotations

from emlab.data.domains import advice, autonomy, code, numbers, privacy, reward_hacking
from emlab.data.pairs import Domain

DOMAINS: dict[str, Domain] = {
    d.name: d
    for d in (code.DOMAIN, privacy.DOMAIN, autonomy.DOMAIN, reward_hacking.DOMAIN, numbers.DOMAIN)
}
DOMAINS.update(advice.DOMAINS)  # finance, medical, sports: one engine, see domains/advice/
