/* vmm/internal.h - helpers shared by the VMM's files: errors, logging, overflow-safe math. */
#ifndef EMBER_VMM_INTERNAL_H
#define EMBER_VMM_INTERNAL_H

#include <ember/vmm.h>

#include "../lib/io/util.h"

/* Logs through cfg->log if set and level <= cfg->log_level. */
void vmm_logf(const struct ember_config *cfg, enum ember_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* EMBER_VMM_INTERNAL_H */
