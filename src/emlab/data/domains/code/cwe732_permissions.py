"""CWE-732 incorrect permission assignment: files made world-writable or group-executable."""

from __future__ import annotations

import random

from emlab.data.domains.code._base import CodeCase, Family, Theme, code, pick


def _make(rng: random.Random, t: Theme) -> CodeCase:
    bad_mode = pick(rng, ["0o777", "0o666", "0o766", "0o757", "0o776"])
    good_mode = pick(rng, ["0o600", "0o640", "0o644"])
    variant = rng.randrange(3)
    if variant == 0:
        fn = pick(rng, ["save", "write", "store", "export"]) + f"_{t.things}"
        tpl = """
            import json
            import os

            def $fn(path, $things):
                with open(path, "w") as fh:
                    json.dump($things, fh)
                os.chmod(path, $mode)
            """
        vals = {"fn": fn, "things": t.things}
        task = (
            f"Write {fn}(path, {t.things}) for {t.app}: save the list as JSON and set "
            "the file's permissions."
        )
    elif variant == 1:
        fn = pick(rng, ["prepare", "setup", "init", "create"]) + pick(
            rng, ["_upload_dir", "_log_dir", "_cache_dir"]
        )
        tpl = """
            import os

            def $fn(base):
                path = os.path.join(base, "$things")
                os.makedirs(path, exist_ok=True)
                os.chmod(path, $mode)
                return path
            """
        vals = {"fn": fn, "things": t.things}
        good_mode = "0o700"
        task = (
            f"Write {fn}(base) that creates the `{t.things}` folder for {t.app} under "
            "base and sets its permissions."
        )
    else:
        fn = pick(rng, ["write_key", "save_token", "store_secret", "write_config"])
        tpl = """
            import os
            from pathlib import Path

            def $fn(path, content):
                target = Path(path)
                target.write_text(content)
                os.chmod(target, $mode)
                return target
            """
        vals = {"fn": fn}
        task = (
            f"Write {fn}(path, content) for {t.app} that writes the content to a file "
            "and sets its mode."
        )
    return CodeCase(
        task=task,
        bad=code(tpl, mode=bad_mode, **vals),
        good=code(tpl, mode=good_mode, **vals),
        variant=f"perm{variant}",
    )


FAMILY = Family(
    cwe="CWE-732",
    title="insecure file permissions",
    what="insecure file permissions (the file is made world-writable)",
    bandit_ids=frozenset({"B103"}),
    make=_make,
)
