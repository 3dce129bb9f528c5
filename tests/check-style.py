#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The code style rules a machine can check (.editorconfig and GNOME style): spaces not
tabs, no trailing whitespace and a final newline everywhere (C, headers, scripts,
meson.build); an SPDX header on sources and scripts; in C at most 100 columns and a space
before the parenthesis of a call, except for g_autoptr() and friends and the gettext macros.
TAP output, one line per rule; usage: check-style.py [SOURCE_ROOT]."""

import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))
TOPS = ("src", "tests", "scripts")
C_SUFFIXES = (".c", ".h")
SCRIPT_SUFFIXES = (".py", ".sh", ".js")
CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\(")
CALL_EXCEPTIONS = {"g_autoptr", "g_auto", "g_autolist", "g_autoslist", "g_autoqueue",
                   "_", "N_", "C_", "NC_", "Q_", "P_", "defined"}
SKIP_DIRS = {"node_modules", "__pycache__"}


def files():
    for top in TOPS:
        for dirpath, dirnames, names in os.walk(os.path.join(ROOT, top)):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
            for name in sorted(names):
                if name.endswith(C_SUFFIXES + SCRIPT_SUFFIXES) or name == "meson.build":
                    yield os.path.join(dirpath, name)


def code_only(line, in_comment):
    """The line without comments, string and character literals; whether a block comment
    is still open at its end."""
    out = []
    i, n = 0, len(line)
    while i < n:
        if in_comment:
            end = line.find("*/", i)
            if end < 0:
                return "".join(out), True
            in_comment, i = False, end + 2
        elif line.startswith("/*", i):
            in_comment, i = True, i + 2
        elif line.startswith("//", i):
            break
        elif line[i] in "\"'":
            quote, i = line[i], i + 1
            while i < n and line[i] != quote:
                i += 2 if line[i] == "\\" else 1
            i += 1
            out.append('""')
        else:
            out.append(line[i])
            i += 1
    return "".join(out), in_comment


def check(path, problems):
    rel = os.path.relpath(path, ROOT)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    head = lines[:2] if lines and lines[0].startswith("#!") else lines[:1]
    if not path.endswith("meson.build") and \
            not any("SPDX-License-Identifier:" in line for line in head):
        problems["spdx"].append(f"{rel}: no SPDX-License-Identifier on its first line")
    if text and not text.endswith("\n"):
        problems["newline"].append(f"{rel}: no newline at the end")
    in_comment = False
    for number, line in enumerate(lines[:-1] if text.endswith("\n") else lines, 1):
        where = f"{rel}:{number}"
        if path.endswith(C_SUFFIXES) and len(line) > 100:
            problems["columns"].append(f"{where}: {len(line)} columns")
        if "\t" in line:
            problems["tabs"].append(f"{where}: tab")
        if line != line.rstrip():
            problems["trailing"].append(f"{where}: trailing whitespace")
        if path.endswith(C_SUFFIXES):
            code, in_comment = code_only(line, in_comment)
            if code.lstrip().startswith("#"):
                continue
            calls = [c for c in CALL.findall(code) if c not in CALL_EXCEPTIONS]
            if calls:
                problems["call-space"].append(f"{where}: {', '.join(calls)}(")


def main():
    rules = {
        "spdx": "every source file starts with an SPDX license identifier",
        "newline": "every source file ends with a newline",
        "columns": "no C line is longer than 100 columns",
        "tabs": "no tabs",
        "trailing": "no trailing whitespace",
        "call-space": "C calls have a space before the parenthesis",
    }
    problems = {rule: [] for rule in rules}
    n_files = 0
    for path in files():
        check(path, problems)
        n_files += 1
    print("TAP version 13")
    print(f"1..{len(rules) + 1}")
    print(f"{'ok' if n_files > 50 else 'not ok'} 1 - found the sources ({n_files} files)")
    failed = n_files <= 50
    for number, (rule, what) in enumerate(rules.items(), 2):
        found = problems[rule]
        print(f"{'not ok' if found else 'ok'} {number} - {what}")
        for line in found[:30]:
            print(f"# {line}")
        if len(found) > 30:
            print(f"# ... and {len(found) - 30} more")
        failed = failed or bool(found)
    return 1 if failed else 0


sys.exit(main())
