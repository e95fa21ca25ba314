/*
 * synclog.c
 *
 * Module entry point: the PG_MODULE_MAGIC block, the synclog.* settings,
 * and, when loaded through shared_preload_libraries, the registration of
 * the background worker's launcher.
 *
 * Owns: GUC definitions and their documented defaults and ranges.
 * Must never: touch the database at load time; _PG_init runs in every
 * backend that loads the library, including ones with no transaction.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "synclog.h"
#include "synclog_zip.h"

PG_MODULE_MAGIC;

int			synclog_retention_secs = 86400;
int			synclog_retention_max_secs = 7 * 86400;
int			synclog_client_window_secs = 86400;
bool		synclog_notify_append = false;
int			synclog_max_delta_kb = 16384;
int			synclog_max_delta_changes = 100000;
int			synclog_rotate_entries = 10000;
int			synclog_rotate_size_kb = 65536;
int			synclog_rotate_age_secs = 3600;
int			synclog_rotate_min_interval_secs = 60;
int			synclog_naptime_secs = 10;
int			synclog_max_rotations_per_round = 100;
int			synclog_max_collections_per_round = 1000;
int			synclog_rotation_lock_timeout_ms = 1000;
int			synclog_max_clients_per_doc = 10000;
int			synclog_gc_max_logs = 100;
bool		synclog_worker_paused = false;
bool		synclog_vacuum_after_gc = true;
int			synclog_debug_rotation_delay_ms = 0;
bool		synclog_compression = true;
int			synclog_compression_min_size = 256;

void		_PG_init(void);

/*
 * The largest "synclog.max_delta_size" allowed, in kB: 256 MB.  Every
 * accepted delta must come back through synclog.read in text format too,
 * where a bytea is sent as hex, 2n + 2 bytes, and the whole row must stay
 * under MaxAllocSize (1 GB - 1): a delta near 1 GB was accepted, and every
 * text-format read of it then failed with "invalid memory alloc request
 * size".  At 256 MB the hex is 512 MB, which leaves the row message
 * room for its other columns.
 */
#define MAX_DELTA_SIZE_LIMIT_KB	(256 * 1024)

StaticAssertDecl((int64) MAX_DELTA_SIZE_LIMIT_KB * 1024 * 2 + 2 < MaxAllocSize,
				 "a delta of the largest allowed size must fit MaxAllocSize as hex");
/* Stored compressed deltas are decoded up to that size (delta_store.c). */
StaticAssertDecl((size_t) MAX_DELTA_SIZE_LIMIT_KB * 1024 == SLC_ZIP_RAW_MAX,
				 "compressed deltas must decode up to the largest allowed delta");

