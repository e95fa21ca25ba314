/*
 * synclog.c
 *
 * Module entry point: the PG_MODULE_MAGIC block, the synclog.* settings,
 * and, when loaded through shared_preload_libraries, the registration of
 * the background worker's launcher.
 *
 * Owns: GUC definitions and their documented defaults and ranges, and
 * synclog.settings(), which shows them typed.
 * Must never: touch the database at load time; _PG_init runs in every
 * backend that loads the library, including ones with no transaction.
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "synclog.h"
#include "synclog_zip.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(synclog_settings);

int			synclog_retention_secs = 86400;
int			synclog_retention_max_secs = 7 * 86400;
int			synclog_client_window_secs = 86400;
int			synclog_client_retention_secs = 0;
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
int			synclog_max_group_kb = 256 * 1024;
bool		synclog_debug_fail_vacuum = false;
bool		synclog_debug_fail_worker_start = false;
#ifdef SYNCLOG_TEST_HOOKS
int			synclog_debug_hint_block = -1;
static char *synclog_debug_pause_at = NULL;
static int	pause_arrivals = 0;
#endif
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

#ifdef SYNCLOG_TEST_HOOKS
/* Setting "synclog.debug_pause_at" starts the count of arrivals afresh. */
static void
assign_pause_at(const char *newval, void *extra)
{
	pause_arrivals = 0;
}

/*
 * SL_TEST_PAUSE(point), in test builds: when "synclog.debug_pause_at" names
 * this point, the backend's n-th arrival there (counted since the setting
 * was set) takes the advisory lock (SL_TEST_PAUSE_LOCK_KEY, n) in share
 * mode until the end of its transaction.  A test that holds that lock
 * (pg_advisory_lock(21324, n)) stops the backend there, sees it wait as a
 * lock wait (as the isolation tester does), does what it wants to race it,
 * and lets it go on by releasing the lock.  Arrivals whose lock nobody
 * holds go straight through.
 */
void
sl_test_pause(const char *point)
{
	if (synclog_debug_pause_at == NULL || strcmp(synclog_debug_pause_at, point) != 0)
		return;
	pause_arrivals++;
	(void) DirectFunctionCall2(pg_advisory_xact_lock_shared_int4,
							   Int32GetDatum(SL_TEST_PAUSE_LOCK_KEY),
							   Int32GetDatum(pause_arrivals));
}
#endif

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
							"much time after it was sealed.  0 turns the maximum off: such a log is kept "
							"as long as such a client exists.",
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

	DefineCustomIntVariable("synclog.client_retention",
							"How long an idle client keeps its watermark and its position.",
							"The background worker retires the watermark of a client whose newest entry "
							"is older than this (a retire entry; the client id is then new to the "
							"document) unless it acked since, and removes client positions not acked "
							"for this long.  0 turns this off: they are kept forever.",
							&synclog_client_retention_secs,
							0, 0, INT_MAX,
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

	DefineCustomIntVariable("synclog.max_group_size",
							"Largest total of deltas one transaction may append to one document.",
							"The entries one transaction appends to a document form a group that "
							"readers apply all at once, and a page of synclog.read2 never ends "
							"inside a group, so this bounds a page.",
							&synclog_max_group_kb,
							256 * 1024, 1, 1024 * 1024,
							PGC_SUSET, GUC_UNIT_KB,
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

	DefineCustomBoolVariable("synclog.debug_fail_vacuum",
							 "Testing only: the background worker's VACUUM fails with an error.",
							 "Lets tests check how the worker counts and reports a failed VACUUM.",
							 &synclog_debug_fail_vacuum,
							 false,
							 PGC_SIGHUP, GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("synclog.debug_fail_worker_start",
							 "Testing only: the launcher's per-database workers fail to start.",
							 "The launcher cancels each worker it registers and waits until the "
							 "postmaster has let go of it, so that tests can check how a round goes on "
							 "when a worker does not start.",
							 &synclog_debug_fail_worker_start,
							 false,
							 PGC_SIGHUP, GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("synclog.debug_pause_at",
							   "Testing only: the point in the code where this backend waits for a test's advisory lock.",
							   "See sl_test_pause in synclog.c.",
							   &synclog_debug_pause_at,
							   "",
							   PGC_SUSET, GUC_NOT_IN_SAMPLE,
							   NULL, assign_pause_at, NULL);
	DefineCustomIntVariable("synclog.debug_hint_block",
							"Testing only: the block an append looks in first for a document's row it remembers.",
							"-1 leaves the remembered place alone.  Lets a test send the look past "
							"the end of synclog.doc, as after a truncation.",
							&synclog_debug_hint_block,
							-1, -1, INT_MAX,
							PGC_SUSET, GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);
#endif

	MarkGUCPrefixReserved("synclog");
}

/* A number of seconds as an interval, days counted as days. */
static Datum
seconds_interval(int secs)
{
	Interval   *i = palloc0(sizeof(Interval));

	i->time = (int64) secs * USECS_PER_SEC;
	return DirectFunctionCall1(interval_justify_hours, IntervalPGetDatum(i));
}

/*
 * synclog.settings() returns record
 *
 * The settings a DBA compares the views with, typed, as this session sees
 * them: retention, retention_max, client_activity_window and
 * client_retention (intervals; 0 = off where README.md says so),
 * max_clients_per_doc, naptime, worker_paused, and the rotation thresholds
 * rotate_entries, rotate_bytes, rotate_age.  Being a function of this
 * library, it also works in a session that has not loaded the library
 * yet, where current_setting('synclog...') fails.  Takes no locks.
 */
Datum
synclog_settings(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		v[10];
	bool		n[10] = {false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	v[0] = seconds_interval(synclog_retention_secs);
	v[1] = seconds_interval(synclog_retention_max_secs);
	v[2] = seconds_interval(synclog_client_window_secs);
	v[3] = seconds_interval(synclog_client_retention_secs);
	v[4] = Int32GetDatum(synclog_max_clients_per_doc);
	v[5] = seconds_interval(synclog_naptime_secs);
	v[6] = BoolGetDatum(synclog_worker_paused);
	v[7] = Int64GetDatum(sl_threshold_entries());
	v[8] = Int64GetDatum(sl_threshold_bytes());
	v[9] = seconds_interval(synclog_rotate_age_secs);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), v, n)));
}

void
_PG_init(void)
{
	define_settings();

	if (process_shared_preload_libraries_in_progress)
		sl_register_launcher();
}
