# speech-common.sh — sourced by the speech-output scripts (tts.sh, speech-to-speech.sh):
# finding the plugin and the `lfm2` program in build/ (or $LFM2_BUILD), and the default models.
#
# Without model options the scripts use an LFM2-Audio set that `lfm2 mkmodel --config
# audio-tiny` writes once into $LFM2_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/lfm2-gst):
# backbone, mmproj (speech in), vocoder and tokenizer (speech out). Those files have RANDOM
# weights: every element runs end to end, but what they say is noise. Pass the published
# LFM2.5-Audio-1.5B-GGUF files for real speech, e.g.
#   --model LFM2.5-Audio-1.5B-Q8_0.gguf --mmproj mmproj-LFM2.5-Audio-1.5B-Q8_0.gguf
#   --vocoder vocoder-LFM2.5-Audio-1.5B-Q8_0.gguf --tokenizer tokenizer-LFM2.5-Audio-1.5B-Q8_0.gguf

speech_here=$(cd "$(dirname "$0")" && pwd)
speech_build=${LFM2_BUILD:-$speech_here/../build}

# speech_find_plugin ELEMENT…: puts build/plugins on GST_PLUGIN_PATH (if built there) and
# checks the elements are found.
speech_find_plugin() {
  if [ -f "$speech_build/plugins/libgstlfm2.so" ]; then
    GST_PLUGIN_PATH="$speech_build/plugins${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
    export GST_PLUGIN_PATH
  fi
  for e in "$@"; do
    gst-inspect-1.0 "$e" > /dev/null 2>&1 || {
      echo "$0: the $e element is not found: build first (meson setup build && ninja -C build)" >&2
      exit 1
    }
  done
}

# The `lfm2` program: build/tools/lfm2, or one on PATH.
speech_lfm2() {
  if [ -x "$speech_build/tools/lfm2" ]; then
    echo "$speech_build/tools/lfm2"
  elif command -v lfm2 > /dev/null 2>&1; then
    command -v lfm2
  else
    echo "$0: the lfm2 program is not found: build first (ninja -C build)" >&2
    exit 1
  fi
}

# speech_models NEED: NEED lists what the script uses among model mmproj vocoder tokenizer.
# With none of --model/--mmproj/--vocoder/--tokenizer given (speech_model … empty), sets them
# to the generated audio-tiny set (made on first use) and speech_generated=1; otherwise every
# file NEEDed must be given and exist.
speech_models() {
  speech_generated=0
  if [ -n "$speech_model$speech_mmproj$speech_vocoder$speech_tokenizer" ]; then
    for what in $1; do
      eval "f=\$speech_$what"
      [ -n "$f" ] || {
        echo "$0: give --model, --mmproj, --vocoder and --tokenizer as needed ($what is missing)," \
          "or none of them for generated random-weight models" >&2
        exit 2
      }
      [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
    done
    return
  fi
  speech_generated=1
  cache=${LFM2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lfm2-gst}/audio-tiny-speech
  speech_model=$cache/model.gguf
  speech_mmproj=$cache/mmproj.gguf
  speech_vocoder=$cache/vocoder.gguf
  speech_tokenizer=$cache/tokenizer.gguf
  if [ ! -f "$speech_model" ] || [ ! -f "$speech_mmproj" ] || [ ! -f "$speech_vocoder" ] ||
     [ ! -f "$speech_tokenizer" ]; then
    lfm2=$(speech_lfm2)
    mkdir -p "$cache"
    echo "$0: generating audio-tiny models (RANDOM weights) in $cache" >&2
    "$lfm2" mkmodel --config audio-tiny --type q8_0 --seed 0 -o "$cache/model.tmp" \
      --mmproj-out "$cache/mmproj.tmp" --vocoder-out "$cache/vocoder.tmp" \
      --tokenizer-out "$cache/tokenizer.tmp" > /dev/null || exit 1
    for f in mmproj vocoder tokenizer model; do mv "$cache/$f.tmp" "$cache/$f.gguf"; done
  fi
  echo "$0: using generated audio-tiny models with RANDOM weights: what they say is noise" \
    "(pass the published LFM2.5-Audio files with the model options for real speech)" >&2
}

# One property per gst-launch argument: only backslashes need doubling.
v() { printf '%s' "$1" | sed 's/\\/\\\\/g'; }
