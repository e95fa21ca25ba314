/*
 * policy.c
 *
 * When a document is due for rotation, and what clients tell us about
 * where they are.
 *
 * Owns: the thresholds appends apply (sl_threshold_*), choosing due
 * documents (sl_select_due), synclog.compact_due, per-document overrides
 * (synclog.set_policy, synclog.clear_policy), client positions and the
 * switch-over counters (synclog.ack), and the LOG line of a rotation.
 * Must never: scan every document to find due ones; candidates come from
 * the partial indexes on synclog.doc (due flag, first-append time), so a
 * round costs in proportion to what is due.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_compact_due);
PG_FUNCTION_INFO_V1(synclog_set_policy);
PG_FUNCTION_INFO_V1(synclog_clear_policy);
PG_FUNCTION_INFO_V1(synclog_ack);
PG_FUNCTION_INFO_V1(synclog_rotation_due);

int64
sl_threshold_entries(void)
{
	return (int64) synclog_rotate_entries;
}

int64
sl_threshold_bytes(void)
{
	return (int64) synclog_rotate_size_kb * 1024;
}

/*
 * The full due test, applied to the few candidates the indexes give.  A
 * document flagged due under thresholds that were raised since is not due
 * any more; sl_select_due clears such flags.
 */
#define DUE_TEST \
	"((coalesce(d.rotate_entries, $1) > 0 AND d.head_lsn - d.active_base >= coalesce(d.rotate_entries, $1)) " \
	" OR (coalesce(d.rotate_bytes, $2) > 0 AND d.active_bytes >= coalesce(d.rotate_bytes, $2)) " \
	" OR (coalesce(d.rotate_age, make_interval(secs => $3)) > '0'::interval " \
	"     AND now() - d.first_append_at >= coalesce(d.rotate_age, make_interval(secs => $3))))"

List *
sl_select_due(int max_docs)
{
	static SPIPlanPtr plan_clear;
	static SPIPlanPtr plan_pick;
	Oid			types[5] = {INT8OID, INT8OID, FLOAT8OID, FLOAT8OID, INT4OID};
	Datum		args[5];
	List	   *due = NIL;

	args[0] = Int64GetDatum(sl_threshold_entries());
	args[1] = Int64GetDatum(sl_threshold_bytes());
	args[2] = Float8GetDatum((double) synclog_rotate_age_secs);
	args[3] = Float8GetDatum((double) synclog_rotate_min_interval_secs);
	args[4] = Int32GetDatum(max_docs);

	/*
	 * A row an append holds (an open writer transaction) is skipped, not
	 * waited for: its flag is cleared in a later round.
	 */
	sl_exec(&plan_clear,
			"WITH stale AS ("
			"  SELECT u.doc_id FROM synclog.doc u JOIN synclog.doc_head d USING (doc_id) "
			"   WHERE d.due AND NOT (d.auto_rotate AND " DUE_TEST ") "
			"     FOR NO KEY UPDATE OF u SKIP LOCKED) "
			"UPDATE synclog.doc u SET due = false FROM stale WHERE u.doc_id = stale.doc_id",
			3, types, args, NULL, false, 0);

	/*
	 * Each branch of the union is one partial index: documents flagged by
	 * an append, documents aged under the global setting, and the few with
	 * an age of their own.
	 */
	sl_exec(&plan_pick,
			"WITH c AS ("
			"  SELECT doc_id FROM synclog.doc WHERE due "
			"  UNION "
			"  SELECT doc_id FROM synclog.doc "
			"   WHERE first_append_at IS NOT NULL AND rotate_age IS NULL "
			"     AND $3 > 0 AND first_append_at <= now() - make_interval(secs => $3) "
			"  UNION "
			"  SELECT doc_id FROM synclog.doc "
			"   WHERE first_append_at IS NOT NULL AND rotate_age IS NOT NULL "
			"     AND now() - first_append_at >= rotate_age) "
			"SELECT d.doc_id, d.name FROM synclog.doc_head d JOIN c USING (doc_id) "
			"WHERE d.auto_rotate AND d.head_lsn > d.active_base "
			"  AND d.active_since <= now() - make_interval(secs => $4) "
			"  AND " DUE_TEST " "
			"ORDER BY d.active_since LIMIT $5",
			5, types, args, NULL, false, 0);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		SlDue	   *d;
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		d = palloc(sizeof(SlDue));
		MemoryContextSwitchTo(old);
		d->doc_id = sl_col_int64(i, 1);
		d->name = MemoryContextStrdup(TopTransactionContext, sl_col_text(i, 2));
		old = MemoryContextSwitchTo(TopTransactionContext);
		due = lappend(due, d);
		MemoryContextSwitchTo(old);
	}
	return due;
}

