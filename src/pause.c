/*
 * pause.c
 *
 * Keeping compaction away from a database whose tables are being restored
 * (PROTOCOL.md section 13, README "Backups and restores").  A logical
 * restore loads synclog's tables one by one; a rotation or a collection
 * that ran between two of them would fold entries onto a state that is
 * not there yet, or collect logs whose client positions are not loaded
 * yet.  So rotations (synclog.compact, compact_due, the worker) and
 * collections (synclog.gc, the worker) do nothing while
 *   - a pg_restore session is connected to the database (pg_restore names
 *     its sessions so; this covers -j, where several load at once), or
 *   - a DBA paused the database with synclog.pause() (other restore tools).
 *
 * Owns: synclog.pause, synclog.resume, synclog.paused, the synclog.pause
 * table (not dumped: a pause belongs to the database it was set in).
 * Must never: block on anything (the check reads shared backend status and
 * one small table), or let a confined role pause or resume.
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_pause);
PG_FUNCTION_INFO_V1(synclog_resume);
PG_FUNCTION_INFO_V1(synclog_paused);

/* What a restoring session calls itself (pg_restore's fallback_application_name). */
#define RESTORE_APPNAME "pg_restore"

/* The PID of another session of pg_restore in this database, or 0. */
static int
restore_session(void)
{
	int			n = pgstat_fetch_stat_numbackends();

	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(i);
		PgBackendStatus *be;

		if (local == NULL)
			continue;
		be = &local->backendStatus;
		if (be->st_procpid != MyProcPid && be->st_databaseid == MyDatabaseId &&
			be->st_appname != NULL && strcmp(be->st_appname, RESTORE_APPNAME) == 0)
			return be->st_procpid;
	}
	return 0;
}

/* The pause row: whether there is one, and its reason and time. */
static bool
pause_row(char **reason, TimestampTz *since)
{
	static SPIPlanPtr plan;
	bool		isnull;
	Datum		v;

	sl_exec(&plan, "SELECT reason, paused_at FROM synclog.pause",
			0, NULL, NULL, NULL, false, 1);
	if (SPI_processed == 0)
		return false;
	*reason = sl_col_text(0, 1);
	v = sl_col(0, 2, &isnull);
	*since = DatumGetTimestampTz(v);
	return true;
}

/*
 * Why compaction must leave this database alone right now, or NULL.  SPI
 * must be connected.  A fresh look every call (the backend status is read
 * anew once per transaction).
 */
const char *
sl_compaction_blocked(void)
{
	char	   *reason;
	TimestampTz since;
	int			pid;

	if (pause_row(&reason, &since))
		return psprintf("paused by synclog.pause() at %s%s%s",
						timestamptz_to_str(since),
						reason ? ": " : "", reason ? reason : "");
	pgstat_clear_snapshot();
	pid = restore_session();
	if (pid != 0)
		return psprintf("a pg_restore session (PID %d) is connected to the database",
						pid);
	return NULL;
}

/* Refuse what (an explicit rotation or collection) while compaction is blocked. */
void
sl_require_not_paused(const char *what)
{
	const char *why = sl_compaction_blocked();

	if (why != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s while synclog is paused in this database", what),
				 errdetail("Rotations and collections are paused: %s.", why),
				 errhint("Wait for the restore to finish; a pause set by synclog.pause() ends with synclog.resume().")));
}

/*
 * synclog.pause(reason text DEFAULT NULL) returns void
 *
 * Pauses rotations and collections in this database (the worker's, and
 * explicit ones, which fail with 55000) until synclog.resume(), for
 * example while a restore tool other than pg_restore loads the tables.
 * Pausing a paused database replaces the reason and the time.  Refused
 * (42501) for roles that synclog.grant_doc confines.
 *
 * Takes RowExclusiveLock on synclog.pause, and the row it writes.
 */
Datum
synclog_pause(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {TEXTOID, OIDOID};
	Datum		args[2];
	char		nulls[3] = "  ";

	sl_spi_begin();
	sl_require_unconfined(sl_caller(), "pause synclog");
	PreventCommandIfReadOnly("synclog.pause()");
	args[0] = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	if (PG_ARGISNULL(0))
		nulls[0] = 'n';
	args[1] = ObjectIdGetDatum(GetUserId());
	sl_exec(&plan,
			"INSERT INTO synclog.pause (reason, paused_by) VALUES ($1, $2::regrole) "
			"ON CONFLICT (one) DO UPDATE SET reason = excluded.reason, "
			"paused_by = excluded.paused_by, paused_at = now()",
			2, types, args, nulls, false, 0);
	sl_spi_end();
	PG_RETURN_VOID();
}

/*
 * synclog.resume() returns boolean
 *
 * Ends a pause set by synclog.pause(); returns whether there was one.
 * (A connected pg_restore session keeps compaction paused until it ends.)
 * Refused (42501) for roles that synclog.grant_doc confines.
 *
 * Takes RowExclusiveLock on synclog.pause, and the row it deletes.
 */
Datum
synclog_resume(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan;
	bool		was;

	sl_spi_begin();
	sl_require_unconfined(sl_caller(), "resume synclog");
	PreventCommandIfReadOnly("synclog.resume()");
	sl_exec(&plan, "DELETE FROM synclog.pause", 0, NULL, NULL, NULL, false, 0);
	was = SPI_processed > 0;
	sl_spi_end();
	PG_RETURN_BOOL(was);
}

/*
 * synclog.paused(OUT paused boolean, OUT reason text, OUT since timestamptz) returns record
 *
 * Whether rotations and collections are paused in this database now, why
 * (synclog.pause()'s reason, or the pg_restore session), and since when
 * (NULL for a pg_restore session).
 *
 * Takes AccessShareLock on synclog.pause; no row locks.
 */
Datum
synclog_paused(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, true, true};
	char	   *reason;
	TimestampTz since;
	const char *why;
	MemoryContext caller = CurrentMemoryContext;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	sl_spi_begin();
	why = sl_compaction_blocked();
	values[0] = BoolGetDatum(why != NULL);
	if (why != NULL)
	{
		/* SPI's memory goes with the connection: copy what we return */
		MemoryContext spi = MemoryContextSwitchTo(caller);

		values[1] = CStringGetTextDatum(why);
		nulls[1] = false;
		MemoryContextSwitchTo(spi);
	}
	if (pause_row(&reason, &since))
	{
		values[2] = TimestampTzGetDatum(since);
		nulls[2] = false;
	}
	sl_spi_end();
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
