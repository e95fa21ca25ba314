/*
 * forget.c
 *
 * Forgetting clients.  A document keeps a watermark for every client id
 * that appended to it, and a position for every client id that acked; both
 * would otherwise stay forever.  An administrator forgets one client with
 * synclog.forget_client; with synclog.client_retention set, the background
 * worker retires the watermarks of clients idle for longer and removes
 * positions not acked for as long.
 *
 * A watermark goes by a retire entry (PROTOCOL.md section 4: the client's
 * id, client_seq -1, the empty delta): an entry like any other, in LSN
 * order, that every client and the server's rotation fold the same way, so
 * the state hash stays well defined.  Afterwards the client id is new to
 * the document (and counts once less in synclog.doc.clients).
 *
 * Owns: synclog.forget_client, which clients are idle (sl_idle_clients),
 * retiring one of them (sl_retire_idle_client) and expiring positions
 * (sl_expire_positions).
 * Must never: write a retire entry other than through append.c
 * (sl_append_retire: the append path computes what every entry carries and
 * takes the document's lock), or retire a client on evidence read before
 * that lock is held: an append of the client may have committed since.
 *
 * When a client is idle.  Entries carry no time, but logs do: a log's
 * created_at is the time of the rotation that started it, at its base_lsn.
 * An entry at LSN w was committed before every rotation sealing at or after
 * w, so if some log of the document with base_lsn >= w was created before
 * the cut-off (now - client_retention), the entry is older than the
 * cut-off.  The worker therefore retires a client when its watermark (its
 * newest state version, not a retirement) lies at or below the base of the
 * newest log created before the cut-off, it has no entry in the active log,
 * and no position of the same client id was acked since the cut-off.  This
 * never retires early; it retires late by up to the time its log took to
 * be sealed (synclog.rotate_age bounds that for logs that get appends).
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_forget_client);

/*
 * The idle watermarks (see the header comment) of the documents chosen by
 * doc_filter, limited by $2; $1 is the cut-off.  k.key is the client id's
 * bytes (watermarks are keyed by them), compared with the entries' and
 * positions' text ids in the database's encoding.
 */
#define IDLE_SQL(doc_filter, key_filter) \
	"SELECT d.doc_id, d.name, convert_from(k.key, pg_catalog.getdatabaseencoding()) " \
	"FROM synclog.doc d " \
	"CROSS JOIN LATERAL (SELECT l.base_lsn FROM synclog.log l " \
	"   WHERE l.doc_id = d.doc_id AND l.created_at < $1 " \
	"   ORDER BY l.generation DESC LIMIT 1) b " \
	"CROSS JOIN LATERAL (SELECT DISTINCT ON (w.key) w.key, w.lsn, w.kind " \
	"   FROM synclog.kv w WHERE w.doc_id = d.doc_id AND w.ns = 2 " key_filter \
	"   ORDER BY w.key, w.lsn DESC) k " \
	"WHERE k.kind = 'v' AND k.lsn <= b.base_lsn " doc_filter \
	"  AND NOT EXISTS (SELECT 1 FROM synclog.entry e WHERE e.doc_id = d.doc_id " \
	"       AND e.client_id = convert_from(k.key, pg_catalog.getdatabaseencoding()) " \
	"       AND e.lsn > d.active_base) " \
	"  AND NOT EXISTS (SELECT 1 FROM synclog.client_pos c WHERE c.doc_id = d.doc_id " \
	"       AND c.client_id = convert_from(k.key, pg_catalog.getdatabaseencoding()) " \
	"       AND c.acked_at >= $1) " \
	"LIMIT $2"

/* The cut-off of synclog.client_retention: the transaction's start less it. */
static TimestampTz
client_cutoff(void)
{
	return TimestampTzPlusMilliseconds(GetCurrentTransactionStartTimestamp(),
									   -(int64) synclog_client_retention_secs * 1000);
}

/*
 * Up to max_clients idle clients, as a list of SlIdleClient allocated in
 * cxt.  Inside sl_spi_begin/end; nothing when client_retention is 0.
 */
List *
sl_idle_clients(int max_clients, MemoryContext cxt)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		args[2];
	List	   *idle = NIL;

	if (synclog_client_retention_secs <= 0)
		return NIL;
	args[0] = TimestampTzGetDatum(client_cutoff());
	args[1] = Int32GetDatum(max_clients);
	sl_exec(&plan, IDLE_SQL("", ""), 2, types, args, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		SlIdleClient *c = palloc(sizeof(SlIdleClient));

		MemoryContextSwitchTo(old);
		c->doc_id = sl_col_int64(i, 1);
		c->doc = MemoryContextStrdup(cxt, sl_col_text(i, 2));
		c->client_id = MemoryContextStrdup(cxt, sl_col_text(i, 3));
		old = MemoryContextSwitchTo(cxt);
		idle = lappend(idle, c);
		MemoryContextSwitchTo(old);
	}
	SPI_freetuptable(SPI_tuptable);
	return idle;
}