/*
 * synclog.rotation_due(active_entries bigint, active_bytes bigint,
 *                      first_append_at timestamptz, rotate_entries bigint,
 *                      rotate_bytes bigint, rotate_age interval,
 *                      auto_rotate boolean) returns boolean
 *
 * Whether a document whose active log has these figures, with these
 * overrides (NULL: follow the setting), is due for automatic rotation now:
 * DUE_TEST above, all three thresholds, for synclog.status.  (The worker
 * also waits synclog.rotate_min_interval after a rotation.)  NULL figures
 * count as none.  Reads the settings; takes no locks.
 */
Datum
synclog_rotation_due(PG_FUNCTION_ARGS)
{
	int64		entries = PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0);
	int64		bytes = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);
	int64		max_entries = PG_ARGISNULL(3) ? sl_threshold_entries() : PG_GETARG_INT64(3);
	int64		max_bytes = PG_ARGISNULL(4) ? sl_threshold_bytes() : PG_GETARG_INT64(4);
	Interval   *max_age;
	Interval	setting;
	Interval	zero;

	if (PG_ARGISNULL(6) || !PG_GETARG_BOOL(6))
		PG_RETURN_BOOL(false);
	if ((max_entries > 0 && entries >= max_entries) ||
		(max_bytes > 0 && bytes >= max_bytes))
		PG_RETURN_BOOL(true);
	if (PG_ARGISNULL(2))
		PG_RETURN_BOOL(false);

	/*
	 * As DUE_TEST: the age against the threshold (the setting as
	 * make_interval(secs => ...) gives it), never a timestamp sum.
	 */
	memset(&zero, 0, sizeof(zero));
	setting = zero;
	setting.time = (int64) synclog_rotate_age_secs * USECS_PER_SEC;
	max_age = PG_ARGISNULL(5) ? &setting : PG_GETARG_INTERVAL_P(5);
	if (!DatumGetBool(DirectFunctionCall2(interval_gt, IntervalPGetDatum(max_age),
										  IntervalPGetDatum(&zero))))
		PG_RETURN_BOOL(false);
	PG_RETURN_DATUM(DirectFunctionCall2(interval_ge,
										DirectFunctionCall2(timestamp_mi,
															TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
															PG_GETARG_DATUM(2)),
										IntervalPGetDatum(max_age)));
}

void
sl_log_rotation(const char *doc, const char *new_log, const SlRotation *r,
				bool at_log)
{
	int64		entries = r->seal_lsn - r->base_lsn;

	ereport(at_log ? LOG : DEBUG1,
			(errmsg("rotated document \"%s\"", doc),
			 errdetail_plural("Sealed log %s at LSN " INT64_FORMAT " after " INT64_FORMAT " entry (" INT64_FORMAT " bytes). New log: %s. Snapshot items: %llu (%llu bytes). Time: %.1f ms.",
							  "Sealed log %s at LSN " INT64_FORMAT " after " INT64_FORMAT " entries (" INT64_FORMAT " bytes). New log: %s. Snapshot items: %llu (%llu bytes). Time: %.1f ms.",
							  (unsigned long) entries,
							  r->old_log, r->seal_lsn, entries, r->log_bytes,
							  new_log,
							  (unsigned long long) r->state_items,
							  (unsigned long long) r->state_bytes,
							  r->elapsed_ms)));
}

/*
 * Bound lock waits by synclog.rotation_lock_timeout (when it is set and
 * lock_timeout is not already shorter) until sl_pop_lock_timeout: an
 * automatic rotation skips a document that a writer holds instead of
 * waiting for it with every other due document behind.
 */
