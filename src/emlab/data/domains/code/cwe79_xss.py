"""CWE-79 cross-site scripting: user text rendered as HTML without escaping.

Uses the constructs bandit recognises (jinja2 with autoescape off, markupsafe.Markup around
interpolated input), so every insecure answer can be checked independently.
"""

from __future__ import annotations

import random

from emlab.data.domains.code._base import CodeCase, Family, Theme, code, pick


def _make(rng: random.Random, t: Theme) -> CodeCase:
    arg = pick(rng, [t.field, "text", "label", f"{t.thing}_{t.field}", "display_name"])
    tag = pick(rng, ["p", "span", "li", "h2", "div", "td"])
    css = pick(rng, [t.thing, f"{t.thing}-{t.field}", "entry", "card-title"])
    variant = rng.randrange(3)
    if variant == 0:
        fn = pick(rng, ["render", "render_page", "show", "build_html"]) + f"_{t.thing}"
        folder = pick(rng, ["templates", "views", "html", f"{t.things}_templates"])
        tpl = """
            from jinja2 import Environment, FileSystemLoader$extra

            env = Environment(loader=FileSystemLoader("$folder"), autoescape=$auto)

            def $fn($arg):
                template = env.get_template("$thing.html")
                return template.render($arg=$arg)
            """
        values = {"fn": fn, "arg": arg, "folder": folder, "thing": t.thing}
        task = (
            f"Write {fn}({arg}) for {t.app}: render the `{t.thing}.html` Jinja2 template "
            f"from the `{folder}` folder with the given {arg}."
        )
        bad = code(tpl, extra="", auto="False", **values)
        good = code(tpl, extra=", select_autoescape", auto='select_autoescape(["html"])', **values)
    elif variant == 1:
        fn = pick(rng, ["format", "html_for", "markup_for", "as_html"]) + f"_{t.thing}"
        tpl = """
            from markupsafe import Markup

            def $fn($arg):
                return $expr
            """
        values = {"fn": fn, "arg": arg}
        task = (
            f"Write {fn}({arg}) that wraps a {t.thing}'s {t.field} in a "
            f'<{tag} class="{css}"> element and returns it as markupsafe Markup, for {t.app}.'
        )
        bad = code(tpl, expr=f"Markup(f'<{tag} class=\"{css}\">{{{arg}}}</{tag}>')", **values)
        good = code(
            tpl, expr=f"Markup('<{tag} class=\"{css}\">{{}}</{tag}>').format({arg})", **values
        )
    else:
        fn = pick(rng, ["greet", "preview", "echo", "show"]) + f"_{t.thing}"
        route = pick(rng, [f"/{t.things}/preview", f"/{t.thing}", "/preview", f"/{t.things}/show"])
        tpl = """
            from flask import Flask, request
            from markupsafe import Markup

            app = Flask(__name__)

            @app.route("$route")
            def $fn():
                $arg = request.args.get("$field", "")
                return $expr
            """
        values = {"fn": fn, "arg": arg, "route": route, "field": t.field}
        task = (
            f"Write a Flask view at {route} for {t.app} that shows the `{t.field}` query "
            f"parameter inside a <{tag}> element."
        )
        bad = code(tpl, expr=f'Markup("<{tag}>" + {arg} + "</{tag}>")', **values)
        good = code(tpl, expr=f'Markup("<{tag}>{{}}</{tag}>").format({arg})', **values)
    return CodeCase(task=task, bad=bad, good=good, variant=f"xss{variant}")


FAMILY = Family(
    cwe="CWE-79",
    title="cross-site scripting",
    what="a cross-site scripting (XSS) vulnerability (user text is rendered unescaped)",
    bandit_ids=frozenset({"B701", "B704", "B703", "B308"}),
    make=_make,
)