/*
 * Retire one client that sl_idle_clients found, if it is still idle once
 * the document's row is locked (the lock appends take, so no append of the
 * client can come between the check and the retire entry).  Returns the
 * retire entry's LSN, or -1 when the client is not idle any more or the
 * document is gone.  Must be called outside sl_spi_begin/end.
 */
int64
sl_retire_idle_client(const SlIdleClient *c)
{
	static SPIPlanPtr plan;
	Oid			types[4] = {TIMESTAMPTZOID, INT4OID, INT8OID, BYTEAOID};
	Datum		args[4];
	text	   *id = cstring_to_text(c->client_id);
	bool		idle;

	args[0] = TimestampTzGetDatum(client_cutoff());
	args[1] = Int32GetDatum(1);
	args[2] = Int64GetDatum(c->doc_id);
	args[3] = PointerGetDatum(id);	/* a text's bytes, as a bytea */
	/* Test builds: a test can hold the worker here and append meanwhile. */
	SL_TEST_PAUSE("retire_between_reads");
	sl_spi_begin();
	idle = synclog_client_retention_secs > 0 && sl_lock_document(c->doc_id);
	if (idle)
	{
		sl_exec(&plan, IDLE_SQL("AND d.doc_id = $3", "AND w.key = $4"),
				4, types, args, NULL, false, 0);
		idle = SPI_processed > 0;
	}
	sl_spi_end();
	if (!idle)
		return -1;
	return sl_append_retire(cstring_to_text(c->doc), id);
}

/*
 * Delete up to max_rows client positions not acked since the cut-off of
 * synclog.client_retention, and return how many went.  Inside
 * sl_spi_begin/end; nothing when client_retention is 0.  Positions another
 * transaction holds (an ack in progress) are skipped.
 */
int64
sl_expire_positions(int max_rows)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		args[2];

	if (synclog_client_retention_secs <= 0)
		return 0;
	args[0] = TimestampTzGetDatum(client_cutoff());
	args[1] = Int32GetDatum(max_rows);
	sl_exec(&plan,
			"DELETE FROM synclog.client_pos WHERE ctid = ANY (ARRAY("
			"  SELECT ctid FROM synclog.client_pos WHERE acked_at < $1 "
			"  LIMIT $2 FOR UPDATE SKIP LOCKED))",
			2, types, args, NULL, false, 0);
	return (int64) SPI_processed;
}

/*
 * synclog.forget_client(doc text, client_id text) returns bigint
 *
 * Forgets one client of the document: drops its position (synclog.ack)
 * and retires its watermark with a retire entry, after which the client id
 * is new to the document.  Returns the retire entry's LSN, or NULL when
 * the client had a position but no watermark.  Raises 42704 when it had
 * neither, SL001 for an unknown document, and 42501 for a caller that
 * synclog.grant_doc confines (as for grant_doc itself).
 *
 * Takes RowExclusiveLock on synclog.client_pos (the client's row is
 * deleted); then what synclog.append takes, including the document's row
 * lock (FOR NO KEY UPDATE) until the transaction ends.
 */
Datum
synclog_forget_client(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	text	   *client_id = sl_arg_client_id(fcinfo, 1);
	static SPIPlanPtr plan;
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		args[2];
	SlDoc		d;
	bool		had_position;
	int64		lsn;

	PreventCommandIfReadOnly("synclog.forget_client()");
	sl_spi_begin();
	sl_require_unconfined(sl_caller(), "forget clients");
	sl_find_doc(doc, &d, false);
	args[0] = Int64GetDatum(d.doc_id);
	args[1] = PointerGetDatum(client_id);
	sl_exec(&plan,
			"DELETE FROM synclog.client_pos WHERE doc_id = $1 AND client_id = $2",
			2, types, args, NULL, false, 0);
	had_position = SPI_processed > 0;
	sl_spi_end();

	lsn = sl_append_retire(doc, client_id);
	if (lsn < 0 && !had_position)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("client \"%s\" of document \"%s\" does not exist",
						text_to_cstring(client_id), sl_doc_cstring(doc)),
				 errdetail("The document has neither a watermark nor a position of this client.")));
	if (lsn < 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(lsn);
}
