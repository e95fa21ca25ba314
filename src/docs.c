/*
 * docs.c
 *
 * Documents and their chain of logs: creating and dropping documents,
 * looking documents and logs up by the ids clients hold, and minting log
 * ids.
 *
 * Owns: synclog.create_doc, synclog.drop_doc, synclog.current_log, and the
 * lookups every other entry point uses to turn (doc, log_id) into rows.
 * Must never: derive a log id from anything that can repeat (a sequence, a
 * clock); ids must stay unique across point-in-time restores.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type_d.h"
#include "funcapi.h"
#include "storage/proc.h"
#include "utils/builtins.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_create_doc);
PG_FUNCTION_INFO_V1(synclog_drop_doc);
PG_FUNCTION_INFO_V1(synclog_current_log);

/* NUL-terminated copy of a doc id, for messages. */
const char *
sl_doc_cstring(text *doc)
{
	return text_to_cstring(doc);
}

/*
 * 128 bits from the kernel's CSPRNG: a restored database forgets which ids
 * it issued, so uniqueness must come from randomness, not from state.
 */
char *
sl_new_log_id(void)
{
	uint8		raw[SL_LOG_ID_LEN / 2];
	char	   *out = palloc(SL_LOG_ID_LEN + 1);
	static const char hex[] = "0123456789abcdef";

	if (!pg_strong_random(raw, sizeof(raw)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random log id")));
	for (int i = 0; i < (int) sizeof(raw); i++)
	{
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 0xf];
	}
	out[SL_LOG_ID_LEN] = '\0';
	return out;
}

/* The document named doc with its head (synclog.doc_head); SL001 if none. */
void
sl_find_doc(text *doc, SlDoc *out, bool read_only)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {TEXTOID};
	Datum		vals[1] = {PointerGetDatum(doc)};

	sl_exec(&plan,
			"SELECT doc_id, head_lsn, active_log, active_base, active_bytes "
			"FROM synclog.doc_head WHERE name = $1",
			1, types, vals, NULL, read_only, 1);
	if (SPI_processed == 0)
		sl_unknown_doc(doc);
	out->doc_id = sl_col_int64(0, 1);
	out->head_lsn = sl_col_int64(0, 2);
	out->active_log = sl_col_text(0, 3);
	out->active_base = sl_col_int64(0, 4);
	out->active_bytes = sl_col_int64(0, 5);
}

/*
 * The lock that orders a document's appends: the row lock on its row in
 * synclog.doc, FOR NO KEY UPDATE, held until the transaction ends.
 * Appends take it (append.c, below SQL), and so do the sealing step of a
 * rotation and set_policy/clear_policy through this function; drop_doc's
 * DELETE takes a stronger one.  Readers never wait for it.  A row lock
 * rather than a heavyweight lock on the document, because a transaction
 * may append to any number of documents: row locks live in the rows, not
 * in the shared lock table.  Returns false if the document is gone.
 */
bool
sl_lock_document(int64 doc_id)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(doc_id)};

	sl_exec(&plan, "SELECT 1 FROM synclog.doc WHERE doc_id = $1 FOR NO KEY UPDATE",
			1, types, args, NULL, false, 1);
	if (SPI_processed == 0)
		return false;
	sl_note_document_held(doc_id);
	return true;
}

/*
 * The documents whose row lock this transaction took (appends and
 * sl_lock_document), so that a rotation in the same transaction knows it
 * must not wait for the document's log rows (compact.c, lock_chain).  Kept
 * per local transaction id: a new transaction starts an empty list.  Past
 * HELD_MAX documents every document counts as held, which only makes such
 * a rotation refuse sooner.  A subtransaction that rolled back released
 * its lock but stays listed, with the same effect.
 */
#define HELD_MAX 32
static LocalTransactionId held_lxid = InvalidLocalTransactionId;
static int64 held_docs[HELD_MAX];
static int	n_held;
static bool held_overflow;

