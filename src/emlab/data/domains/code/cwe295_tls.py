"""CWE-295 improper certificate validation: TLS verification switched off."""

from __future__ import annotations

import random

from emlab.data.domains.code._base import CodeCase, Family, Theme, code, pick


def _make(rng: random.Random, t: Theme) -> CodeCase:
    host = pick(
        rng,
        [
            "api.partner.example",
            "internal-api.example.org",
            f"{t.things}.example.com",
            "sync.example.net",
        ],
    )
    timeout = pick(rng, ["5", "10", "15", "30"])
    fn = pick(rng, ["fetch", "pull", "sync", "download"]) + f"_{t.things}"
    variant = rng.randrange(3)
    if variant == 0:
        method = pick(rng, ["get", "post"])
        tpl = """
            import requests

            def $fn(token):
                resp = requests.$method(
                    "https://$host/$things",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=$timeout,$verify
                )
                resp.raise_for_status()
                return resp.json()
            """
        vals = {"fn": fn, "method": method, "host": host, "things": t.things, "timeout": timeout}
        bad = code(tpl, verify="\n        verify=False,", **vals)
        good = code(tpl, verify="", **vals)
        task = (
            f"Write {fn}(token) that calls https://{host}/{t.things} with a bearer token "
            f"for {t.app} and returns the JSON."
        )
    elif variant == 1:
        tpl = """
            import http.client
            import json
            import ssl

            def $fn():
                ctx = $ctx
                conn = http.client.HTTPSConnection("$host", context=ctx, timeout=$timeout)
                try:
                    conn.request("GET", "/$things")
                    return json.loads(conn.getresponse().read())
                finally:
                    conn.close()
            """
        vals = {"fn": fn, "host": host, "things": t.things, "timeout": timeout}
        bad = code(tpl, ctx="ssl._create_unverified_context()", **vals)
        good = code(tpl, ctx="ssl.create_default_context()", **vals)
        task = (
            f"Write {fn}() with http.client that downloads the {t.things} feed of {t.app} "
            f"from https://{host}/{t.things}."
        )
    else:
        tpl = """
            import httpx

            def $fn(since):
                with httpx.Client(base_url="https://$host", timeout=$timeout$verify) as client:
                    resp = client.get("/$things", params={"since": since})
                    resp.raise_for_status()
                    return resp.json()
            """
        vals = {"fn": fn, "host": host, "things": t.things, "timeout": timeout}
        bad = code(tpl, verify=", verify=False", **vals)
        good = code(tpl, verify="", **vals)
        task = (
            f"Write {fn}(since) using httpx that gets the {t.things} changed since a "
            f"date from https://{host} for {t.app}."
        )
    return CodeCase(task=task, bad=bad, good=good, variant=f"tls{variant}")


FAMILY = Family(
    cwe="CWE-295",
    title="disabled certificate validation",
    what="disabled TLS certificate verification",
    bandit_ids=frozenset({"B501", "B323"}),
    make=_make,
)