/* Every synclog.* setting, with its default, range and unit. */
static void
define_settings(void)
{
	DefineCustomIntVariable("synclog.retention",
							"How long a sealed log stays readable before it may be collected.",
							"The immediately previous log is never collected, whatever this says. "
							"Clients that fall further behind than this must download a snapshot.",
							&synclog_retention_secs,
							86400, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.retention_max",
							"Longest time a sealed log is kept for clients that still read it.",
							"Past synclog.retention, a log that an active client (see "
							"synclog.client_activity_window) still sits in is kept until this "
							"much time after it was sealed.  0 keeps it as long as such a client exists.",
							&synclog_retention_max_secs,
							7 * 86400, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.client_activity_window",
							"A client that acknowledged within this window counts as active for retention.",
							NULL,
							&synclog_client_window_secs,
							86400, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("synclog.notify_append",
							 "Send a NOTIFY on the document's channel for every append.",
							 "Lets clients wait for new entries instead of polling; costs one "
							 "notification queue entry per append.",
							 &synclog_notify_append,
							 false,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.max_delta_size",
							"Largest encoded delta accepted by one append.",
							"At most 256 MB, so that every stored delta can be read back "
							"in text format, where it takes twice its size as hex.",
							&synclog_max_delta_kb,
							16384, 1, MAX_DELTA_SIZE_LIMIT_KB,
							PGC_SUSET, GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.max_delta_changes",
							"Largest number of changes (keys) accepted in one delta.",
							NULL,
							&synclog_max_delta_changes,
							100000, 1, 10000000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.rotate_entries",
							"Rotate a document automatically once its active log holds this many entries.",
							"0 disables the entry threshold.",
							&synclog_rotate_entries,
							10000, 0, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.rotate_size",
							"Rotate a document automatically once its active log holds this many bytes of deltas.",
							"0 disables the size threshold.",
							&synclog_rotate_size_kb,
							65536, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.rotate_age",
							"Rotate a document automatically once its first entry since the last rotation is this old.",
							"0 disables the age threshold.",
							&synclog_rotate_age_secs,
							3600, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.rotate_min_interval",
							"Shortest time between two automatic rotations of the same document.",
							NULL,
							&synclog_rotate_min_interval_secs,
							60, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.naptime",
							"Time the background worker sleeps between rounds.",
							NULL,
							&synclog_naptime_secs,
							10, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.max_rotations_per_round",
							"Most documents one round of the background worker rotates in a database.",
							NULL,
							&synclog_max_rotations_per_round,
							100, 1, INT_MAX,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.max_collections_per_round",
							"Most logs one round of the worker collects in a database.",
							NULL,
							&synclog_max_collections_per_round,
							1000, 1, INT_MAX,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.gc_max_logs",
							"Most logs one call of synclog.gc() collects.",
							"Bounds the length of the transaction a call runs; a call that "
							"returns this many leaves more to collect.  0 collects all.",
							&synclog_gc_max_logs,
							100, 0, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.max_clients_per_doc",
							"Most clients a document keeps watermarks and positions for.",
							"An append whose client id is new to the document, and an ack that "
							"would record a new client, fail beyond it; appends without a "
							"client id are not affected.",
							&synclog_max_clients_per_doc,
							10000, 1, 1000000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.rotation_lock_timeout",
							"Longest wait for a lock by an automatic rotation or collection.",
							"The background worker and synclog.compact_due() give up on a document "
							"whose lock they cannot get within this time (a writer holding an open "
							"transaction, say) and go on with the others; the document is tried "
							"again in the next round.  0 waits without limit.",
							&synclog_rotation_lock_timeout_ms,
							1000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("synclog.worker_paused",
							 "Pause the background worker: it keeps running but rotates and collects nothing.",
							 NULL,
							 &synclog_worker_paused,
							 false,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("synclog.vacuum_after_gc",
							 "After a round that collected logs, the background worker vacuums synclog.entry and synclog.kv.",
							 "A plain VACUUM (SKIP_LOCKED), so that the rows collection deleted are reused "
							 "before the next appends extend the tables, instead of waiting for autovacuum.",
							 &synclog_vacuum_after_gc,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("synclog.compression",
							 "Store appended deltas compressed (Zstandard) when that makes them smaller.",
							 "Readers that do not ask for compressed deltas get them uncompressed, "
							 "as before; off stores every new delta as it comes.",
							 &synclog_compression,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("synclog.compression_min_size",
							"Smallest delta an append tries to compress.",
							"Smaller deltas are stored as they come; compressing them would "
							"save too little to pay for the work.",
							&synclog_compression_min_size,
							256, 256, INT_MAX,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

#ifdef SYNCLOG_TEST_HOOKS
	/* Only in test builds (make SYNCLOG_TEST_HOOKS=1), never in packages. */
	DefineCustomIntVariable("synclog.debug_rotation_delay",
							"Testing only: sleep this long inside a rotation, after the fold and before the switch.",
							"Lets crash tests kill a server in the middle of a rotation.",
							&synclog_debug_rotation_delay_ms,
							0, 0, 3600 * 1000,
							PGC_SUSET, GUC_UNIT_MS | GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);
#endif

	MarkGUCPrefixReserved("synclog");
}

void
_PG_init(void)
{
	define_settings();

	if (process_shared_preload_libraries_in_progress)
		sl_register_launcher();
}