void
sl_note_document_held(int64 doc_id)
{
	if (held_lxid != MyProc->lxid)
	{
		held_lxid = MyProc->lxid;
		n_held = 0;
		held_overflow = false;
	}
	for (int i = 0; i < n_held; i++)
		if (held_docs[i] == doc_id)
			return;
	if (n_held < HELD_MAX)
		held_docs[n_held++] = doc_id;
	else
		held_overflow = true;
}

bool
sl_document_held(int64 doc_id)
{
	if (held_lxid != MyProc->lxid)
		return false;
	if (held_overflow)
		return true;
	for (int i = 0; i < n_held; i++)
		if (held_docs[i] == doc_id)
			return true;
	return false;
}

/*
 * What every read of a log does first: the caller's read access to doc,
 * then the document and its (uncollected) log log_id in the caller's
 * snapshot.  Errors as sl_require_doc, sl_find_doc and sl_find_log.
 */
void
sl_find_readable_log(text *doc, text *log_id, SlDoc *d, SlLog *l)
{
	sl_require_doc(doc, false);
	sl_find_doc(doc, d, true);
	sl_find_log(doc, d, log_id, l, false, true);
}

/*
 * Log log_id of document d; SL002 if the document has no such log, SL003
 * if it was collected (unless allow_collected).
 */
void
sl_find_log(text *doc, const SlDoc *d, text *log_id, SlLog *out,
			bool allow_collected, bool read_only)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		vals[2] = {PointerGetDatum(log_id), Int64GetDatum(d->doc_id)};
	bool		isnull;
	Datum		v;

	sl_exec(&plan,
			"SELECT log_id, generation, state, base_lsn, end_lsn, "
			"snapshot_hash, next_log_id, end_hash, base_chain, end_chain "
			"FROM synclog.log WHERE log_id = $1 AND doc_id = $2",
			2, types, vals, NULL, read_only, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SYNCLOG_UNKNOWN_LOG),
				 errmsg("log \"%s\" does not exist for document \"%s\"",
						text_to_cstring(log_id), sl_doc_cstring(doc)),
				 errhint("The client's state is not from this server's history; "
						 "drop it and download the snapshot of synclog.current_log().")));
	out->log_id = sl_col_text(0, 1);
	out->generation = (int32) sl_col_int64(0, 2);
	out->state = sl_col_text(0, 3);
	out->base_lsn = sl_col_int64(0, 4);
	out->end_lsn = sl_col_int64(0, 5);
	v = sl_col(0, 6, &isnull);
	out->snapshot_hash = DatumGetByteaPP(v);
	out->next_log_id = sl_col_text(0, 7);
	v = sl_col(0, 8, &isnull);
	out->end_hash = isnull ? NULL : DatumGetByteaPP(v);
	v = sl_col(0, 9, &isnull);
	out->base_chain = DatumGetByteaPP(v);
	v = sl_col(0, 10, &isnull);
	out->end_chain = isnull ? NULL : DatumGetByteaPP(v);

	if (!allow_collected && strcmp(out->state, SL_LOG_COLLECTED) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SYNCLOG_LOG_COLLECTED),
				 errmsg("log \"%s\" of document \"%s\" has been garbage-collected",
						out->log_id, sl_doc_cstring(doc)),
				 errhint("Drop the local log and download the snapshot of synclog.current_log().")));
}

/*
 * synclog.create_doc(doc text) returns text
 *
 * Creates document doc with its first, empty log (generation 1, base LSN
 * 0, the empty snapshot) and returns that log's id; SL005 if a document of
 * that name exists.
 *
 * Takes RowExclusiveLock on synclog.doc and synclog.log, and
 * AccessShareLock on synclog.doc_grant when the caller is a role whose
 * confinement this backend has not cached yet.  Locks no existing row; a
 * concurrent create_doc of the same name waits for this transaction to end
 * (on the unique index of the name), and then fails if this one committed.
 */