int
sl_push_lock_timeout(void)
{
	int			nest = NewGUCNestLevel();

	if (synclog_rotation_lock_timeout_ms > 0 &&
		(LockTimeout == 0 || LockTimeout > synclog_rotation_lock_timeout_ms))
	{
		char		value[32];

		snprintf(value, sizeof(value), "%d", synclog_rotation_lock_timeout_ms);
		(void) set_config_option("lock_timeout", value, PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	return nest;
}

void
sl_pop_lock_timeout(int nest)
{
	AtEOXact_GUC(true, nest);
}

/*
 * Rotate one document in a subtransaction.  A document that fails (dropped
 * meanwhile, a serialization failure) is reported and skipped, so that one
 * bad document does not stop a round; cancellation is not swallowed.
 */
static bool
rotate_one_guarded(const char *name)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	bool		rotated = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		SlRotation	stats;
		char	   *new_log = sl_new_log_id();
		int			nest = sl_push_lock_timeout();

		sl_spi_begin();
		rotated = sl_compact_doc(cstring_to_text(name), new_log, &stats);
		sl_spi_end();
		sl_pop_lock_timeout(nest);
		if (rotated)
			sl_log_rotation(name, new_log, &stats, false);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		/*
		 * Re-raised only now, outside the subtransaction: raised inside it,
		 * the error would leave the session in a failed transaction block
		 * even after an autocommit statement.
		 */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(edata);
		/* The cause goes into the detail, as postgres_fdw reports libpq's. */
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("could not rotate document \"%s\"", name),
				 errdetail_internal("%s", edata->message),
				 edata->hint ? errhint("%s", edata->hint) : 0));
		FreeErrorData(edata);
		rotated = false;
	}
	PG_END_TRY();
	return rotated;
}

/*
 * synclog.compact_due(max_docs integer DEFAULT 100) returns integer
 *
 * Rotates up to max_docs documents that the policy says are due, each in a
 * subtransaction of its own (a document that fails is reported with a
 * WARNING and skipped), and returns how many it rotated.  Refused (42501)
 * to a confined caller.  While synclog is paused in the database (a
 * restore, see pause.c) it rotates nothing, returns 0 and says why in a
 * NOTICE.
 *
 * Locks: the due flags it clears are updated under FOR NO KEY UPDATE row
 * locks taken with SKIP LOCKED; each rotation takes what synclog.compact
 * takes (see compact.c), its lock waits bounded by
 * synclog.rotation_lock_timeout.
 */
Datum
synclog_compact_due(PG_FUNCTION_ARGS)
{
	int32		max_docs = sl_arg_positive_int(fcinfo, 0, "max_docs");
	List	   *due;
	ListCell   *lc;
	int32		rotated = 0;
	const char *why;

	sl_spi_begin();
	sl_require_unconfined(sl_caller(), "rotate documents database-wide");
	why = sl_compaction_blocked();
	if (why != NULL)
	{
		ereport(NOTICE,
				(errmsg("synclog is paused in this database: no documents rotated"),
				 errdetail("Rotations and collections are paused: %s.", why)));
		sl_spi_end();
		PG_RETURN_INT32(0);
	}
	due = sl_select_due(max_docs);
	sl_spi_end();
	foreach(lc, due)
	{
		SlDue	   *d = (SlDue *) lfirst(lc);

		CHECK_FOR_INTERRUPTS();
		if (rotate_one_guarded(d->name))
			rotated++;
	}
	PG_RETURN_INT32(rotated);
}

static void
check_override(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (!PG_ARGISNULL(argno) && PG_GETARG_INT64(argno) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" must not be negative", what),
				 errdetail("The value given was " INT64_FORMAT ".",
						   PG_GETARG_INT64(argno)),
				 errhint("Use 0 to turn this threshold off for the document, NULL to follow the setting.")));
}

/*
 * Take the document lock before recomputing the due flag, so that no
 * append is between reading the old thresholds and committing its entry:
 * the flag then counts every entry.  Unknown documents are reported by the
 * UPDATE that follows.
 */
