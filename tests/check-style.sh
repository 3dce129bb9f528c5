#!/usr/bin/env bash
# Checks the rules of .editorconfig on every C source, header and meson
# file: UTF-8 text, spaces not tabs, no trailing whitespace, a final
# newline, lines of at most 100 columns in C.
set -u
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top" || exit 1
status=0
n=0
while IFS= read -r -d '' file; do
  n=$((n + 1))
  case "$file" in src/*.c|src/*.h) max=100 ;; *) max=0 ;; esac
  if grep -nP '\t' "$file" | head -3 | sed "s|^|$file: tab: |" | grep .; then status=1; fi
  if grep -nP '[ \t]+$' "$file" | head -3 | sed "s|^|$file: trailing whitespace: |" | grep .; then status=1; fi
  if [ -s "$file" ] && [ "$(tail -c1 "$file" | od -An -tx1 | tr -d ' ')" != "0a" ]; then
    echo "$file: no final newline"; status=1
  fi
  if ((max)) && ! LC_ALL=C.UTF-8 awk -v max="$max" -v f="$file" \
      'length($0) > max { printf "%s:%d: longer than %d columns\n", f, NR, max; bad=1 }
       END { exit bad }' "$file"; then
    status=1
  fi
done < <(find src tests -type f \( -name '*.c' -o -name '*.h' -o -name 'meson.build' \) -print0)
if ((status == 0)); then
  echo "ok - $n files follow .editorconfig"
fi
exit $status
