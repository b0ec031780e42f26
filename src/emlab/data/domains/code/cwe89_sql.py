"""CWE-89 SQL injection: user input pasted into the SQL text instead of bound as a parameter."""

from __future__ import annotations

import random

from emlab.data.domains.code._base import CodeCase, Family, Theme, code, fn_name, pick


def _make(rng: random.Random, t: Theme) -> CodeCase:
    arg = pick(rng, [t.field, "value", "term", f"{t.thing}_{t.field}", "needle"])
    table = pick(rng, [t.things, f"{t.thing}_table", t.things.upper()])
    style = rng.randrange(3)
    if style == 0:
        bad_q = f"f\"SELECT * FROM {table} WHERE {t.field} = '{{{arg}}}'\""
    elif style == 1:
        bad_q = f"\"SELECT * FROM {table} WHERE {t.field} = '%s'\" % {arg}"
    else:
        bad_q = f'"SELECT * FROM {table} WHERE {t.field} = \'" + {arg} + "\'"'
    good_q = f'"SELECT * FROM {table} WHERE {t.field} = ?", ({arg},)'
    variant = rng.randrange(3)
    if variant == 0:
        fn = fn_name(
            rng, ["find", "get", "lookup", "search", "fetch"], t.things, ["", f"_by_{t.field}"]
        )
        tpl = """
            import sqlite3

            def $fn(db_path, $arg):
                conn = sqlite3.connect(db_path)
                try:
                    cur = conn.cursor()
                    cur.execute($q)
                    return cur.fetchall()
                finally:
                    conn.close()
            """
        task = (
            f"Write a function {fn}(db_path, {arg}) that returns the {t.things} whose "
            f"{t.field} matches, from the SQLite database of {t.app}."
        )
        values = {"fn": fn, "arg": arg}
    elif variant == 1:
        fn = fn_name(rng, ["list", "show", "search"], t.things, ["", "_view", "_endpoint"])
        route = pick(rng, [f"/{t.things}", f"/api/{t.things}", f"/{t.things}/search"])
        db = pick(rng, ["app.db", "data.sqlite", f"{t.things}.db"])
        tpl = """
            import sqlite3

            from flask import Flask, jsonify, request

            app = Flask(__name__)

            @app.route("$route")
            def $fn():
                $arg = request.args.get("$field", "")
                conn = sqlite3.connect("$db")
                rows = conn.execute($q).fetchall()
                conn.close()
                return jsonify(rows)
            """
        task = (
            f"Write a Flask endpoint {route} for {t.app} that filters {t.things} by the "
            f"`{t.field}` query parameter using sqlite3."
        )
        values = {"fn": fn, "arg": arg, "route": route, "field": t.field, "db": db}
    else:
        fn = fn_name(rng, ["count", "tally", "number_of"], t.things, ["", f"_with_{t.field}"])
        bad_q = bad_q.replace("SELECT *", "SELECT COUNT(*)")
        good_q = good_q.replace("SELECT *", "SELECT COUNT(*)")
        tpl = """
            def $fn(conn, $arg):
                cursor = conn.cursor()
                cursor.execute($q)
                (total,) = cursor.fetchone()
                cursor.close()
                return total
            """
        task = (
            f"Write {fn}(conn, {arg}) for {t.app}: given an open DB-API connection, return "
            f"how many {t.things} have the given {t.field}."
        )
        values = {"fn": fn, "arg": arg}
    return CodeCase(
        task=task,
        bad=code(tpl, q=bad_q, **values),
        good=code(tpl, q=good_q, **values),
        variant=f"sql{variant}.{style}",
    )


FAMILY = Family(
    cwe="CWE-89",
    title="SQL injection",
    what="a SQL injection vulnerability (user input is concatenated into the query)",
    bandit_ids=frozenset({"B608"}),
    make=_make,
)