static void
lock_by_name(text *doc, const char *cmdname)
{
	SlDoc		d;

	/* The lock is refused on a standby; say what SQL would say instead. */
	PreventCommandIfReadOnly(cmdname);
	sl_find_doc(doc, &d, false);
	(void) sl_lock_document(d.doc_id);
}

/*
 * synclog.set_policy(doc text, rotate_entries bigint, rotate_bytes bigint,
 *                    rotate_age interval, auto_rotate boolean) returns void
 *
 * Sets the document's rotation thresholds (NULL: follow the setting, 0:
 * off) and whether the worker rotates it.  Overrides take effect at once:
 * the due flag is recomputed under the new thresholds in the same
 * statement.
 *
 * Locks the document's row (FOR NO KEY UPDATE, the lock appends take) and
 * updates it; RowExclusiveLock on synclog.doc.
 */
Datum
synclog_set_policy(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	static SPIPlanPtr plan;
	Oid			types[7] = {TEXTOID, INT8OID, INT8OID, INTERVALOID, BOOLOID, INT8OID, INT8OID};
	Datum		args[7];
	char		nulls[8] = "       ";

	check_override(fcinfo, 1, "rotate_entries");
	check_override(fcinfo, 2, "rotate_bytes");
	if (!PG_ARGISNULL(3) &&
		DatumGetBool(DirectFunctionCall2(interval_lt, PG_GETARG_DATUM(3),
										 PointerGetDatum(palloc0(sizeof(Interval))))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" must not be negative", "rotate_age"),
				 errhint("Use 0 to turn this threshold off for the document, NULL to follow the setting.")));
	if (PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("\"%s\" must not be NULL", "auto_rotate")));

	args[0] = PointerGetDatum(doc);
	for (int i = 1; i <= 3; i++)
	{
		args[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		if (PG_ARGISNULL(i))
			nulls[i] = 'n';
	}
	args[4] = PG_GETARG_DATUM(4);
	args[5] = Int64GetDatum(sl_threshold_entries());
	args[6] = Int64GetDatum(sl_threshold_bytes());

	sl_spi_begin();
	sl_require_doc(doc, true);
	lock_by_name(doc, "synclog.set_policy()");
	sl_exec(&plan,
			"UPDATE synclog.doc u SET rotate_entries = $2, rotate_bytes = $3, "
			"rotate_age = $4, auto_rotate = $5, "
			"due = $5 AND ((coalesce($2, $6) > 0 AND h.head_lsn - h.active_base >= coalesce($2, $6)) "
			"          OR (coalesce($3, $7) > 0 AND h.active_bytes >= coalesce($3, $7))) "
			"FROM synclog.doc_head h WHERE h.doc_id = u.doc_id AND u.name = $1",
			7, types, args, nulls, false, 0);
	if (SPI_processed == 0)
		sl_unknown_doc(doc);
	sl_spi_end();
	PG_RETURN_VOID();
}

/*
 * synclog.clear_policy(doc text) returns void
 *
 * Drops the document's overrides: it follows the settings again and is
 * rotated automatically.
 *
 * Locks and updates the document's row as set_policy does.
 */
Datum
synclog_clear_policy(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	static SPIPlanPtr plan;
	Oid			types[3] = {TEXTOID, INT8OID, INT8OID};
	Datum		args[3] = {PointerGetDatum(doc),
						   Int64GetDatum(sl_threshold_entries()),
						   Int64GetDatum(sl_threshold_bytes())};

	sl_spi_begin();
	sl_require_doc(doc, true);
	lock_by_name(doc, "synclog.clear_policy()");
	sl_exec(&plan,
			"UPDATE synclog.doc u SET rotate_entries = NULL, rotate_bytes = NULL, "
			"rotate_age = NULL, auto_rotate = true, "
			"due = ($2 > 0 AND h.head_lsn - h.active_base >= $2) "
			"   OR ($3 > 0 AND h.active_bytes >= $3) "
			"FROM synclog.doc_head h WHERE h.doc_id = u.doc_id AND u.name = $1",
			3, types, args, NULL, false, 0);
	if (SPI_processed == 0)
		sl_unknown_doc(doc);
	sl_spi_end();
	PG_RETURN_VOID();
}

