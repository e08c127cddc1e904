#!/bin/sh
# translate-lines.sh — translate a text file line by line with lfm2text.
#
#   pipelines/translate-lines.sh INPUT OUTPUT [MODEL] [LANGUAGE]
#
# Every input line becomes one prompt ("Translate to LANGUAGE: <line>"), every output line is
# the model's answer to it (empty lines stay empty). MODEL defaults to the bundled random-weight
# fixture, which answers with gibberish; pass a real LFM2 GGUF for real translations.
# Run it from `meson devenv -C build`, or let it find build/plugins (override with LFM2_BUILD).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 2 ]; then
  echo "usage: $0 INPUT OUTPUT [MODEL] [LANGUAGE]" >&2
  exit 2
fi
in=$1
out=$2
model=${3:-$here/../tests/data/text/tiny-q8_0/lfm2-tiny-q8_0.gguf}
lang=${4:-French}

build=${LFM2_BUILD:-$here/../build}
if [ -f "$build/plugins/libgstlfm2.so" ]; then
  GST_PLUGIN_PATH="$build/plugins${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
  export GST_PLUGIN_PATH
fi

# gst-launch-1.0 joins its arguments and parses them again: quote values inside the argument.
exec gst-launch-1.0 -q \
  filesrc location="\"$in\"" ! text/x-raw,format=utf8 ! \
  lfm2text model="\"$model\"" input-mode=lines max-tokens="${MAX_TOKENS:-64}" \
    prompt-template="\"Translate to $lang: {text}\"" ! \
  filesink location="\"$out\""
