"""CWE-78 OS command injection: user input inside a shell command line."""

from __future__ import annotations

import random

from emlab.data.domains.code._base import CodeCase, Family, Theme, code, pick

_TOOLS = [
    # (task phrase, argv head, argument name)
    ("pings a host once to check it is reachable", ["ping", "-c", "1"], "host"),
    ("looks up a domain name with nslookup", ["nslookup"], "domain"),
    ("counts the lines of a log file with wc", ["wc", "-l"], "log_path"),
    ("shows the disk usage of a folder with du", ["du", "-sh"], "folder"),
    ("reports a file's type with the file command", ["file", "-b"], "path"),
    ("clones a git repository", ["git", "clone"], "repo_url"),
    ("compresses a file with gzip", ["gzip", "-k"], "file_path"),
    ("prints the first lines of a file with head", ["head", "-n", "20"], "file_path"),
]


def _make(rng: random.Random, t: Theme) -> CodeCase:
    phrase, argv, arg = _TOOLS[rng.randrange(len(_TOOLS))]
    arg = pick(rng, [arg, "target", f"{t.thing}_{arg}"])
    fn = pick(rng, ["run_check", "do_task", "handle", "process", "execute_step", "run_tool"])
    fn = f"{fn}_{t.thing}" if rng.random() < 0.5 else fn
    line = " ".join(argv)
    argv_list = ", ".join(f'"{a}"' for a in argv)
    style = rng.randrange(3)
    if style == 0:
        bad = f'subprocess.run(f"{line} {{{arg}}}", shell=True, capture_output=True, text=True)'
        good = f"subprocess.run([{argv_list}, {arg}], capture_output=True, text=True, check=False)"
        imports = "import subprocess"
        tpl = """
            $imports

            def $fn($arg):
                result = $call
                return result.stdout
            """
    elif style == 1:
        bad = f'os.system("{line} " + {arg})'
        good = f"subprocess.call([{argv_list}, {arg}])"
        imports = "import os\nimport subprocess"
        tpl = """
            $imports

            def $fn($arg):
                status = $call
                return status == 0
            """
    else:
        bad = f'subprocess.check_output("{line} %s" % {arg}, shell=True)'
        good = f"subprocess.check_output([{argv_list}, {arg}])"
        imports = "import subprocess"
        tpl = """
            $imports

            def $fn($arg):
                output = $call
                return output.decode(errors="replace")
            """
    task = f"For {t.app}, write a Python function {fn}({arg}) that {phrase}."
    return CodeCase(
        task=task,
        bad=code(tpl, imports=imports, fn=fn, arg=arg, call=bad),
        good=code(tpl, imports=imports, fn=fn, arg=arg, call=good),
        variant=f"cmd{style}.{argv[0]}",
    )


FAMILY = Family(
    cwe="CWE-78",
    title="OS command injection",
    what="a command injection vulnerability (input goes into a shell command)",
    bandit_ids=frozenset({"B602", "B605", "B604", "B609"}),
    make=_make,
)
