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
 * clean-up below relies on collecting oldest first), scan a document's
 * whole state (the work follows the collected log: its entries and the
 * keys they changed), or run a statement whose plan depends on statistics
 * to stay proportional to the log.
 *
 * Retention: a retired log (two or more generations back) goes once it was
 * sealed more than synclog.retention ago and no client that acked within
 * synclog.client_activity_window still sits in it; after
 * synclog.retention_max it goes whoever sits in it.
 *
 * Collected log rows: a collected log keeps its row (state 'collected') so
 * that a client holding its id is told SL003 ("collected: download")
 * rather than SL002 ("unknown log").  Both tell the client to download, so
 * the row is a courtesy, and keeping every one would grow synclog.log by a
 * row per rotation forever.  So when a log is collected, the document's
 * older collected rows are deleted, except those that some client's last
 * ack (synclog.client_pos) still names: a client known to hold such an id
 * gets SL003 when it comes back, and so does any client holding the id of
 * the most recently collected log; older ids of clients that never acked
 * get SL002.  The rows left are bounded by one per document plus one per
 * client that acked, whatever the number of rotations; a time limit (such
 * as synclog.retention_max) would not bound them when it is 0, and would
 * still keep a row per rotation within it.
 *
 * What goes when log L, covering (base, end], is collected:
 *  - all of L's entries: versions hold copies of their values, so no
 *    retained state needs an entry of a collected log (one range DELETE on
 *    the entry's primary key);
 *  - for every key that L changed (found by decoding L's entries, plus the
 *    client ids of its entries for the ns 2 watermarks), the key's versions
 *    at or below base, and its tombstone inside (base, end] if it has one;
 *  - the range hash rows (range.c) that no snapshot at or after end sees:
 *    for the buckets with a row at end, the rows below end, and then their
 *    empty-bucket rows at end (sl_range_collect; same reasoning).
 *
 * catch_up (catch_up.c) relies on this: from a retained position p (in a
 * log at or after L's successor, so p >= end) it reads the versions and
 * range hash rows above p, and the state at later bases; a collection
 * removes only versions and rows at or below end.
 *
 * Why that is correct: every retained snapshot is at or after end (older
 * logs are collected first, and the snapshot at end is the one of L's
 * successor).  For a key L changed, its state at end and after is decided
 * by versions above base: the rotation that sealed L wrote the key's last
 * value in L as a version inside (base, end], or, for a key whose last
 * write in L was a deletion, a tombstone or nothing (when no older value
 * existed).  So its versions at or below base are invisible to every
 * retained snapshot, and once they are gone a tombstone inside (base, end]
 * hides nothing.  A key L did not change keeps its versions, which are the
 * state at end.  Versions inside (base, end] can only come from the
 * rotation that sealed L, so every key they belong to is found by decoding
 * L.  By induction, after the collection each key has at most one version
 * at or below end, and it is not a tombstone.
 *
 * Why the deletes are planned safely: the keys of a batch reach the DELETE
 * as arrays.  A plain join of unnest() to synclog.kv is not safe: without
 * statistics (a table never analyzed) the planner estimates the document's
 * versions at a few rows and hashes the batch against a scan of all of
 * them.  So the versions are found in a LATERAL subquery per key, which
 * OFFSET 0 keeps from being flattened into a join: the only plan left is a
 * loop over the batch probing kv_key_idx with (doc_id, ns, key), and the
 * rows found are deleted by their ctid (a TID scan).  Whatever the
 * statistics say, the cost follows the collected log, not the document.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_gc);

/* The transaction's start time less secs seconds: a retention cut-off. */
static TimestampTz
ago(int secs)
{
	return TimestampTzPlusMilliseconds(GetCurrentTransactionStartTimestamp(),
									   -(int64) secs * 1000);
}

/* Keys per DELETE of superseded versions; bounds the arrays it carries. */
#define GC_KEYS_PER_DELETE	256

/* Keys of the collected log whose old versions are still to be deleted. */
typedef struct GcKeys
{
	int64		doc_id;
	int64		base;			/* the collected log covers (base, end] */
	int64		end;
	slc_state  *done;			/* keys already queued in this collection */
	MemoryContext pending_cxt;	/* holds the queued keys */
	int			n;
	Datum		ns[GC_KEYS_PER_DELETE];
	Datum		keys[GC_KEYS_PER_DELETE];
	int64		versions;		/* version rows deleted */
} GcKeys;

/*
 * Delete, for the queued keys, every version at or below base and any
 * tombstone inside (base, end]: see the header comment for why this is
 * exactly what no retained snapshot can see.
 */
static void
flush_keys(GcKeys *g)
{
	static SPIPlanPtr plan;
	Oid			types[5] = {INT8OID, INT2ARRAYOID, BYTEAARRAYOID, INT8OID, INT8OID};
	Datum		args[5];
	MemoryContext old;

	if (g->n == 0)
		return;
	/* The arrays go with the keys, so gc() collecting many logs stays flat. */
	old = MemoryContextSwitchTo(g->pending_cxt);
	args[0] = Int64GetDatum(g->doc_id);
	args[1] = PointerGetDatum(construct_array(g->ns, g->n, INT2OID, 2, true,
											  TYPALIGN_SHORT));
	args[2] = PointerGetDatum(construct_array(g->keys, g->n, BYTEAOID, -1,
											  false, TYPALIGN_INT));
	args[3] = Int64GetDatum(g->base);
	args[4] = Int64GetDatum(g->end);
	sl_exec(&plan,
			"DELETE FROM synclog.kv WHERE ctid = ANY (ARRAY("
			"  SELECT o.ctid FROM unnest($2, $3) AS u(ns, key), LATERAL ("
			"    SELECT w.ctid FROM synclog.kv w "
			"    WHERE w.doc_id = $1 AND w.ns = u.ns AND w.key = u.key "
			"      AND w.lsn <= $5 AND (w.lsn <= $4 OR w.kind = 'd') "
			"    OFFSET 0) o))",
			5, types, args, NULL, false, 0);
	g->versions += (int64) SPI_processed;
	g->n = 0;
	MemoryContextSwitchTo(old);
	MemoryContextReset(g->pending_cxt);
}

/*
 * Queue one key the collected log changed for the next DELETE, once per
 * collection whatever the number of entries that changed it.
 */
static void
queue_key(GcKeys *g, uint8 ns, const uint8 *key, size_t klen)
{
	bytea	   *b;

	if (!sl_keyset_add(g->done, ns, key, klen))
		return;
	b = MemoryContextAlloc(g->pending_cxt, VARHDRSZ + klen);
	SET_VARSIZE(b, VARHDRSZ + klen);
	if (klen > 0)
		memcpy(VARDATA(b), key, klen);
	g->ns[g->n] = Int16GetDatum((int16) ns);
	g->keys[g->n] = PointerGetDatum(b);
	if (++g->n == GC_KEYS_PER_DELETE)
		flush_keys(g);
}

/* sl_change_fn of the collection: every data key the log changed. */
static void
gc_change(void *arg, const uint8 *key, uint32 klen, const uint8 *val,
		  uint32 vlen)
{
	queue_key((GcKeys *) arg, SLC_NS_DATA, key, klen);
}

/* sl_entry_fn of the collection: the entry's client id (ns 2) and its keys. */
static void
gc_entry(void *arg, int64 lsn, bytea *delta, text *client_id,
		 int64 client_seq)
{
	GcKeys	   *g = (GcKeys *) arg;

	if (client_id != NULL)
		queue_key(g, SLC_NS_CLIENT, (const uint8 *) VARDATA_ANY(client_id),
				  VARSIZE_ANY_EXHDR(client_id));
	sl_foreach_change(g->doc_id, lsn, delta, gc_change, g);
}

/*
 * Delete the superseded versions of every key the log (base, end] changed,
 * reading its entries a batch at a time.  Returns how many went.
 */
static int64
delete_superseded(int64 doc_id, int64 base, int64 end)
{
	MemoryContext gc_cxt;
	GcKeys	   *g;
	int64		versions;

	gc_cxt = AllocSetContextCreate(CurrentMemoryContext, "synclog gc",
								   ALLOCSET_DEFAULT_SIZES);
	g = MemoryContextAllocZero(gc_cxt, sizeof(GcKeys));
	g->doc_id = doc_id;
	g->base = base;
	g->end = end;
	g->done = sl_keyset_new(gc_cxt);
	g->pending_cxt = AllocSetContextCreate(gc_cxt, "synclog gc keys",
										   ALLOCSET_DEFAULT_SIZES);
	sl_foreach_entry(doc_id, base, end, false, gc_entry, g);
	flush_keys(g);
	versions = g->versions;
	MemoryContextDelete(gc_cxt);
	return versions;
}

/*
 * Collect the oldest log that retention no longer protects (see the header
 * comment and synclog.h); false when there is none.
 */
bool
sl_collect_next(bool at_log)
{
	static SPIPlanPtr plan_pick;
	static SPIPlanPtr plan_mark;
	static SPIPlanPtr plan_forget;
	static SPIPlanPtr plan_entries;
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
				versions,
				generation,
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
			"SELECT l.log_id, l.doc_id, l.base_lsn, l.end_lsn, d.name, l.generation "
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
	generation = sl_col_int64(0, 6);

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
		/*
		 * Older collected rows of the document go unless a client's last
		 * ack names them (see the header comment).  The scalar subquery is
		 * run per row through client_pos_log_idx, never as a join that
		 * could scan every client's position.  Rows another transaction
		 * holds are skipped, not waited for: drop_doc locks a document's
		 * log rows oldest first, and waiting here (we hold a newer one)
		 * could deadlock with it; a skipped row goes at the next
		 * collection of the document.
		 */
		Oid			t2[2] = {INT8OID, INT4OID};
		Datum		v2[2] = {Int64GetDatum(doc_id), Int32GetDatum((int32) generation)};

		sl_exec(&plan_forget,
				"DELETE FROM synclog.log WHERE ctid = ANY (ARRAY("
				"  SELECT o.ctid FROM synclog.log o "
				"  WHERE o.doc_id = $1 AND o.generation < $2 AND o.state = 'collected' "
				"    AND (SELECT 1 FROM synclog.client_pos c WHERE c.log_id = o.log_id LIMIT 1) IS NULL "
				"  FOR UPDATE OF o SKIP LOCKED))",
				2, t2, v2, NULL, false, 0);
	}
	versions = delete_superseded(doc_id, base, end);
	versions += sl_range_collect(doc_id, end);
	{
		Oid			t3[3] = {INT8OID, INT8OID, INT8OID};
		Datum		v3[3] = {Int64GetDatum(doc_id), Int64GetDatum(base),
							 Int64GetDatum(end)};

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
	{
		double		ms = (double) (GetCurrentTimestamp() - start) / 1000.0;

		if (cut_off == 0)
			ereport(LOG,
					(errmsg("collected log %s of document \"%s\"", log_id, doc),
					 errdetail("LSNs " INT64_FORMAT " to " INT64_FORMAT "; entries removed: " INT64_FORMAT "; old versions removed: " INT64_FORMAT "; elapsed: %.1f ms.",
							   base + 1, end, entries, versions, ms)));
		else
			ereport(LOG,
					(errmsg("collected log %s of document \"%s\"", log_id, doc),
					 errdetail_plural("LSNs " INT64_FORMAT " to " INT64_FORMAT "; entries removed: " INT64_FORMAT "; old versions removed: " INT64_FORMAT "; elapsed: %.1f ms. " INT64_FORMAT " client was still in this log and must download a snapshot.",
									  "LSNs " INT64_FORMAT " to " INT64_FORMAT "; entries removed: " INT64_FORMAT "; old versions removed: " INT64_FORMAT "; elapsed: %.1f ms. " INT64_FORMAT " clients were still in this log and must download a snapshot.",
									  (unsigned long) cut_off,
									  base + 1, end, entries, versions, ms, cut_off)));
	}
	return true;
}

/*
 * synclog.gc() returns bigint
 *
 * Collects, in one transaction, the sealed logs that retention no longer
 * protects (oldest first per document), at most "synclog.gc_max_logs" of
 * them (0: all), and returns how many it collected: a caller that gets the
 * limit back calls again, each call a transaction of bounded length.
 * Logs that another transaction holds (a concurrent gc, a drop_doc) are
 * skipped, not waited for.
 *
 * Takes RowShareLock and then RowExclusiveLock on synclog.log;
 * RowExclusiveLock on synclog.entry, synclog.kv and synclog.doc_stats;
 * AccessShareLock on synclog.doc and synclog.client_pos.  Row locks, held
 * until the transaction ends: FOR UPDATE (SKIP LOCKED) on each log row it
 * collects and on the older collected log rows it deletes; the entries and
 * state versions it deletes; the documents' counter rows.
 */
Datum
synclog_gc(PG_FUNCTION_ARGS)
{
	int64		collected = 0;

	sl_spi_begin();
	sl_require_not_paused("collect logs");
	while ((synclog_gc_max_logs == 0 || collected < synclog_gc_max_logs) &&
		   sl_collect_next(false))
	{
		CHECK_FOR_INTERRUPTS();
		collected++;
	}
	sl_spi_end();
	PG_RETURN_INT64(collected);
}