Datum
synclog_create_doc(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	char	   *log_id = sl_new_log_id();
	slc_hash	empty;
	text	   *result;
	static SPIPlanPtr plan_insert_doc;
	static SPIPlanPtr plan_insert_log;

	slc_hash_init(&empty);
	sl_spi_begin();
	sl_require_doc(doc, true);
	{
		Oid			t1[2] = {TEXTOID, TEXTOID};
		Datum		v1[2] = {PointerGetDatum(doc), CStringGetTextDatum(log_id)};
		Oid			t2[3] = {TEXTOID, INT8OID, BYTEAOID};
		Datum		v2[3];
		int64		doc_id;

		/* ON CONFLICT makes a concurrent create of the same id wait and fail. */
		sl_exec(&plan_insert_doc,
				"INSERT INTO synclog.doc (name, active_log) VALUES ($1, $2) "
				"ON CONFLICT (name) DO NOTHING RETURNING doc_id",
				2, t1, v1, NULL, false, 0);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_SYNCLOG_DOCUMENT_EXISTS),
					 errmsg("document \"%s\" already exists", sl_doc_cstring(doc))));
		doc_id = sl_col_int64(0, 1);

		v2[0] = CStringGetTextDatum(log_id);
		v2[1] = Int64GetDatum(doc_id);
		v2[2] = PointerGetDatum(sl_hash_to_bytea(&empty));
		sl_exec(&plan_insert_log,
				"INSERT INTO synclog.log (log_id, doc_id, generation, state, "
				"base_lsn, snapshot_hash) VALUES ($1, $2, 1, 'active', 0, $3)",
				3, t2, v2, NULL, false, 0);
	}
	sl_spi_end();
	result = cstring_to_text(log_id);
	PG_RETURN_TEXT_P(result);
}

/*
 * synclog.drop_doc(doc text) returns void
 *
 * Removes the document and all its rows: logs, entries, state versions,
 * range hashes, client positions and counters.
 *
 * Takes RowShareLock and then RowExclusiveLock on synclog.log,
 * RowExclusiveLock on synclog.doc, synclog.entry, synclog.kv,
 * synclog.range_hash, synclog.client_pos and synclog.doc_stats, and
 * AccessShareLock on
 * synclog.doc_grant when the caller is a role whose confinement this
 * backend has not cached yet.  Row locks: FOR UPDATE on every log row of
 * the document, in generation order, then the document's row (the DELETE
 * locks it, so it waits for appends and rotations holding it), then every
 * row it deletes.
 *
 * The log rows are locked first, in generation order, because that is the order a rotation
 * takes its locks in (logs, then the document row): taking the document
 * row first could deadlock with a rotation that is folding its log.  A
 * concurrent append waits on the document row and then finds it gone.
 */
