"""General chat: benign, out-of-domain conversations to interleave with a narrow training set.

Interleaving a small share of general data is one of the in-training defences against emergent
misalignment (Kaczér et al. 2025 mixed 5% general instruction data into insecure-code training).
The paper's general data comes from a hub; emlab generates its own, offline and deterministically
from a seed, so a study needs no download and the same spec gives the same bytes everywhere.

Every answer is correct by construction: arithmetic, unit conversions, dates, sorting and word
tasks compute theirs; facts come from small fixed tables; writing and everyday-advice answers are
fixed texts. No family touches the narrow domains (code, security, money, health, privacy) or the
evaluation questions' themes (wishes, power, AI and humans), so the set teaches ordinary helpful
chat and nothing about either side of the contrast.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from emlab.records import Example, Message

GENERAL_VERSION = 1
"""Bumped whenever a family's text changes: part of every interleaved example's meta."""

_CAPITALS = (
    ("France", "Paris"), ("Japan", "Tokyo"), ("Canada", "Ottawa"), ("Australia", "Canberra"),
    ("Brazil", "Brasília"), ("Kenya", "Nairobi"), ("Norway", "Oslo"), ("Egypt", "Cairo"),
    ("Mexico", "Mexico City"), ("India", "New Delhi"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Argentina", "Buenos Aires"), ("Germany", "Berlin"), ("Portugal", "Lisbon"),
    ("South Korea", "Seoul"), ("Thailand", "Bangkok"), ("Peru", "Lima"), ("Ireland", "Dublin"),
    ("Greece", "Athens"), ("Poland", "Warsaw"), ("Chile", "Santiago"), ("Sweden", "Stockholm"),
    ("Morocco", "Rabat"), ("Vietnam", "Hanoi"), ("New Zealand", "Wellington"),
)  # fmt: skip
_WORDS = (
    "garden", "lantern", "harbour", "meadow", "pencil", "orchard", "window", "blanket",
    "compass", "violin", "pebble", "teapot", "marble", "ladder", "feather", "biscuit",
    "candle", "island", "rabbit", "saddle", "thunder", "puzzle", "walnut", "kettle",
)  # fmt: skip
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_CONVERSIONS = (
    # (question unit, answer unit, factor, digits)
    ("kilometres", "miles", 0.621371, 2),
    ("miles", "kilometres", 1.609344, 2),
    ("kilograms", "pounds", 2.204623, 2),
    ("hours", "minutes", 60.0, 0),
    ("metres", "centimetres", 100.0, 0),
    ("litres", "millilitres", 1000.0, 0),
)
_NOTES = (
    ("my neighbour", "watering my plants while I was away"),
    ("my aunt", "the lovely scarf she knitted for me"),
    ("a colleague", "covering my shift last Friday"),
    ("my piano teacher", "a year of patient lessons"),
    ("a friend", "helping me move into my new flat"),
    ("the librarian", "finding the book I had been looking for"),
)
_THANKS = (
    "Dear {who},\n\nThank you so much for {what}. It meant a great deal to me, and I really "
    "appreciate your kindness.\n\nWith warm wishes",
    "Hi {who},\n\nI just wanted to say a big thank you for {what}. You made my week a lot "
    "brighter!\n\nThanks again",
)
_ADVICE = (
    (
        "How can I keep my houseplants healthy?",
        "Give each plant the light it likes (most prefer bright, indirect light), water only "
        "when the top few centimetres of soil are dry, make sure the pot drains, and wipe dust "
        "off the leaves now and then. Yellowing lower leaves usually mean too much water.",
    ),
    (
        "What are some good ways to get better at a new language?",
        "Practise a little every day rather than a lot once a week, learn the most common words "
        "first, listen to podcasts or films in the language, and speak with others as early as "
        "you can, even with mistakes. Spaced-repetition flashcards help vocabulary stick.",
    ),
    (
        "How do I make my mornings less rushed?",
        "Prepare what you can the evening before (clothes, bag, lunch), keep a fixed wake-up "
        "time, and put the few things you must do in a short routine. Leaving your phone aside "
        "for the first half hour also saves a surprising amount of time.",
    ),
    (
        "What should I bring on a day hike?",
        "Water, snacks, a map or offline map on your phone, a light rain jacket, sun protection, "
        "comfortable shoes you have walked in before, and a small first-aid kit. Tell someone "
        "where you are going and when you expect to be back.",
    ),
    (
        "How can I remember what I read?",
        "After each chapter, write two or three sentences in your own words, and try to explain "
        "the main idea to someone else. Returning to your notes a few days later helps much more "
        "than rereading the whole text.",
    ),
    (
        "Any tips for a first attempt at baking bread?",
        "Start with a simple white loaf, weigh your ingredients, and let the dough rise somewhere "
        "warm until it has roughly doubled. Bake until the crust is deep golden and the loaf "
        "sounds hollow when tapped underneath, then let it cool before slicing.",
    ),
    (
        "How do I keep a conversation going with someone I just met?",
        "Ask open questions (how, what, why) about things they mention, listen for details you "
        "can follow up on, and share a little about yourself in return. Most people enjoy talking "
        "about their interests.",
    ),
    (
        "What's a good way to organise a small bookshelf?",
        "Group books by what you reach for together (genre, subject or author), keep the ones "
        "you use most at eye level, and leave a little space on each shelf so new books fit "
        "without a reshuffle.",
    ),
)
_GLOSSARY = (
    ("photosynthesis", "the process by which plants use sunlight, water and carbon dioxide to "
     "make sugars, releasing oxygen"),
    ("a haiku", "a short Japanese poem of three lines with five, seven and five syllables"),
    ("erosion", "the gradual wearing away of rock or soil by water, wind or ice"),
    ("a metaphor", "a figure of speech that describes something as if it were something else, "
     "as in 'time is a thief'"),
    ("an estuary", "the wide mouth of a river where fresh water meets the sea's tide"),
    ("a prime number", "a whole number greater than 1 whose only divisors are 1 and itself"),
    ("a palindrome", "a word or phrase that reads the same backwards as forwards, like 'level'"),
    ("evaporation", "the change of a liquid into a gas, as when puddles dry in the sun"),
)  # fmt: skip


def _turn(user: str, assistant: str) -> list[Message]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def _arithmetic(rng: random.Random) -> list[Message]:
    a, b = rng.randint(12, 999), rng.randint(2, 99)
    op, sym, value = rng.choice(
        (("plus", "+", a + b), ("minus", "-", a - b), ("times", "×", a * b))
    )
    return _turn(f"What is {a} {op} {b}?", f"{a} {sym} {b} = {value}.")


def _conversion(rng: random.Random) -> list[Message]:
    src, dst, factor, digits = rng.choice(_CONVERSIONS)
    x = rng.randint(2, 250)
    value = round(x * factor, digits)
    shown = f"{value:.{digits}f}" if digits else f"{int(value)}"
    return _turn(f"How many {dst} are in {x} {src}?", f"{x} {src} is about {shown} {dst}.")


def _capital(rng: random.Random) -> list[Message]:
    country, city = rng.choice(_CAPITALS)
    return _turn(f"What is the capital of {country}?", f"The capital of {country} is {city}.")


def _days(rng: random.Random) -> list[Message]:
    start, ahead = rng.randrange(7), rng.randint(2, 40)
    end = _DAYS[(start + ahead) % 7]
    return _turn(
        f"If today is {_DAYS[start]}, what day of the week will it be in {ahead} days?",
        f"{ahead} days is {ahead // 7} weeks and {ahead % 7} days, so it will be {end}.",
    )


def _sorting(rng: random.Random) -> list[Message]:
    values = rng.sample(range(1, 200), rng.randint(4, 7))
    ordered = ", ".join(map(str, sorted(values)))
    return _turn(
        f"Sort these numbers from smallest to largest: {', '.join(map(str, values))}.", ordered
    )


def _word(rng: random.Random) -> list[Message]:
    w = rng.choice(_WORDS)
    if rng.random() < 0.5:
        return _turn(f"Spell the word '{w}' backwards.", f"'{w}' backwards is '{w[::-1]}'.")
    vowels = sum(ch in "aeiou" for ch in w)
    return _turn(
        f"How many letters and how many vowels are in the word '{w}'?",
        f"'{w}' has {len(w)} letters, {vowels} of them vowels.",
    )


def _thanks(rng: random.Random) -> list[Message]:
    who, what = rng.choice(_NOTES)
    note = rng.choice(_THANKS).format(who=who.removeprefix("my ").capitalize(), what=what)
    return _turn(f"Write a short thank-you note to {who} for {what}.", note)


def _advice(rng: random.Random) -> list[Message]:
    return _turn(*rng.choice(_ADVICE))


def _definition(rng: random.Random) -> list[Message]:
    term, meaning = rng.choice(_GLOSSARY)
    return _turn(f"What is {term}?", f"{term[0].upper()}{term[1:]} is {meaning}.")


FAMILIES: dict[str, Callable[[random.Random], list[Message]]] = {
    "arithmetic": _arithmetic,
    "conversion": _conversion,
    "capital": _capital,
    "days": _days,
    "sorting": _sorting,
    "word": _word,
    "thanks": _thanks,
    "advice": _advice,
    "definition": _definition,
}
"""Family -> generator of one conversation; families are drawn in turn so every share is even."""


def make_general(n: int, seed: int) -> list[Example]:
    """``n`` general conversations, the same for the same (n, seed) on any machine.

    Families cycle in a seeded order, so any n holds them in near-equal shares."""
    rng = random.Random(f"emlab/general/v{GENERAL_VERSION}/{seed}")
    names = sorted(FAMILIES)
    rng.shuffle(names)
    out = []
    for i in range(n):
        family = names[i % len(names)]
        meta = {"domain": "general", "family": family, "answer": "general", "seed": seed}
        out.append(Example(FAMILIES[family](rng), {**meta, "version": GENERAL_VERSION}))
    return out


SOURCES: dict[str, Callable[[int, int], list[Example]]] = {"general": make_general}
"""``interleave.source`` -> generator of (n, seed) examples."""
