/*
 * append.c
 *
 * Appending entries to a document's storage log: the hot path.
 *
 * Owns: synclog.append and synclog.append_delta, LSN assignment and the
 * per-client idempotence check.
 * Must never: assign an LSN without holding the document row lock until
 * commit.  That lock is what makes LSN order equal commit order: the next
 * appender cannot take LSN n+1 before the holder of n has committed and
 * become visible.  Must never look at the log chain either: an entry's log
 * is implied by its LSN, which is what lets a rotation proceed without
 * blocking appends.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "utils/builtins.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_append);
PG_FUNCTION_INFO_V1(synclog_append_delta);

/*
 * The LSN already recorded for (doc, client) when client_seq is not above
 * the client's watermark, or -1 when the append must go ahead.
 */
static int64
duplicate_of(int64 doc_id, text *client_id, int64 client_seq)
{
	static SPIPlanPtr plan_entry;
	static SPIPlanPtr plan_kv;
	Oid			t_entry[2] = {INT8OID, TEXTOID};
	Oid			t_kv[2] = {INT8OID, BYTEAOID};
	Datum		v[2] = {Int64GetDatum(doc_id), PointerGetDatum(client_id)};
	int64		seq;
	int64		lsn;

	/*
	 * Entries not yet collected are newer than any folded watermark, so the
	 * newest entry of the client, if any, is its watermark.
	 */
	sl_exec(&plan_entry,
			"SELECT client_seq, lsn FROM synclog.entry "
			"WHERE doc_id = $1 AND client_id = $2 ORDER BY lsn DESC LIMIT 1",
			2, t_entry, v, NULL, false, 1);
	if (SPI_processed > 0)
	{
		seq = sl_col_int64(0, 1);
		lsn = sl_col_int64(0, 2);
	}
	else
	{
		bool		isnull;
		bytea	   *wm;

		sl_exec(&plan_kv,
				"SELECT value FROM synclog.kv "
				"WHERE doc_id = $1 AND ns = 2 AND key = $2 "
				"ORDER BY lsn DESC LIMIT 1",
				2, t_kv, v, NULL, false, 1);
		if (SPI_processed == 0)
			return -1;
		wm = DatumGetByteaPP(sl_col(0, 1, &isnull));
		if (isnull || VARSIZE_ANY_EXHDR(wm) != SLC_WATERMARK_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("synclog: malformed watermark stored for a client of document %lld",
							(long long) doc_id)));
		slc_watermark_decode((const uint8 *) VARDATA_ANY(wm), &seq, &lsn);
	}
	return client_seq <= seq ? lsn : -1;
}

/*
 * Append an already validated delta.  Runs inside sl_spi_begin/end.
 */
/*
 * The part of every append's UPDATE that keeps the document's due flag and
 * first-append time current.  Both change at most once per rotation cycle,
 * so the update stays HOT (see synclog.doc in the install script).  $3 and
 * $4 are the synclog.rotate_entries and synclog.rotate_size thresholds, 0
 * meaning off; a document's own rotate_* columns override them.
 */
#define DUE_SET_CLAUSE \
	"due = due OR (auto_rotate AND (" \
	"  (coalesce(rotate_entries, $3) > 0 AND head_lsn + 1 - active_base >= coalesce(rotate_entries, $3)) OR " \
	"  (coalesce(rotate_bytes, $4) > 0 AND active_bytes + $2 >= coalesce(rotate_bytes, $4)))), " \
	"first_append_at = coalesce(first_append_at, now()) "

