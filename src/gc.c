/*
 * gc.c
 *
 * Garbage collection of sealed logs: their entries, and the state versions
 * that no retained snapshot can see any more.
 *
 * Owns: synclog.gc and sl_collect_log (which the background worker calls).
 * Must never: collect the active or the immediately previous log (clients
 * that just reached a marker switch over by reading it), collect a log
 * while an older one of the same document is still retained (the
 * version clean-up below relies on collecting oldest first), or scan a
 * document's whole state: the work follows the collected log's range.
 *
 * Why the clean-up is correct: the versions a rotation writes carry LSNs
 * inside the log it sealed.  Once that log is gone, every retained
 * snapshot is at or after its end, so any version those writes supersede
 * is invisible everywhere, and a tombstone among them hides nothing.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_gc);

/*
 * Collect one log, which the caller has locked and checked to be the
 * oldest retained log of its document.  Returns false if a concurrent
 * collector got there first.
 */
bool
sl_collect_log(const char *log_id, int64 doc_id, int64 base_lsn, int64 end_lsn)
{
	static SPIPlanPtr plan_mark;
	static SPIPlanPtr plan_entries;
	static SPIPlanPtr plan_superseded;
	static SPIPlanPtr plan_tombstones;
	Oid			t1[1] = {TEXTOID};
	Datum		v1[1] = {CStringGetTextDatum(log_id)};
	Oid			t3[3] = {INT8OID, INT8OID, INT8OID};
	Datum		v3[3] = {Int64GetDatum(doc_id), Int64GetDatum(base_lsn),
						 Int64GetDatum(end_lsn)};

	sl_exec(&plan_mark,
			"UPDATE synclog.log SET state = 'collected', collected_at = now() "
			"WHERE log_id = $1 AND state = 'retired'",
			1, t1, v1, NULL, false, 0);
	if (SPI_processed == 0)
		return false;
	sl_exec(&plan_entries,
			"DELETE FROM synclog.entry WHERE doc_id = $1 AND lsn > $2 AND lsn <= $3",
			3, t3, v3, NULL, false, 0);
	sl_exec(&plan_superseded,
			"DELETE FROM synclog.kv v USING synclog.kv w "
			"WHERE w.doc_id = $1 AND w.lsn > $2 AND w.lsn <= $3 "
			"AND v.doc_id = $1 AND v.ns = w.ns AND v.key = w.key AND v.lsn < w.lsn",
			3, t3, v3, NULL, false, 0);
	sl_exec(&plan_tombstones,
			"DELETE FROM synclog.kv WHERE doc_id = $1 AND lsn > $2 AND lsn <= $3 "
			"AND value IS NULL",
			3, t3, v3, NULL, false, 0);
	return true;
}

Datum
synclog_gc(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan;
	TimestampTz cutoff;
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		args[1];
	int64		collected = 0;
	SPITupleTable *cands;
	uint64		n;
	int64		skip_doc = -1;

	cutoff = TimestampTzPlusMilliseconds(GetCurrentTransactionStartTimestamp(),
										 -(int64) synclog_retention_secs * 1000);
	args[0] = TimestampTzGetDatum(cutoff);

	sl_spi_begin();

	/*
	 * Lock in (doc, generation) order, the order every locker of log rows
	 * follows, so concurrent collectors and drop_doc queue instead of
	 * deadlocking.  A log is a candidate only if every older log of its
	 * document is already collected.
	 */
	sl_exec(&plan,
			"SELECT l.log_id, l.doc_id, l.base_lsn, l.end_lsn, "
			"  NOT EXISTS (SELECT 1 FROM synclog.log o WHERE o.doc_id = l.doc_id "
			"    AND o.generation < l.generation AND o.state <> 'collected') "
			"FROM synclog.log l WHERE l.state = 'retired' AND l.sealed_at < $1 "
			"ORDER BY l.doc_id, l.generation FOR UPDATE OF l",
			1, types, args, NULL, false, 0);
	cands = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		char	   *log_id = SPI_getvalue(cands->vals[i], cands->tupdesc, 1);
		int64		doc_id = DatumGetInt64(SPI_getbinval(cands->vals[i], cands->tupdesc, 2, &isnull));
		int64		base = DatumGetInt64(SPI_getbinval(cands->vals[i], cands->tupdesc, 3, &isnull));
		int64		end = DatumGetInt64(SPI_getbinval(cands->vals[i], cands->tupdesc, 4, &isnull));
		bool		oldest = DatumGetBool(SPI_getbinval(cands->vals[i], cands->tupdesc, 5, &isnull));

		CHECK_FOR_INTERRUPTS();
		if (doc_id == skip_doc)
			continue;
		/* Older logs of this document collected earlier in this loop count. */
		if (!oldest && i > 0 &&
			DatumGetInt64(SPI_getbinval(cands->vals[i - 1], cands->tupdesc, 2, &isnull)) == doc_id)
			oldest = true;
		if (!oldest || !sl_collect_log(log_id, doc_id, base, end))
		{
			skip_doc = doc_id;
			continue;
		}
		collected++;
	}
	sl_spi_end();
	PG_RETURN_INT64(collected);
}