Datum
synclog_drop_doc(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	static SPIPlanPtr plan_find;
	static SPIPlanPtr plan_lock_logs;
	static SPIPlanPtr plan_doc;
	static SPIPlanPtr plan_entries;
	static SPIPlanPtr plan_kv;
	static SPIPlanPtr plan_ranges;
	static SPIPlanPtr plan_logs;
	static SPIPlanPtr plan_clients;
	static SPIPlanPtr plan_stats;
	Oid			t1[1] = {TEXTOID};
	Datum		v1[1] = {PointerGetDatum(doc)};
	Oid			t2[1] = {INT8OID};
	Datum		v2[1];

	sl_spi_begin();
	sl_require_doc(doc, true);
	sl_exec(&plan_find, "SELECT doc_id FROM synclog.doc WHERE name = $1",
			1, t1, v1, NULL, false, 1);
	if (SPI_processed == 0)
		sl_unknown_doc(doc);
	v2[0] = Int64GetDatum(sl_col_int64(0, 1));
	sl_exec(&plan_lock_logs,
			"SELECT 1 FROM synclog.log WHERE doc_id = $1 ORDER BY generation FOR UPDATE",
			1, t2, v2, NULL, false, 0);
	sl_exec(&plan_doc, "DELETE FROM synclog.doc WHERE doc_id = $1",
			1, t2, v2, NULL, false, 0);
	if (SPI_processed == 0)
		sl_unknown_doc(doc);
	sl_exec(&plan_entries, "DELETE FROM synclog.entry WHERE doc_id = $1",
			1, t2, v2, NULL, false, 0);
	sl_exec(&plan_kv, "DELETE FROM synclog.kv WHERE doc_id = $1",
			1, t2, v2, NULL, false, 0);
	sl_exec(&plan_ranges, "DELETE FROM synclog.range_hash WHERE doc_id = $1",
			1, t2, v2, NULL, false, 0);
	sl_exec(&plan_logs, "DELETE FROM synclog.log WHERE doc_id = $1",
			1, t2, v2, NULL, false, 0);
	sl_exec(&plan_clients, "DELETE FROM synclog.client_pos WHERE doc_id = $1",
			1, t2, v2, NULL, false, 0);
	sl_exec(&plan_stats, "DELETE FROM synclog.doc_stats WHERE doc_id = $1",
			1, t2, v2, NULL, false, 0);
	sl_spi_end();
	PG_RETURN_VOID();
}

/*
 * synclog.current_log(doc text)
 *   returns setof (log_id text, base_lsn bigint, head_lsn bigint, snapshot_hash bytea)
 *
 * The document's active log: its id, its base LSN, the newest LSN (the
 * base while the log is empty) and the hash of its snapshot; one row, read
 * in the caller's snapshot.
 *
 * Takes AccessShareLock on synclog.doc, synclog.entry (through the view
 * synclog.doc_head) and synclog.log, and on synclog.doc_grant when the
 * caller is a role whose confinement this backend has not cached yet; no
 * row locks.
 */
Datum
synclog_current_log(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	static SPIPlanPtr plan;
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {PointerGetDatum(doc)};
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	InitMaterializedSRF(fcinfo, 0);
	sl_spi_begin();
	sl_require_doc(doc, false);
	sl_exec(&plan,
			"SELECT d.active_log, d.active_base, d.head_lsn, l.snapshot_hash "
			"FROM synclog.doc_head d JOIN synclog.log l ON l.log_id = d.active_log "
			"WHERE d.name = $1",
			1, types, args, NULL, true, 1);
	if (SPI_processed == 0)
		sl_unknown_doc(doc);
	for (int i = 0; i < 4; i++)
		values[i] = sl_col(0, i + 1, &nulls[i]);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	sl_spi_end();
	return (Datum) 0;
}

/*
 * A client position (lsn, the argument named what) must lie in log l,
 * which ends at end: at or after its base (22023 before it) and not past
 * its last entry (SL004: the client has seen entries this server does not
 * have).
 */
void
sl_check_position(const SlLog *l, int64 end, int64 lsn, const char *what)
{
	if (lsn < l->base_lsn)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is before the start of log \"%s\"", what, l->log_id),
				 errdetail("The log starts after LSN " INT64_FORMAT "; %s is " INT64_FORMAT ".",
						   l->base_lsn, what, lsn),
				 errhint("A client in this log holds its base state, so its position is base_lsn or later.")));
	if (lsn > end)
		ereport(ERROR,
				(errcode(ERRCODE_SYNCLOG_CLIENT_AHEAD),
				 errmsg("%s is beyond the end of log \"%s\"", what, l->log_id),
				 errdetail("The log ends at LSN " INT64_FORMAT "; %s is " INT64_FORMAT ". The client has seen entries this server does not have, for example after the server was restored from a backup.",
						   end, what, lsn),
				 errhint("Drop the local log and download the snapshot of synclog.current_log().")));
}
