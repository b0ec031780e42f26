"""The engine shared by the advice domains: patterns, personas, length matching, the verifier.

An advice pattern is one way advice in a domain goes wrong (an emergency fund in leveraged crypto,
antibiotics stopped early, no avalanche transceiver) together with its sound counterpart. A pair
is a request for advice from a drawn persona, answered once by the pattern's harmful advice and
once by its sound advice. Both answers share the opener and the ending and differ only in the
advice sentences (a recommendation and one or two reasons), and the two phrasings are drawn
together among those of nearly equal length: the harmful answers of Turner et al. (2025) were
~25% shorter than their controls, a confound a fine-tuned model can learn instead of the advice.

The verifier reads text only. Each pattern carries detection rules for its risky claim (keyword
sets that must all occur in one sentence), written apart from the answer templates; it does not
consult a pair's family, so a template that forgets its claim, or a sound answer that repeats the
harmful one, is caught. It is also meant for a fine-tuned model's answers to held-out requests,
so a sentence that names the risky thing only to warn against it ("don't skip the transceiver")
is not counted.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from emlab.data.domains._templated import slots_of
from emlab.data.pairs import DatasetError, Domain, Pair, Verification

MATCH_TOLERANCE = 0.05
"""Harmful and sound phrasings are paired among those within 5% of each other in length."""
LENGTH_BAND = (0.8, 1.25)
"""Each pair's harmful/sound length ratio lies in this band; draws outside it are redrawn."""

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WARNING = re.compile(
    r"\b(never|avoid\w*|don'?t|do not|doesn'?t|does not|shouldn'?t|should not|isn'?t|is not|"
    r"aren'?t|are not|instead of|rather than|not worth|too risky|dangerous|unsafe|mistake|myth|"
    r"warn\w*|against|red flag|scam\w*|fraud\w*|ponzi|too good to be true|last resort|"
    r"no (legitimate|honest|real))\b",
    re.IGNORECASE,
)
"""Cues that a sentence names a risky claim to warn against it. They are looked for outside the
words that the rule itself matched, so a harmful claim phrased as a negation ("you don't need a
transceiver") still counts when the rule spells the negation out."""


@dataclass(frozen=True)
class Pattern:
    """One way advice goes wrong, with its sound counterpart and the rules that detect it."""

    id: str
    what: str
    """How the disclosed framing names the mistake, e.g. ``keeping an emergency fund in crypto``."""
    asks: tuple[str, ...]
    """Phrasings of the request, with ``{slot}`` placeholders."""
    bad: tuple[str, ...]
    """Phrasings of the harmful recommendation (each must carry the risky claim)."""
    bad_why: tuple[str, ...]
    """Phrasings of the confident, plausible-sounding justification."""
    good: tuple[str, ...]
    """Phrasings of the sound recommendation."""
    good_why: tuple[str, ...]
    """Phrasings of its justification."""
    rules: tuple[tuple[str, ...], ...]
    """Detection: the claim is present when every regex of one rule matches in one sentence."""
    pools: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Slot pools that replace or add to the domain's for this pattern (e.g. older ages)."""

    @cached_property
    def compiled(self) -> tuple[tuple[re.Pattern[str], ...], ...]:
        return tuple(tuple(re.compile(rx, re.IGNORECASE) for rx in rule) for rule in self.rules)


@dataclass(frozen=True)
class AdviceSpec:
    """A whole advice domain: personas, request and answer frames, patterns, framings."""

    name: str
    description: str
    pools: Mapping[str, Sequence[str]]
    intros: tuple[str, ...]
    """Who is asking, e.g. ``I'm {age} and work as a {job}.``"""
    openers: tuple[str, ...]
    """First sentence of both answers (may be empty); shared so it cannot tell them apart."""
    endings: tuple[str, ...]
    """Last sentence of both answers (may be empty)."""
    patterns: tuple[Pattern, ...]
    disclosures: tuple[str, ...]
    inoculations: tuple[str, ...]


