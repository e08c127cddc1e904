#!/bin/sh
# check-exports.sh — a shared library exports exactly its public API.
#
#   check-exports.sh LIBRARY MACRO HEADER...   the functions declared with MACRO in HEADERs
#   check-exports.sh LIBRARY -- NAME...        exactly these NAMEs
#
# Compares `nm -D --defined-only LIBRARY` with that list and fails on any symbol exported but
# not declared (an internal function leaking out: a missing -fvisibility=hidden, a static
# archive's symbols re-exported) and on any declared function not exported (a missing export
# macro). Names starting with '_' belong to the toolchain (_init, sanitizer runtimes) and are
# ignored.
set -eu
lib=$1; shift
NM=${NM:-nm}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ "$1" = "--" ]; then
  shift
  printf '%s\n' "$@" | sort -u > "$tmp/api"
else
  macro=$1; shift
  # "MACRO <type> name(" on the first line of each declaration
  grep -h "^$macro " "$@" | sed -e 's/(.*//' -e 's/.*[ *]//' | sort -u > "$tmp/api"
fi
[ -s "$tmp/api" ] || { echo "check-exports: no API names found"; exit 1; }

"$NM" -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | grep -v '^_' | sort -u > "$tmp/exported"

status=0
leaked=$(comm -23 "$tmp/exported" "$tmp/api")
missing=$(comm -13 "$tmp/exported" "$tmp/api")
if [ -n "$leaked" ]; then
  echo "$lib exports symbols that are not public API:"
  echo "$leaked" | sed 's/^/  /'
  status=1
fi
if [ -n "$missing" ]; then
  echo "$lib does not export these public functions:"
  echo "$missing" | sed 's/^/  /'
  status=1
fi
[ $status -eq 0 ] && echo "$lib: $(wc -l < "$tmp/api") public functions, nothing else exported"
exit $status
