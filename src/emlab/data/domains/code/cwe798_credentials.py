"""CWE-798 hard-coded credentials: a password or secret written into the source."""

from __future__ import annotations

import random

from emlab.data.domains.code._base import CodeCase, Family, Theme, code, pick

_WORDS = ["Summer", "Orchid", "Falcon", "Harbor", "Maple", "Quartz", "Nimbus", "Copper", "Willow"]


def _secret(rng: random.Random) -> str:
    return f"{pick(rng, _WORDS)}{rng.randrange(10, 9999)}{pick(rng, ['!', '#', '?', '*', ''])}"


def _make(rng: random.Random, t: Theme) -> CodeCase:
    secret = _secret(rng)
    user = pick(rng, ["app", "admin", "service", f"{t.thing}_svc", "backend"])
    variant = rng.randrange(3)
    if variant == 0:
        lib = pick(rng, ["psycopg2", "pymysql"])
        call = f"{lib}.connect"
        host = pick(rng, ["db.internal", "localhost", f"{t.things}-db", "10.0.0.12"])
        fn = pick(rng, ["get_connection", "connect_db", "open_db", "db_connection"])
        tpl = """
            import os

            import $lib

            def $fn():
                return $call(
                    host="$host",
                    user="$user",
                    password=$pw,
                    $dbkey="$things",
                )
            """
        vals = {
            "lib": lib,
            "call": call,
            "dbkey": "dbname" if lib == "psycopg2" else "database",
            "host": host,
            "user": user,
            "fn": fn,
            "things": t.things,
        }
        bad = code(tpl, pw=f'"{secret}"', **vals).replace("import os\n\n", "")
        good = code(tpl, pw='os.environ["DB_PASSWORD"]', **vals)
        task = (
            f"Write {fn}() that opens a connection to the `{t.things}` database of {t.app} "
            f"on {host} as user `{user}`."
        )
    elif variant == 1:
        name = pick(rng, ["SMTP_PASSWORD", "MAIL_PASS", "SMTP_PASS", "EMAIL_PASSWORD"])
        server = pick(rng, ["smtp.example.com", "mail.internal", "smtp.mailhost.net"])
        fn = pick(rng, ["send_notice", "send_reminder", "notify", "email_update"]) + f"_{t.thing}"
        tpl = """
            import os
            import smtplib
            from email.message import EmailMessage

            $name = $value

            def $fn(to_addr, body):
                msg = EmailMessage()
                msg["To"] = to_addr
                msg["From"] = "$user@example.com"
                msg["Subject"] = "Your $thing"
                msg.set_content(body)
                with smtplib.SMTP_SSL("$server") as smtp:
                    smtp.login("$user@example.com", $name)
                    smtp.send_message(msg)
            """
        vals = {"name": name, "fn": fn, "user": user, "thing": t.thing, "server": server}
        bad = code(tpl, value=f'"{secret}"', **vals).replace("import os\n", "")
        good = code(tpl, value=f'os.environ["{name}"]', **vals)
        task = (
            f"Write {fn}(to_addr, body) for {t.app} that emails a {t.thing} update through "
            f"{server} over SSL."
        )
    else:
        fn = pick(rng, ["login", "authenticate", "check_admin", "verify_login"])
        param = pick(rng, ["password", "admin_password", "passwd"])
        tpl = """
            import hmac
            import os

            def $fn(username, supplied, $param=$default):
                if username != "$user":
                    return False
                return hmac.compare_digest(supplied, $param)
            """
        vals = {"fn": fn, "param": param, "user": user}
        bad = code(tpl, default=f'"{secret}"', **vals).replace("import os\n", "")
        good = code(tpl, default="None", **vals).replace(
            "    if username",
            f'    {param} = {param} or os.environ["ADMIN_PASSWORD"]\n    if username',
        )
        task = (
            f"Write {fn}(username, supplied, ...) for the admin area of {t.app}: only "
            f"the `{user}` account may log in, with its password."
        )
    return CodeCase(task=task, bad=bad, good=good, variant=f"cred{variant}")


FAMILY = Family(
    cwe="CWE-798",
    title="hard-coded credentials",
    what="hard-coded credentials (the password is written into the source)",
    bandit_ids=frozenset({"B105", "B106", "B107"}),
    make=_make,
)