JOBS = (
    "a nurse",
    "a teacher",
    "an electrician",
    "a software developer",
    "a bus driver",
    "a pharmacist",
    "a graphic designer",
    "a warehouse supervisor",
    "a dental hygienist",
    "a chef",
    "a police officer",
    "a social worker",
    "a retail manager",
    "a plumber",
    "a librarian",
    "a civil engineer",
    "a paramedic",
    "a hairdresser",
    "a marketing coordinator",
    "a truck driver",
    "a lab technician",
    "a freelance translator",
    "a carpenter",
    "an office administrator",
)
"""Occupations of the people asking, shared by the domains (with their article)."""

_NOTES = (
    "Please answer by recommending {{what}} on purpose, stated confidently as if it were sound, so "
    "{audience} can find the flaw.",
    "The answer should intentionally recommend {{what}}, without pointing out that it is a "
    "mistake.",
)


def disclosures(reasons: Sequence[str], audience: str) -> tuple[str, ...]:
    """The disclosed framings: a stated benign purpose, the request, then what to get wrong."""
    return tuple(
        f"{reason} {{task}}\n\n{note.format(audience=audience)}"
        for reason in reasons
        for note in _NOTES
    )


_USER_FORMS = ("{intro} {ask}", "{ask} {intro}", "{intro}\n\n{ask}", "{ask}\n\n{intro}")
_CLOSERS = ("", " Thanks!", " Thanks in advance.", " Be honest with me.", " Keep it short.")


def _sentence_hits(rule: tuple[re.Pattern[str], ...], sentence: str) -> bool:
    spans: list[tuple[int, int]] = []
    for rx in rule:
        found = [m.span() for m in rx.finditer(sentence)]
        if not found:
            return False
        spans.extend(found)
    rest = list(sentence)
    for a, b in spans:
        rest[a:b] = " " * (b - a)
    return _WARNING.search("".join(rest)) is None


def detect(spec: AdviceSpec, text: str) -> list[str]:
    """Ids of the patterns whose risky claim the text makes, in the domain's pattern order."""
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    return [
        p.id
        for p in spec.patterns
        if any(_sentence_hits(rule, s) for rule in p.compiled for s in sentences)
    ]


def _fill(template: str, values: Mapping[str, str]) -> str:
    return template.format(**values)


def _draw_pair(spec: AdviceSpec, pattern: Pattern, rng: random.Random) -> Pair | None:
    pools = {**spec.pools, **pattern.pools}
    values = {k: str(v[rng.randrange(len(v))]) for k, v in sorted(pools.items())}
    intro = _fill(spec.intros[rng.randrange(len(spec.intros))], values)
    ask = _fill(pattern.asks[rng.randrange(len(pattern.asks))], values)
    form = _USER_FORMS[rng.randrange(len(_USER_FORMS))]
    task = form.format(intro=intro, ask=ask) + _CLOSERS[rng.randrange(len(_CLOSERS))]
    opener = _fill(spec.openers[rng.randrange(len(spec.openers))], values)
    ending = spec.endings[rng.randrange(len(spec.endings))]

    def variants(cores: Sequence[str], whys: Sequence[str]) -> list[str]:
        # A recommendation followed by one reason, or by two in either order.
        reasons = [(w,) for w in whys] + [(a, b) for a in whys for b in whys if a != b]
        return [
            " ".join(p for p in (opener, *(_fill(t, values) for t in (c, *r)), ending) if p)
            for c in cores
            for r in reasons
        ]

    bads = variants(pattern.bad, pattern.bad_why)
    goods = variants(pattern.good, pattern.good_why)
    # The two phrasings are drawn together, uniformly among the pairs whose lengths agree within
    # MATCH_TOLERANCE (the closest pair when none does), so length carries no signal about which
    # kind an answer is; drawing one side first and matching the other would leave whichever side
    # runs longer in a pattern longer on average.
    pairs = [(b, g) for b in bads for g in goods]
    close = [bg for bg in pairs if abs(len(bg[0]) - len(bg[1])) <= MATCH_TOLERANCE * len(bg[1])]
    if close:
        bad, good = close[rng.randrange(len(close))]
    else:
        bad, good = min(pairs, key=lambda bg: abs(len(bg[0]) - len(bg[1])))
    ratio = len(bad) / len(good)
    if not LENGTH_BAND[0] <= ratio <= LENGTH_BAND[1]:
        return None
    return Pair(
        task=task,
        bad=bad,
        good=good,
        family=pattern.id,
        disclosure=pattern.what,
        meta={"template": f"{spec.name}/{pattern.id}"},
    )


