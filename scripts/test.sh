#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Installs what is missing, builds Parley, and runs the whole test suite:
# unit and integration tests in a normal build, then again in an
# AddressSanitizer + UndefinedBehaviorSanitizer build.
# Usage: scripts/test.sh [--no-asan] [meson test options...]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
asan=1
if [ "${1:-}" = "--no-asan" ]; then
  asan=0
  shift
fi

"$here/setup.sh" "$top/build"
# The browser peers of the interop tests (Debian's chromium, playwright-core from npm).
"$here/setup-chromium.sh" "$top/build/interop-node"
meson test -C "$top/build" --print-errorlogs --suite unit --suite integration "$@"

if ((asan)); then
  "$here/setup.sh" "$top/build-asan" -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debug -Dbench=false
  # The browser peers are the same for both builds.
  [ -e "$top/build-asan/interop-node" ] || ln -s "$top/build/interop-node" "$top/build-asan/interop-node"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C "$top/build-asan" --print-errorlogs --suite unit --suite integration \
    --timeout-multiplier 3 "$@"
fi