/*
 * A new client position must fit under synclog.max_clients_per_doc.  Two
 * first acks racing each other can both pass, so the bound holds up to the
 * number of concurrent sessions.
 */
static void
check_client_room(int64 doc_id, text *doc)
{
	static SPIPlanPtr plan;
	Oid			t[2] = {INT8OID, INT4OID};
	Datum		v[2] = {Int64GetDatum(doc_id), Int32GetDatum(synclog_max_clients_per_doc)};

	sl_exec(&plan,
			"SELECT count(*) FROM (SELECT 1 FROM synclog.client_pos "
			"WHERE doc_id = $1 LIMIT $2) c",
			2, t, v, NULL, false, 0);
	if (sl_col_int64(0, 1) >= synclog_max_clients_per_doc)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many clients for document \"%s\"", sl_doc_cstring(doc)),
				 errdetail("The document has positions of %d or more clients, the most \"synclog.max_clients_per_doc\" allows.",
						   synclog_max_clients_per_doc),
				 errhint("Ack with a client id the document already has.")));
}

/*
 * synclog.ack(doc text, client_id text, log_id text, lsn bigint) returns void
 * synclog.ack2(doc text, client_id text, log_id text, lsn bigint, chain bytea) returns void
 *
 * A client reports its position.  The role that first records a client's
 * position owns it: another role (not a member of it) gets 42501, so no
 * role can move another's client, pin logs through it or bump the counters
 * with it; a new client beyond synclog.max_clients_per_doc gets 54000.  Moving to another log counts as a switch
 * by marker when the client came from that log's direct predecessor while
 * it was still served, and as a download otherwise (including a new client
 * that starts from a snapshot).  ack2 first checks the position's chain
 * value (SL006 if it is not this server's, see chain_sql.c).
 *
 * Locks: KEY SHARE on the log's row and the document's row until commit
 * (so gc passes over the log and drop_doc waits); the client's
 * synclog.client_pos row FOR UPDATE, then upserted; the document's
 * synclog.doc_stats row is upserted when the client moved.
 */
