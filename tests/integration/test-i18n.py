#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Translations: the catalogue covers the sources, every language's file is valid and
complete, and parley-cli speaks the user's language, also for an error that comes from a
real parley-server. TAP output.

Environment: PARLEY_SERVER, PARLEY_CLI, PARLEY_LOCALEDIR (the build's po directory) and
PARLEY_SOURCE_ROOT, set by meson."""

import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from calltest import Server, Tap, Users, cleanup_workdir, workdir  # noqa: E402

MARK = re.compile(r'\bN?_\("')

tap = Tap()
root = os.environ["PARLEY_SOURCE_ROOT"]
po = os.path.join(root, "po")
cli = os.environ["PARLEY_CLI"]


def sources_with_marks():
    found = set()
    for top in ("src",):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in files:
                if name.endswith((".c", ".h")):
                    path = os.path.join(dirpath, name)
                    with open(path, encoding="utf-8") as f:
                        if MARK.search(f.read()):
                            found.add(os.path.relpath(path, root))
    return found


def read_list(name):
    with open(os.path.join(po, name), encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def run_cli(*args, language=None, env_extra=None):
    env = dict(os.environ)
    env.pop("LANGUAGE", None)
    env["LC_ALL"] = "C.UTF-8"
    if language:
        env["LANGUAGE"] = language
    env.update(env_extra or {})
    return subprocess.run([cli, *args], env=env, capture_output=True, timeout=60)


try:
    listed = set(read_list("POTFILES.in"))
    marked = sources_with_marks()
    tap.ok(listed == marked, "po/POTFILES.in lists exactly the sources with translatable strings",
           {"not listed": sorted(marked - listed), "without strings": sorted(listed - marked)})

    languages = read_list("LINGUAS")
    tap.ok("de" in languages, "there is at least one translation (German)", languages)

    with tempfile.TemporaryDirectory() as tmp:
        pot = os.path.join(tmp, "parley.pot")
        r = subprocess.run(["xgettext", "--from-code=UTF-8", "--keyword=_", "--keyword=N_",
                            "--add-comments", "-o", pot, "-f", "po/POTFILES.in"],
                           cwd=root, capture_output=True)
        tap.ok(r.returncode == 0 and os.path.getsize(pot) > 0,
               "the message catalogue can be extracted from the sources", r.stderr.decode())
        for lang in languages:
            path = os.path.join(po, f"{lang}.po")
            r = subprocess.run(["msgfmt", "--check", "-o", os.devnull, path], capture_output=True)
            tap.ok(r.returncode == 0, f"{lang}.po is valid (formats match their messages)",
                   r.stderr.decode())
            r = subprocess.run(["msgcmp", "--use-untranslated", path, pot], capture_output=True)
            untranslated = subprocess.run(["msgattrib", "--untranslated", "--no-obsolete", path],
                                          capture_output=True).stdout.decode()
            tap.ok(r.returncode == 0 and "msgid" not in untranslated.split("msgstr", 1)[-1],
                   f"{lang}.po translates every message of the sources",
                   r.stderr.decode() + untranslated[:2000])

    r = run_cli("frobnicate", language="de")
    err = r.stderr.decode()
    tap.ok(r.returncode != 0 and "unbekannter Befehl frobnicate" in err and "Befehle:" in err,
           "with LANGUAGE=de, a usage error is in German", err)
    r = run_cli("frobnicate")
    err = r.stderr.decode()
    tap.ok("unknown command frobnicate" in err and "Commands:" in err,
           "without a language, it is in English", err)
    r = run_cli("--help", language="de")
    out = r.stdout.decode()
    tap.ok(r.returncode == 0 and "Profilordner" in out and "Befehle:" in out,
           "--help is translated, options and summary", out)

    work = workdir("parley-i18n-")
    server = Server(work).start()
    try:
        users = Users(server, work)
        users.register("alice")
        argv = users.argv("alice", "login", "alice")
        for language, text in (("de", "ungültiger Benutzername oder ungültiges Passwort"),
                               (None, "invalid user name or password")):
            r = run_cli(*argv[1:], language=language,
                        env_extra={"PARLEY_PASSWORD": "not the password"})
            err = r.stderr.decode()
            tap.ok(r.returncode != 0 and text in err,
                   f"a wrong password refused by the server reads {text!r}", err)
        r = run_cli(*users.argv("alice", "conversations")[1:], language="de")
        tap.ok(r.returncode == 0 and r.stdout.decode().strip() == "",
               "JSON output and exit codes do not change with the language",
               (r.returncode, r.stdout.decode(), r.stderr.decode()))
    finally:
        server.stop()
        cleanup_workdir(work)
except Exception as e:  # noqa: BLE001 - report any failure as a TAP line
    tap.ok(False, f"the test ran to the end ({e!r})")

tap.done()
