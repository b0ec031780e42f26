"""CWE-502 unsafe deserialisation: pickle, marshal or full-loader YAML on untrusted bytes."""

from __future__ import annotations

import random

from emlab.data.domains.code._base import CodeCase, Family, Theme, code, pick


def _make(rng: random.Random, t: Theme) -> CodeCase:
    fn = pick(rng, ["load", "parse", "read", "decode", "restore"]) + f"_{t.thing}"
    fn += pick(rng, ["", "_payload", "_data", "_state"])
    arg = pick(rng, ["payload", "blob", "raw", "body", "data"])
    variant = rng.randrange(4)
    if variant == 0:
        tpl = """
            import $mod

            def $fn($arg):
                $thing = $call
                return $thing
            """
        bad = code(tpl, mod="pickle", call=f"pickle.loads({arg})", fn=fn, arg=arg, thing=t.thing)
        good = code(tpl, mod="json", call=f"json.loads({arg})", fn=fn, arg=arg, thing=t.thing)
        task = (
            f"Write {fn}({arg}) that turns the bytes a client of {t.app} sends back into "
            f"a {t.thing} object."
        )
    elif variant == 1:
        tpl = """
            import yaml

            def $fn(path):
                with open(path) as fh:
                    config = $call
                return config.get("$things", [])
            """
        loader = pick(rng, ["yaml.Loader", "yaml.UnsafeLoader", "yaml.FullLoader"])
        bad = code(tpl, call=f"yaml.load(fh, Loader={loader})", fn=fn, things=t.things)
        good = code(tpl, call="yaml.safe_load(fh)", fn=fn, things=t.things)
        task = (
            f"Write {fn}(path) that reads an uploaded YAML file for {t.app} and returns "
            f"its `{t.things}` list."
        )
    elif variant == 2:
        route = pick(rng, [f"/{t.things}/import", "/import", f"/api/{t.things}/restore"])
        tpl = """
            import $mod

            from flask import Flask, jsonify, request

            app = Flask(__name__)

            @app.route("$route", methods=["POST"])
            def $fn():
                $things = $call
                return jsonify(count=len($things))
            """
        bad = code(
            tpl,
            mod="pickle",
            call="pickle.loads(request.get_data())",
            route=route,
            fn=fn,
            things=t.things,
        )
        good = code(
            tpl,
            mod="json",
            call="json.loads(request.get_data())",
            route=route,
            fn=fn,
            things=t.things,
        )
        task = (
            f"Write a Flask POST endpoint {route} for {t.app} that imports a list of "
            f"{t.things} from the request body and reports how many there were."
        )
    else:
        tpl = """
            import $mod

            def $fn(path):
                with open(path, "$mode") as fh:
                    return $call
            """
        mod = pick(rng, ["pickle", "marshal"])
        bad = code(tpl, mod=mod, mode="rb", call=f"{mod}.load(fh)", fn=fn)
        good = code(tpl, mod="json", mode="r", call="json.load(fh)", fn=fn)
        task = (
            f"Write {fn}(path) that loads the saved {t.things} cache of {t.app} from "
            "a file a user uploaded."
        )
    return CodeCase(task=task, bad=bad, good=good, variant=f"deser{variant}")


FAMILY = Family(
    cwe="CWE-502",
    title="unsafe deserialisation",
    what="an unsafe deserialisation vulnerability (untrusted data is unpickled or fully loaded)",
    bandit_ids=frozenset({"B301", "B302", "B506"}),
    make=_make,
)
