/* unicode-data.c — placeholder, being written. */
#include "internal.h"
