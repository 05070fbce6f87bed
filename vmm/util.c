/* vmm/util.c - the library version and logging through the configuration's callback. */
#include "config.h"
#include "internal.h"

#include <stdio.h>

unsigned ember_library_version(void)
{
	return EMBER_VMM_API_VERSION;
}

void vmm_logf(const struct ember_config *cfg, enum ember_log_level level, const char *fmt, ...)
{
	if (!cfg || !cfg->log || level > cfg->log_level)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cfg->log(cfg->log_opaque, level, msg);
}
