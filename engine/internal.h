/* internal.h — shared by the engine's source files only (not installed). What stage libraries
 * may use is in lfm2-stage.h. */
#ifndef LFM2_INTERNAL_H
#define LFM2_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lfm2-stage.h"

#endif /* LFM2_INTERNAL_H */
