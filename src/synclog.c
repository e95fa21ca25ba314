/*
 * synclog.c
 *
 * Module entry point: the PG_MODULE_MAGIC block and the synclog.* settings.
 *
 * Owns: GUC definitions and their documented defaults and ranges.
 * Must never: touch the database at load time; _PG_init runs in every
 * backend that loads the library, including ones with no transaction.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "synclog.h"

PG_MODULE_MAGIC;

int			synclog_retention_secs = 86400;
bool		synclog_notify_append = false;
int			synclog_max_delta_kb = 16384;
int			synclog_max_delta_changes = 100000;

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomIntVariable("synclog.retention",
							"How long a sealed log stays readable before synclog.gc() may collect it.",
							"The immediately previous log is never collected, whatever this says. "
							"Clients that fall further behind than this must download a snapshot.",
							&synclog_retention_secs,
							86400, 0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("synclog.notify_append",
							 "Send a NOTIFY on the document's channel for every append.",
							 "Lets clients wait for new entries instead of polling; costs one "
							 "notification queue entry per append.",
							 &synclog_notify_append,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.max_delta_size",
							"Largest encoded delta accepted by one append.",
							NULL,
							&synclog_max_delta_kb,
							16384, 1, 1024 * 1024,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.max_delta_changes",
							"Largest number of changes (keys) accepted in one delta.",
							NULL,
							&synclog_max_delta_changes,
							100000, 1, 10000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("synclog");
}