static int64
append_encoded(text *doc, bytea *delta, text *client_id, int64 client_seq)
{
	static SPIPlanPtr plan_bump_by_name;
	static SPIPlanPtr plan_lock;
	static SPIPlanPtr plan_bump;
	static SPIPlanPtr plan_insert;
	int64		size = VARSIZE_ANY_EXHDR(delta);
	int64		doc_id;
	int64		lsn;
	char	   *log_id;

	sl_require_doc(doc, true);
	if (client_id == NULL)
	{
		/* One statement both locks the row and takes the next LSN. */
		Oid			t[4] = {TEXTOID, INT8OID, INT8OID, INT8OID};
		Datum		v[4] = {PointerGetDatum(doc), Int64GetDatum(size),
							Int64GetDatum(sl_threshold_entries()),
							Int64GetDatum(sl_threshold_bytes())};

		sl_exec(&plan_bump_by_name,
				"UPDATE synclog.doc SET head_lsn = head_lsn + 1, "
				"active_bytes = active_bytes + $2, " DUE_SET_CLAUSE
				"WHERE name = $1 RETURNING doc_id, head_lsn, active_log",
				4, t, v, NULL, false, 0);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_SYNCLOG_UNKNOWN_DOCUMENT),
					 errmsg("document \"%s\" does not exist", sl_doc_cstring(doc))));
		doc_id = sl_col_int64(0, 1);
		lsn = sl_col_int64(0, 2);
		log_id = sl_col_text(0, 3);
	}
	else
	{
		/*
		 * The watermark check must happen under the same lock as the LSN
		 * assignment, or a retry racing its original could append twice.
		 */
		Oid			t1[1] = {TEXTOID};
		Datum		v1[1] = {PointerGetDatum(doc)};
		Oid			t2[4] = {INT8OID, INT8OID, INT8OID, INT8OID};
		Datum		v2[4];
		int64		dup;

		sl_exec(&plan_lock,
				"SELECT doc_id FROM synclog.doc WHERE name = $1 FOR NO KEY UPDATE",
				1, t1, v1, NULL, false, 0);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_SYNCLOG_UNKNOWN_DOCUMENT),
					 errmsg("document \"%s\" does not exist", sl_doc_cstring(doc))));
		doc_id = sl_col_int64(0, 1);
		dup = duplicate_of(doc_id, client_id, client_seq);
		if (dup >= 0)
			return dup;
		v2[0] = Int64GetDatum(doc_id);
		v2[1] = Int64GetDatum(size);
		v2[2] = Int64GetDatum(sl_threshold_entries());
		v2[3] = Int64GetDatum(sl_threshold_bytes());
		sl_exec(&plan_bump,
				"UPDATE synclog.doc SET head_lsn = head_lsn + 1, "
				"active_bytes = active_bytes + $2, " DUE_SET_CLAUSE
				"WHERE doc_id = $1 RETURNING head_lsn, active_log",
				4, t2, v2, NULL, false, 0);
		lsn = sl_col_int64(0, 1);
		log_id = sl_col_text(0, 2);
	}

	{
		Oid			t[5] = {INT8OID, INT8OID, BYTEAOID, TEXTOID, INT8OID};
		Datum		v[5] = {Int64GetDatum(doc_id), Int64GetDatum(lsn),
							PointerGetDatum(delta), PointerGetDatum(client_id),
						Int64GetDatum(client_seq)};
		char		n[6] = "   nn";

		if (client_id != NULL)
			n[3] = n[4] = ' ';
		sl_exec(&plan_insert,
				"INSERT INTO synclog.entry (doc_id, lsn, delta, client_id, client_seq) "
				"VALUES ($1, $2, $3, $4, $5)",
				5, t, v, n, false, 0);
	}

	if (synclog_notify_append)
		sl_notify_append(VARDATA_ANY(doc), VARSIZE_ANY_EXHDR(doc), log_id, lsn);
	return lsn;
}

Datum
synclog_append(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	text	   *client_id;
	int64		client_seq;
	bytea	   *delta;
	int64		lsn;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("keys and vals must not be NULL"),
				 errhint("Pass empty arrays for an entry with no changes.")));
	sl_check_client(fcinfo, 3, 4, &client_id, &client_seq);
	delta = sl_build_delta(PG_GETARG_ARRAYTYPE_P(1), PG_GETARG_ARRAYTYPE_P(2));

	sl_spi_begin();
	lsn = append_encoded(doc, delta, client_id, client_seq);
	sl_spi_end();
	PG_RETURN_INT64(lsn);
}

Datum
synclog_append_delta(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	text	   *client_id;
	int64		client_seq;
	bytea	   *delta;
	int64		lsn;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("delta must not be NULL")));
	sl_check_client(fcinfo, 2, 3, &client_id, &client_seq);
	delta = PG_GETARG_BYTEA_PP(1);
	sl_validate_delta(delta);

	sl_spi_begin();
	lsn = append_encoded(doc, delta, client_id, client_seq);
	sl_spi_end();
	PG_RETURN_INT64(lsn);
}
