# asr-common.sh — sourced by the lfm2asr scripts (transcribe-file.sh, live-transcription.sh,
# check-no-stall-audio.sh, check-asr-rss.sh): finding the plugin and the `lfm2` program in
# build/ (or $LFM2_BUILD), and the default models.
#
# Without --model/--mmproj the scripts use an LFM2-Audio pair that `lfm2 mkmodel --config
# audio-tiny` writes once into $LFM2_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/lfm2-gst).
# Those files have RANDOM weights: the pipeline runs end to end, but the text is gibberish,
# and greedy decoding of them gives only white space (no text at all). So with the generated
# pair the scripts sample (temperature 1, seed 1) to show some text; with real models they
# keep lfm2asr's greedy default. Pass the published files for real transcripts, e.g.
#   --model LFM2-Audio-1.5B-Q8_0.gguf --mmproj mmproj-LFM2-Audio-1.5B-F16.gguf

asr_here=$(cd "$(dirname "$0")" && pwd)
asr_build=${LFM2_BUILD:-$asr_here/../build}

# Puts build/plugins on GST_PLUGIN_PATH (if built there) and checks the elements are found.
asr_find_plugin() {
  if [ -f "$asr_build/plugins/libgstlfm2.so" ]; then
    GST_PLUGIN_PATH="$asr_build/plugins${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
    export GST_PLUGIN_PATH
  fi
  gst-inspect-1.0 lfm2asr > /dev/null 2>&1 || {
    echo "$0: the lfm2asr element is not found: build first (meson setup build && ninja -C build)" >&2
    exit 1
  }
}

# The `lfm2` program: build/tools/lfm2, or one on PATH.
asr_lfm2() {
  if [ -x "$asr_build/tools/lfm2" ]; then
    echo "$asr_build/tools/lfm2"
  elif command -v lfm2 > /dev/null 2>&1; then
    command -v lfm2
  else
    echo "$0: the lfm2 program is not found: build first (ninja -C build)" >&2
    exit 1
  fi
}

# asr_models CONFIG MODEL MMPROJ [MKMODEL-ARGS…]: sets asr_model/asr_mmproj to MODEL/MMPROJ
# when both are given, else to the generated CONFIG pair (made on first use), and
# asr_generated=1 in that case.
asr_models() {
  config=$1
  asr_model=$2
  asr_mmproj=$3
  shift 3
  asr_generated=0
  if [ -n "$asr_model" ] || [ -n "$asr_mmproj" ]; then
    [ -n "$asr_model" ] && [ -n "$asr_mmproj" ] || {
      echo "$0: give both --model and --mmproj (or neither, for generated random-weight models)" >&2
      exit 2
    }
    for f in "$asr_model" "$asr_mmproj"; do
      [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
    done
    return
  fi
  asr_generated=1
  cache=${LFM2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lfm2-gst}/$config
  asr_model=$cache/model.gguf
  asr_mmproj=$cache/mmproj.gguf
  if [ ! -f "$asr_model" ] || [ ! -f "$asr_mmproj" ]; then
    lfm2=$(asr_lfm2)
    mkdir -p "$cache"
    echo "$0: generating $config models (RANDOM weights) in $cache" >&2
    "$lfm2" mkmodel --config "$config" --seed 0 -o "$cache/model.gguf.tmp" \
      --mmproj-out "$cache/mmproj.gguf.tmp" "$@" > /dev/null || exit 1
    mv "$cache/mmproj.gguf.tmp" "$asr_mmproj"
    mv "$cache/model.gguf.tmp" "$asr_model"
  fi
  echo "$0: using generated $config models with RANDOM weights (gibberish text; pass --model" \
    "and --mmproj for real transcripts)" >&2
}

# One property per gst-launch argument: only backslashes need doubling.
v() { printf '%s' "$1" | sed 's/\\/\\\\/g'; }
