/*
 * gc.c
 *
 * Garbage collection of sealed logs: their entries, and the state versions
 * that no retained snapshot can see any more.
 *
 * Owns: synclog.gc and sl_collect_next (which the background worker calls
 * once per transaction), the retention rules, and the collection counters.
 * Must never: collect the active or the immediately previous log (clients
 * that just reached a marker switch over by reading it), collect a log
 * while an older one of the same document is still retained (the version
 * clean-up below relies on collecting oldest first), or scan a document's
 * whole state: the work follows the collected log's range.
 *
 * Retention: a retired log (two or more generations back) goes once it was
 * sealed more than synclog.retention ago and no client that acked within
 * synclog.client_activity_window still sits in it; after
 * synclog.retention_max it goes whoever sits in it.
 *
 * Why the clean-up is correct: the versions a rotation writes carry LSNs
 * inside the log it sealed.  Once that log is gone, every retained
 * snapshot is at or after its end, so any version those writes supersede
 * is invisible everywhere, and a tombstone among them hides nothing.  The
 * log's own versions stay (they are the state at its end); they hold
 * copies of their values, so all of the log's entries go.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_gc);

static TimestampTz
ago(int secs)
{
	return TimestampTzPlusMilliseconds(GetCurrentTransactionStartTimestamp(),
									   -(int64) secs * 1000);
}

bool
sl_collect_next(bool at_log)
{
	static SPIPlanPtr plan_pick;
	static SPIPlanPtr plan_mark;
	static SPIPlanPtr plan_entries;
	static SPIPlanPtr plan_superseded;
	static SPIPlanPtr plan_tombstones;
	static SPIPlanPtr plan_clients;
	static SPIPlanPtr plan_stats;
	Oid			tp[3] = {TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		vp[3];
	char		np[4] = "   ";
	char	   *log_id;
	char	   *doc;
	int64		doc_id,
				base,
				end,
				entries,
				cut_off;
	TimestampTz start = GetCurrentTimestamp();

	vp[0] = TimestampTzGetDatum(ago(synclog_retention_secs));
	/* retention_max 0 means no hard maximum: a NULL cutoff matches nothing. */
	if (synclog_retention_max_secs > 0)
		vp[1] = TimestampTzGetDatum(ago(synclog_retention_max_secs));
	else
		np[1] = 'n';
	vp[2] = TimestampTzGetDatum(ago(synclog_client_window_secs));

	/*
	 * SKIP LOCKED lets several collectors (the worker, a cron job) run at
	 * once; the oldest-first condition then makes a collector pass over a
	 * document whose older log another one is collecting.
	 */
	sl_exec(&plan_pick,
			"SELECT l.log_id, l.doc_id, l.base_lsn, l.end_lsn, d.name "
			"FROM synclog.log l JOIN synclog.doc d USING (doc_id) "
			"WHERE l.state = 'retired' AND l.sealed_at < $1 "
			"  AND NOT EXISTS (SELECT 1 FROM synclog.log o WHERE o.doc_id = l.doc_id "
			"                  AND o.generation < l.generation AND o.state <> 'collected') "
			"  AND (l.sealed_at < $2 OR NOT EXISTS ("
			"       SELECT 1 FROM synclog.client_pos c "
			"       WHERE c.log_id = l.log_id AND c.acked_at > $3)) "
			"ORDER BY l.sealed_at LIMIT 1 FOR UPDATE OF l SKIP LOCKED",
			3, tp, vp, np, false, 0);
	if (SPI_processed == 0)
		return false;
	log_id = sl_col_text(0, 1);
	doc_id = sl_col_int64(0, 2);
	base = sl_col_int64(0, 3);
	end = sl_col_int64(0, 4);
	doc = sl_col_text(0, 5);

	{
		Oid			t1[1] = {TEXTOID};
		Datum		v1[1] = {CStringGetTextDatum(log_id)};

		sl_exec(&plan_mark,
				"UPDATE synclog.log SET state = 'collected', collected_at = now() "
				"WHERE log_id = $1 AND state = 'retired'",
				1, t1, v1, NULL, false, 0);
		if (SPI_processed == 0)
			return false;
	}
	{
		Oid			t3[3] = {INT8OID, INT8OID, INT8OID};
		Datum		v3[3] = {Int64GetDatum(doc_id), Int64GetDatum(base),
							 Int64GetDatum(end)};

		/*
		 * Versions the collected log's rotation superseded are invisible
		 * to every retained snapshot now.
		 */
		sl_exec(&plan_superseded,
				"DELETE FROM synclog.kv v USING synclog.kv w "
				"WHERE w.doc_id = $1 AND w.lsn > $2 AND w.lsn <= $3 "
				"AND v.doc_id = $1 AND v.ns = w.ns AND v.key = w.key AND v.lsn < w.lsn",
				3, t3, v3, NULL, false, 0);
		sl_exec(&plan_tombstones,
				"DELETE FROM synclog.kv WHERE doc_id = $1 AND lsn > $2 AND lsn <= $3 "
				"AND kind = 'd'",
				3, t3, v3, NULL, false, 0);
		/* Versions hold copies of their values: the entries all go. */
		sl_exec(&plan_entries,
				"DELETE FROM synclog.entry WHERE doc_id = $1 AND lsn > $2 AND lsn <= $3",
				3, t3, v3, NULL, false, 0);
		entries = (int64) SPI_processed;
	}
	{
		/* Clients still in the log when it went had to download. */
		Oid			t2[2] = {INT8OID, TEXTOID};
		Oid			t3s[2] = {INT8OID, INT8OID};
		Datum		v2[2] = {Int64GetDatum(doc_id), CStringGetTextDatum(log_id)};

		sl_exec(&plan_clients,
				"SELECT count(*) FROM synclog.client_pos WHERE log_id = $2 AND doc_id = $1",
				2, t2, v2, NULL, false, 0);
		cut_off = sl_col_int64(0, 1);
		v2[1] = Int64GetDatum(cut_off);
		sl_exec(&plan_stats,
				"INSERT INTO synclog.doc_stats AS s (doc_id, logs_collected, cut_off) "
				"VALUES ($1, 1, $2) ON CONFLICT (doc_id) DO UPDATE SET "
				"logs_collected = s.logs_collected + 1, cut_off = s.cut_off + $2",
				2, t3s, v2, NULL, false, 0);
	}

	if (at_log)
		ereport(LOG,
				(errmsg("synclog: collected log %s of document \"%s\": LSNs " INT64_FORMAT "..." INT64_FORMAT ", " INT64_FORMAT " entries, %.1f ms",
						log_id, doc, base + 1, end, entries,
						(double) (GetCurrentTimestamp() - start) / 1000.0),
				 cut_off > 0 ?
				 errdetail("%lld client(s) were still in this log and must download a snapshot.",
						   (long long) cut_off) : 0));
	return true;
}

Datum
synclog_gc(PG_FUNCTION_ARGS)
{
	int64		collected = 0;

	sl_spi_begin();
	while (sl_collect_next(false))
	{
		CHECK_FOR_INTERRUPTS();
		collected++;
	}
	sl_spi_end();
	PG_RETURN_INT64(collected);
}
