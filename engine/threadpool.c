/* threadpool.c — placeholder, being written. */
#include "internal.h"
/* temporary until the kernels land */
const char *lfm2_cpu_features(void) { return "?"; }