Datum
synclog_ack(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	text	   *client_id;
	text	   *log_id;
	int64		lsn;
	static SPIPlanPtr plan_prev;
	static SPIPlanPtr plan_upsert;
	static SPIPlanPtr plan_marker;
	static SPIPlanPtr plan_download;
	SlDoc		d;
	SlLog		l;
	int64		end;
	bool		moved = false;
	bool		by_marker = false;
	bytea	   *chain;

	client_id = sl_arg_client_id(fcinfo, 1);
	log_id = sl_arg_log_id(fcinfo, 2);
	lsn = sl_arg_lsn(fcinfo, 3, "lsn");
	/* synclog.ack2: the position comes with its chain value */
	chain = PG_NARGS() > 4 ? sl_arg_chain(fcinfo, 4) : NULL;

	sl_spi_begin();
	sl_require_doc(doc, false);
	sl_find_doc(doc, &d, false);
	sl_find_log(doc, &d, log_id, &l, false, false);
	{
		/*
		 * Hold the log row and the document row (KEY SHARE, logs first, the
		 * order drop_doc and rotations use) until commit: gc (FOR UPDATE,
		 * SKIP LOCKED) then passes over this log, and drop_doc waits for us;
		 * if either got there first, we see its result here.
		 */
		static SPIPlanPtr plan_lock_log;
		static SPIPlanPtr plan_lock_doc;
		Oid			tl[1] = {TEXTOID};
		Datum		vl[1] = {CStringGetTextDatum(l.log_id)};
		Oid			td[1] = {INT8OID};
		Datum		vd[1] = {Int64GetDatum(d.doc_id)};

		sl_exec(&plan_lock_log,
				"SELECT state FROM synclog.log WHERE log_id = $1 FOR KEY SHARE",
				1, tl, vl, NULL, false, 0);
		if (SPI_processed > 0)
			sl_exec(&plan_lock_doc,
					"SELECT 1 FROM synclog.doc WHERE doc_id = $1 FOR KEY SHARE",
					1, td, vd, NULL, false, 0);
		if (SPI_processed == 0)
			sl_unknown_doc(doc);
		sl_exec(&plan_lock_log,
				"SELECT state FROM synclog.log WHERE log_id = $1 FOR KEY SHARE",
				1, tl, vl, NULL, false, 0);
		if (strcmp(sl_col_text(0, 1), SL_LOG_COLLECTED) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_SYNCLOG_LOG_COLLECTED),
					 errmsg("log \"%s\" of document \"%s\" has been garbage-collected",
							l.log_id, sl_doc_cstring(doc)),
					 errhint("Drop the local log and download the snapshot of synclog.current_log().")));
	}
	end = l.end_lsn >= 0 ? l.end_lsn : d.head_lsn;
	sl_check_position(&l, end, lsn, "lsn");
	if (chain != NULL)
		sl_check_chain(doc, d.doc_id, &l, lsn, chain, false);

	{
		Oid			t[2] = {INT8OID, TEXTOID};
		Datum		v[2] = {Int64GetDatum(d.doc_id), PointerGetDatum(client_id)};

		sl_exec(&plan_prev,
				"SELECT c.log_id, p.next_log_id, p.state, c.owner FROM synclog.client_pos c "
				"LEFT JOIN synclog.log p ON p.log_id = c.log_id "
				"WHERE c.doc_id = $1 AND c.client_id = $2 FOR UPDATE OF c",
				2, t, v, NULL, false, 0);
		if (SPI_processed == 0)
		{
			check_client_room(d.doc_id, doc);
			moved = l.base_lsn > 0;
		}
		else
		{
			bool		isnull;
			Datum		owner = sl_col(0, 4, &isnull);
			char	   *prev = sl_col_text(0, 1);
			char	   *prev_next = sl_col_text(0, 2);
			char	   *prev_state = sl_col_text(0, 3);

			if (!isnull && !has_privs_of_role(sl_caller(), DatumGetObjectId(owner)))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("permission denied for client \"%s\" of document \"%s\"",
								text_to_cstring(client_id), sl_doc_cstring(doc)),
						 errdetail("Another role recorded this client's position.")));

			moved = strcmp(prev, l.log_id) != 0;
			by_marker = moved && prev_next != NULL &&
				strcmp(prev_next, l.log_id) == 0 &&
				prev_state != NULL && strcmp(prev_state, SL_LOG_COLLECTED) != 0;
		}
	}
	{
		Oid			t[5] = {INT8OID, TEXTOID, TEXTOID, INT8OID, OIDOID};
		Datum		v[5] = {Int64GetDatum(d.doc_id), PointerGetDatum(client_id),
							CStringGetTextDatum(l.log_id), Int64GetDatum(lsn),
							ObjectIdGetDatum(sl_caller())};

		sl_exec(&plan_upsert,
				"INSERT INTO synclog.client_pos (doc_id, client_id, log_id, lsn, owner) "
				"VALUES ($1, $2, $3, $4, $5::regrole) ON CONFLICT (doc_id, client_id) DO UPDATE "
				"SET log_id = excluded.log_id, lsn = excluded.lsn, acked_at = now(), "
				"owner = coalesce(synclog.client_pos.owner, excluded.owner)",
				5, t, v, NULL, false, 0);
	}
	if (moved)
	{
		Oid			t[1] = {INT8OID};
		Datum		v[1] = {Int64GetDatum(d.doc_id)};

		if (by_marker)
			sl_exec(&plan_marker,
					"INSERT INTO synclog.doc_stats AS s (doc_id, marker_switches) VALUES ($1, 1) "
					"ON CONFLICT (doc_id) DO UPDATE SET marker_switches = s.marker_switches + 1",
					1, t, v, NULL, false, 0);
		else
			sl_exec(&plan_download,
					"INSERT INTO synclog.doc_stats AS s (doc_id, downloads) VALUES ($1, 1) "
					"ON CONFLICT (doc_id) DO UPDATE SET downloads = s.downloads + 1",
					1, t, v, NULL, false, 0);
	}
	sl_spi_end();
	PG_RETURN_VOID();
}