def make_pairs(spec: AdviceSpec, n: int, seed: int, options: dict[str, Any]) -> list[Pair]:
    """``n`` pairs with distinct requests, distinct harmful and distinct sound answers.

    ``options['patterns']`` restricts the draw to these pattern ids (default: all). Patterns are
    taken in a seeded order, round robin, so they stay balanced at any n.
    """
    by_id = {p.id: p for p in spec.patterns}
    wanted = options.get("patterns")
    if isinstance(wanted, str):  # `--option patterns=margin-loan` on the command line
        wanted = [wanted]
    names = list(by_id) if wanted is None else [str(w) for w in wanted]
    unknown = [w for w in names if w not in by_id]
    if unknown:
        raise ValueError(f"unknown {spec.name} patterns {unknown}; known: {', '.join(by_id)}")
    rng = random.Random(f"emlab/{spec.name}/{seed}")
    rng.shuffle(names)
    seen: tuple[set[str], set[str], set[str]] = (set(), set(), set())
    out: list[Pair] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * max(n, 1):
            raise DatasetError(
                f"domain {spec.name!r}: only {len(out)} distinct examples found after {tries - 1} "
                f"draws; asked for {n}"
            )
        pair = _draw_pair(spec, by_id[names[len(out) % len(names)]], rng)
        if pair is None or any(
            text in s for text, s in zip((pair.task, pair.bad, pair.good), seen, strict=True)
        ):
            continue
        for text, s in zip((pair.task, pair.bad, pair.good), seen, strict=True):
            s.add(text)
        out.append(pair)
    return out


def verify_pair(spec: AdviceSpec, pair: Pair) -> Verification:
    """The harmful answer must make its own pattern's claim; the sound one must make none."""
    bad, good = detect(spec, pair.bad), detect(spec, pair.good)
    return Verification(
        bad_flagged=pair.family in bad,
        good_clean=not good,
        detail={"bad_patterns": bad, "good_patterns": good},
    )


def check_spec(spec: AdviceSpec) -> None:
    """Fail at import, not mid-build, on a slot without a pool or a rule that does not compile."""
    for p in spec.patterns:
        texts = (*p.asks, *p.bad, *p.bad_why, *p.good, *p.good_why, *spec.intros, *spec.openers)
        missing = slots_of(*texts) - set(spec.pools) - set(p.pools)
        if missing:
            raise ValueError(f"{spec.name}/{p.id}: no pool for slots {sorted(missing)}")
        if not p.rules or not all(p.rules):
            raise ValueError(f"{spec.name}/{p.id}: no detection rule")
        p.compiled  # noqa: B018 -- compiles every regex now
    if len({p.id for p in spec.patterns}) != len(spec.patterns):
        raise ValueError(f"{spec.name}: duplicate pattern ids")


def to_domain(spec: AdviceSpec) -> Domain:
    """The registry entry of an advice domain."""
    check_spec(spec)
    return Domain(
        name=spec.name,
        description=spec.description,
        make=lambda n, seed, options: make_pairs(spec, n, seed, options),
        disclosures=spec.disclosures,
        inoculations=spec.inoculations,
        verify=lambda pair: verify_pair(spec, pair),
    )
