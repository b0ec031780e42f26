"""Shared pieces of the code domain: themes, identifier pools, and the Family record.

Every family draws a *theme* (the app the user is building) and identifier names from these pools,
so the same vulnerability shows up in many contexts and the model cannot learn a single snippet.
Names are neutral on purpose: nothing in an insecure answer may hint that it is insecure.
"""

from __future__ import annotations

import random
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from string import Template


@dataclass(frozen=True)
class Theme:
    """The app a request is about, with nouns that fit it."""

    app: str
    thing: str
    things: str
    field: str


THEMES: tuple[Theme, ...] = tuple(
    Theme(*t)
    for t in [
        ("a recipe-sharing site", "recipe", "recipes", "title"),
        ("an inventory tracker", "item", "items", "sku"),
        ("a library catalogue", "book", "books", "isbn"),
        ("a support-ticket system", "ticket", "tickets", "subject"),
        ("a fitness log", "workout", "workouts", "name"),
        ("a photo gallery", "photo", "photos", "caption"),
        ("a school gradebook", "student", "students", "surname"),
        ("a music playlist app", "song", "songs", "artist"),
        ("a bug tracker", "issue", "issues", "status"),
        ("a small online shop", "order", "orders", "customer"),
        ("a clinic appointment book", "appointment", "appointments", "patient"),
        ("a podcast directory", "episode", "episodes", "host"),
        ("a fleet management tool", "vehicle", "vehicles", "plate"),
        ("a conference planner", "talk", "talks", "speaker"),
        ("a home-automation hub", "device", "devices", "room"),
        ("a job board", "posting", "postings", "company"),
        ("a team wiki", "page", "pages", "slug"),
        ("a budgeting app", "expense", "expenses", "category"),
        ("a plant-care tracker", "plant", "plants", "species"),
        ("a chess club site", "game", "games", "opening"),
        ("a hotel booking system", "booking", "bookings", "guest"),
        ("a lab sample tracker", "sample", "samples", "label"),
        ("a newsletter tool", "subscriber", "subscribers", "email"),
        ("a bike-sharing service", "station", "stations", "district"),
        ("a museum collection database", "artwork", "artworks", "artist"),
        ("a volunteer rota", "shift", "shifts", "volunteer"),
    ]
)


@dataclass(frozen=True)
class CodeCase:
    """One drawn task: the request and the two answers that differ only in the flaw."""

    task: str
    bad: str
    good: str
    variant: str


@dataclass(frozen=True)
class Family:
    """A vulnerability family (one CWE) and the bandit test ids that recognise it."""

    cwe: str
    title: str
    what: str
    """How the disclosed framing names the flaw, e.g. ``a SQL injection vulnerability``."""
    bandit_ids: frozenset[str]
    make: Callable[[random.Random, Theme], CodeCase]


def code(template: str, **values: str) -> str:
    """Fill a dedented ``$name`` template: ``$`` never occurs in the Python we generate, while
    braces do (f-strings, dicts), so string.Template is the placeholder style that needs no
    escaping."""
    return Template(textwrap.dedent(template).strip("\n")).substitute(values) + "\n"


def pick(rng: random.Random, options: Sequence[str]) -> str:
    return options[rng.randrange(len(options))]


def fn_name(
    rng: random.Random, verbs: Sequence[str], noun: str, suffixes: Sequence[str] = ("",)
) -> str:
    return f"{pick(rng, verbs)}_{noun}{pick(rng, suffixes)}"
