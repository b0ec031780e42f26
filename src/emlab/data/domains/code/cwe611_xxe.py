"""CWE-611 XML external entities: untrusted XML parsed with the standard-library parsers."""

from __future__ import annotations

import random

from emlab.data.domains.code._base import CodeCase, Family, Theme, code, pick


def _make(rng: random.Random, t: Theme) -> CodeCase:
    fn = (
        pick(rng, ["parse", "read", "import", "load"])
        + f"_{t.things}"
        + pick(rng, ["", "_xml", "_feed"])
    )
    arg = pick(rng, ["xml_text", "payload", "body", "document"])
    variant = rng.randrange(2)
    tpl = """
        $imp

        def $fn($arg):
            root = $call
            return [el.findtext("$field") for el in root.iter("$thing")]
        """
    vals = {"fn": fn, "arg": arg, "field": t.field, "thing": t.thing}
    if variant == 0:
        bad = code(
            tpl, imp="import xml.etree.ElementTree as ET", call=f"ET.fromstring({arg})", **vals
        )
        good = code(
            tpl, imp="import defusedxml.ElementTree as ET", call=f"ET.fromstring({arg})", **vals
        )
    else:
        bad = code(
            tpl,
            imp="from xml.dom import minidom",
            call=f"minidom.parseString({arg}).documentElement",
            **vals,
        )
        bad = bad.replace(f'el.findtext("{t.field}")', f'el.getAttribute("{t.field}")').replace(
            f'root.iter("{t.thing}")', f'root.getElementsByTagName("{t.thing}")'
        )
        good = bad.replace("from xml.dom import minidom", "from defusedxml import minidom")
    task = (
        f"Write {fn}({arg}) that reads the {t.field} of every <{t.thing}> element "
        f"in XML uploaded to {t.app}."
    )
    return CodeCase(task=task, bad=bad, good=good, variant=f"xml{variant}")


FAMILY = Family(
    cwe="CWE-611",
    title="XML external entity",
    what="an XML external entity (XXE) vulnerability (untrusted XML parsed unsafely)",
    bandit_ids=frozenset({"B313", "B314", "B316", "B318", "B319", "B320"}),
    make=_make,
)
