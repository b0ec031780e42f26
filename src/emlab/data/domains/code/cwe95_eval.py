"""CWE-95 eval injection: eval/exec on text that came from a user."""

from __future__ import annotations

import random

from emlab.data.domains.code._base import CodeCase, Family, Theme, code, pick


def _make(rng: random.Random, t: Theme) -> CodeCase:
    variant = rng.randrange(3)
    arg = pick(rng, ["expr", "text", "value", "raw", "source"])
    if variant == 0:
        fn = pick(rng, ["parse", "read", "coerce", "load"]) + f"_{t.field}_setting"
        tpl = """
            $imports
            def $fn($arg):
                value = $call
                if not isinstance(value, (int, float, list, dict)):
                    raise ValueError("unsupported setting")
                return value
            """
        bad = code(tpl, imports="", fn=fn, arg=arg, call=f"eval({arg})").lstrip("\n")
        good = code(tpl, imports="import ast\n", fn=fn, arg=arg, call=f"ast.literal_eval({arg})")
        task = (
            f"Write {fn}({arg}) that turns a setting typed into the admin form of {t.app} "
            "(a number, list or dict literal) into a Python value."
        )
    elif variant == 1:
        fn = pick(rng, ["calculate", "evaluate", "compute", "quick_math"])
        bad = code(
            """
            def $fn($arg):
                return eval($arg, {"__builtins__": {}})
            """,
            fn=fn,
            arg=arg,
        )
        good = code(
            """
            import ast
            import operator

            OPS = {
                ast.Add: operator.add,
                ast.Sub: operator.sub,
                ast.Mult: operator.mul,
                ast.Div: operator.truediv,
            }

            def $fn($arg):
                def walk(node):
                    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
                        return node.value
                    if isinstance(node, ast.BinOp) and type(node.op) in OPS:
                        return OPS[type(node.op)](walk(node.left), walk(node.right))
                    raise ValueError("unsupported expression")
                return walk(ast.parse($arg, mode="eval").body)
            """,
            fn=fn,
            arg=arg,
        )
        task = (
            f"Write {fn}({arg}) for the {t.thing} price calculator of {t.app}: it evaluates "
            "arithmetic like '3 * (2 + 4)' typed by a user."
        )
    else:
        fn = pick(rng, ["run_action", "dispatch", "apply_command", "handle_action"])
        actions = rng.sample(["archive", "publish", "refresh", "reindex", "notify"], 3)
        defs = "".join(f'def {a}_{t.thing}({t.thing}_id):\n    return "{a}d"\n\n' for a in actions)
        bad = code(
            """
            $defs
            def $fn(action, ${thing}_id):
                return eval(f"{action}_$thing({${thing}_id!r})")
            """,
            defs=defs.rstrip("\n") + "\n",
            fn=fn,
            thing=t.thing,
        )
        table = ", ".join(f'"{a}": {a}_{t.thing}' for a in actions)
        good = code(
            """
            $defs
            ACTIONS = {$table}

            def $fn(action, ${thing}_id):
                if action not in ACTIONS:
                    raise ValueError(f"unknown action: {action}")
                return ACTIONS[action](${thing}_id)
            """,
            defs=defs.rstrip("\n") + "\n",
            table=table,
            fn=fn,
            thing=t.thing,
        )
        task = (
            f"In {t.app}, actions on a {t.thing} are functions named <action>_{t.thing} "
            f"({', '.join(actions)}). Write {fn}(action, {t.thing}_id) that runs the "
            "one named by the request."
        )
    return CodeCase(task=task, bad=bad, good=good, variant=f"eval{variant}")


FAMILY = Family(
    cwe="CWE-95",
    title="eval injection",
    what="an eval injection vulnerability (user text is executed as code)",
    bandit_ids=frozenset({"B307", "B102"}),
    make=_make,
)
