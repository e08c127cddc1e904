/* gguf-writer.c — placeholder, being written. */
#include "internal.h"
