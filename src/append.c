/*
 * append.c
 *
 * Appending entries to a document's storage log: the hot path.
 *
 * Owns: synclog.append and synclog.append_delta, LSN assignment and the
 * per-client idempotence check.
 * Must never: assign an LSN without holding the document lock
 * (sl_lock_document) until commit.  That lock is what makes LSN order equal
 * commit order: the next appender cannot take LSN n+1 before the holder of
 * n has committed and become visible.  Must never look at the log chain
 * either: an entry's log is implied by its LSN, which is what lets a
 * rotation fold without blocking appends.  And must not write the
 * document row per append: that is a second WAL record and a row lock
 * held through the commit for every append.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation_d.h"
#include "catalog/pg_type_d.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_append);
PG_FUNCTION_INFO_V1(synclog_append_delta);

/*
 * The LSN already recorded for (doc, client) when client_seq is not above
 * the client's watermark, or -1 when the append must go ahead.
 */
static int64
duplicate_of(int64 doc_id, int64 active_base, text *client_id, int64 client_seq)
{
	static SPIPlanPtr plan_entry;
	static SPIPlanPtr plan_kv;
	Oid			t_entry[2] = {INT8OID, TEXTOID};
	Oid			t_kv[2] = {INT8OID, BYTEAOID};
	Datum		v[2] = {Int64GetDatum(doc_id), PointerGetDatum(client_id)};
	int64		seq = -1;
	int64		lsn = -1;

	/*
	 * The client's newest entry is its watermark when it lies in the active
	 * log: every watermark a rotation folded is older.  Otherwise the entry
	 * may be a leftover of a collected log (gc keeps entries that state
	 * versions point at), and the folded watermark can be newer.
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
	if (lsn <= active_base)
	{
		bool		isnull;
		bytea	   *wm;
		int64		wseq,
					wlsn;

		sl_exec(&plan_kv,
				"SELECT value FROM synclog.kv "
				"WHERE doc_id = $1 AND ns = 2 AND key = $2 AND kind = 'v' "
				"ORDER BY lsn DESC LIMIT 1",
				2, t_kv, v, NULL, false, 1);
		if (SPI_processed > 0)
		{
			wm = DatumGetByteaPP(sl_col(0, 1, &isnull));
			if (isnull || VARSIZE_ANY_EXHDR(wm) != SLC_WATERMARK_LEN)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("synclog: malformed watermark stored for a client of document %lld",
								(long long) doc_id)));
			slc_watermark_decode((const uint8 *) VARDATA_ANY(wm), &wseq, &wlsn);
			if (wlsn > lsn)
			{
				seq = wseq;
				lsn = wlsn;
			}
		}
	}
	if (lsn < 0)
		return -1;
	return client_seq <= seq ? lsn : -1;
}

/*
 * The hot path works on the tables directly (index lookups and a heap
 * insert) instead of through SQL statements: an append is one lock and one
 * row insert, and planning-free executor startup per statement, constraint
 * expressions and SPI bookkeeping would cost more than the work itself.
 * The invariants the entry table's CHECK constraints state are kept by this
 * code; the rare update of the document row, and everything else, still go
 * through SQL.
 */
static AttrNumber
column(Relation rel, const char *name)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	elog(ERROR, "synclog: column %s.%s is missing", RelationGetRelationName(rel), name);
	return InvalidAttrNumber;	/* keep compiler quiet */
}

/* Insert the index entries of a new heap tuple. */
static void
insert_index_entries(Relation rel, HeapTuple tup)
{
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;

	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel), &TTSOpsHeapTuple);
	ExecStoreHeapTuple(tup, slot, false);
	ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
	ExecCloseIndices(rri);
	ExecDropSingleTupleTableSlot(slot);
	FreeExecutorState(estate);
}

static bool
threshold_reached(Datum override, bool override_null, int64 setting, int64 value)
{
	int64		limit = override_null ? setting : DatumGetInt64(override);

	return limit > 0 && value >= limit;
}

/* The document's row as one snapshot sees it (a copy), or NULL. */
static HeapTuple
doc_row(Relation docrel, text *doc, Snapshot snap)
{
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	found;
	HeapTuple	copy;

	ScanKeyEntryInitialize(&key, 0, column(docrel, "name"), BTEqualStrategyNumber,
						   InvalidOid, DEFAULT_COLLATION_OID, F_TEXTEQ,
						   PointerGetDatum(doc));
	scan = systable_beginscan(docrel, sl_relid("doc_name_key"), true, snap, 1, &key);
	found = systable_getnext(scan);
	copy = HeapTupleIsValid(found) ? heap_copytuple(found) : NULL;
	systable_endscan(scan);
	return copy;
}

/*
 * The document's newest entry as one snapshot sees it: its LSN and
 * log_bytes (0 and 0 when there is none).
 */
static void
last_entry(Relation entryrel, Relation pkey, int64 doc_id, Snapshot snap,
		   int64 *lsn, int64 *log_bytes)
{
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	found;

	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   InvalidOid, F_INT8EQ, Int64GetDatum(doc_id));
	scan = systable_beginscan_ordered(entryrel, pkey, snap, 1, &key);
	found = systable_getnext_ordered(scan, BackwardScanDirection);
	*lsn = 0;
	*log_bytes = 0;
	if (HeapTupleIsValid(found))
	{
		bool		isnull;

		*lsn = DatumGetInt64(heap_getattr(found, column(entryrel, "lsn"),
										  RelationGetDescr(entryrel), &isnull));
		*log_bytes = DatumGetInt64(heap_getattr(found, column(entryrel, "log_bytes"),
												RelationGetDescr(entryrel), &isnull));
	}
	systable_endscan_ordered(scan);
}

/* The same for callers without the relations at hand (compact.c). */
void
sl_last_entry(int64 doc_id, Snapshot snap, int64 *lsn, int64 *log_bytes)
{
	Relation	entryrel = table_open(sl_relid("entry"), AccessShareLock);
	Relation	pkey = index_open(sl_relid("entry_pkey"), AccessShareLock);

	last_entry(entryrel, pkey, doc_id, snap, lsn, log_bytes);
	index_close(pkey, AccessShareLock);
	table_close(entryrel, AccessShareLock);
}

static void
serialization_failure(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("could not serialize access due to concurrent update")));
}

/*
 * Record what the policy needs from this append in the document row: the
 * due flag when a threshold was crossed, the time of the log's first
 * append.  Each happens at most once per log, so appends almost never
 * write the row.
 */
static void
mark_doc(int64 doc_id, bool due, bool first)
{
	static SPIPlanPtr plan;
	Oid			types[3] = {INT8OID, BOOLOID, TIMESTAMPTZOID};
	Datum		args[3] = {Int64GetDatum(doc_id), BoolGetDatum(due),
						   TimestampTzGetDatum(GetCurrentTransactionStartTimestamp())};
	char		nulls[4] = "   ";

	if (!first)
		nulls[2] = 'n';
	sl_exec(&plan,
			"UPDATE synclog.doc SET due = due OR $2, "
			"first_append_at = coalesce(first_append_at, $3) WHERE doc_id = $1",
			3, types, args, nulls, false, 0);
}

/*
 * Append an already validated delta.  Runs inside sl_spi_begin/end (for
 * the access check and the rare SQL of duplicate_of and mark_doc).
 */
static int64
append_encoded(text *doc, bytea *delta, text *client_id, int64 client_seq)
{
	int64		size = VARSIZE_ANY_EXHDR(delta);
	Relation	docrel;
	Relation	entryrel;
	Relation	pkey;
	TupleDesc	desc;
	HeapTuple	row;
	HeapTuple	seen;
	Datum	   *values;
	bool	   *nulls;
	Snapshot	snap;
	int64		doc_id,
				last,
				last_bytes,
				lsn,
				base,
				bytes;
	char	   *log_id;
	bool		xact_snapshot;

	/* What the executor would check for an INSERT (also true on a standby). */
	PreventCommandIfReadOnly("synclog.append()");
	PreventCommandIfParallelMode("synclog.append()");
	sl_require_doc(doc, true);

	/*
	 * Make what this transaction wrote before visible, as a new SQL
	 * statement would: several appends in one statement must see each
	 * other's LSNs.
	 */
	CommandCounterIncrement();
	xact_snapshot = IsolationUsesXactSnapshot();

	docrel = table_open(sl_relid("doc"), AccessShareLock);
	entryrel = table_open(sl_relid("entry"), RowExclusiveLock);
	pkey = index_open(sl_relid("entry_pkey"), AccessShareLock);
	desc = RelationGetDescr(docrel);

	/*
	 * Find the document, lock it, and read it again: the lock waited for
	 * whoever held it (an append, a rotation's seal, a drop), and only a
	 * snapshot taken after the wait sees what they committed.  The holder
	 * committed before its lock went, so the newest snapshot sees its
	 * entry: that is what makes LSN order commit order.
	 */
	snap = RegisterSnapshot(GetLatestSnapshot());
	row = doc_row(docrel, doc, snap);
	UnregisterSnapshot(snap);
	if (row == NULL)
		sl_unknown_doc(doc);
	values = palloc(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	heap_deform_tuple(row, desc, values, nulls);
	doc_id = DatumGetInt64(values[column(docrel, "doc_id") - 1]);

	sl_lock_document(doc_id);

	snap = RegisterSnapshot(GetLatestSnapshot());
	row = doc_row(docrel, doc, snap);
	/*
	 * Dropped while we waited: the document we were appending to is gone,
	 * even if one of the same name was created since, as for an UPDATE.
	 */
	if (row == NULL)
		sl_unknown_doc(doc);
	heap_deform_tuple(row, desc, values, nulls);
	if (DatumGetInt64(values[column(docrel, "doc_id") - 1]) != doc_id)
		sl_unknown_doc(doc);
	last_entry(entryrel, pkey, doc_id, snap, &last, &last_bytes);
	UnregisterSnapshot(snap);

	/*
	 * In REPEATABLE READ and SERIALIZABLE the transaction's snapshot must
	 * see the newest entry and document row, or the append fails as an
	 * UPDATE of a concurrently updated row would: the transaction could not
	 * see the entries that took the LSNs before its own, nor a retry's
	 * original.
	 */
	if (xact_snapshot)
	{
		int64		seen_last,
					seen_bytes;

		snap = GetTransactionSnapshot();
		seen = doc_row(docrel, doc, snap);
		if (seen == NULL || !ItemPointerEquals(&seen->t_self, &row->t_self))
			serialization_failure();
		last_entry(entryrel, pkey, doc_id, snap, &seen_last, &seen_bytes);
		if (seen_last != last)
			serialization_failure();
	}

	base = DatumGetInt64(values[column(docrel, "active_base") - 1]);
	log_id = TextDatumGetCString(values[column(docrel, "active_log") - 1]);
	lsn = Max(last, base) + 1;
	bytes = (last > base ? last_bytes : 0) + size;

	if (client_id != NULL)
	{
		/*
		 * A retry racing its original: the original held the lock, so we
		 * come here after it committed, and find its entry.
		 */
		int64		dup = duplicate_of(doc_id, base, client_id, client_seq);

		if (dup >= 0)
		{
			index_close(pkey, AccessShareLock);
			table_close(entryrel, NoLock);
			table_close(docrel, NoLock);
			return dup;
		}
	}

	/* The policy's flags (see policy.c). */
	{
		AttrNumber	re = column(docrel, "rotate_entries");
		AttrNumber	rb = column(docrel, "rotate_bytes");
		bool		due = false;
		bool		first = nulls[column(docrel, "first_append_at") - 1];

		if (!DatumGetBool(values[column(docrel, "due") - 1]) &&
			DatumGetBool(values[column(docrel, "auto_rotate") - 1]))
			due = threshold_reached(values[re - 1], nulls[re - 1],
									sl_threshold_entries(), lsn - base) ||
				threshold_reached(values[rb - 1], nulls[rb - 1],
								  sl_threshold_bytes(), bytes);
		if (due || first)
			mark_doc(doc_id, due, first);
	}

	/* The entry. */
	{
		TupleDesc	edesc = RelationGetDescr(entryrel);
		Datum	   *ev = palloc0(sizeof(Datum) * edesc->natts);
		bool	   *en = palloc(sizeof(bool) * edesc->natts);
		HeapTuple	etup;

		for (int i = 0; i < edesc->natts; i++)
			en[i] = true;
		ev[column(entryrel, "doc_id") - 1] = Int64GetDatum(doc_id);
		en[column(entryrel, "doc_id") - 1] = false;
		ev[column(entryrel, "lsn") - 1] = Int64GetDatum(lsn);
		en[column(entryrel, "lsn") - 1] = false;
		ev[column(entryrel, "log_bytes") - 1] = Int64GetDatum(bytes);
		en[column(entryrel, "log_bytes") - 1] = false;
		ev[column(entryrel, "delta") - 1] = PointerGetDatum(delta);
		en[column(entryrel, "delta") - 1] = false;
		if (client_id != NULL)
		{
			ev[column(entryrel, "client_id") - 1] = PointerGetDatum(client_id);
			en[column(entryrel, "client_id") - 1] = false;
			ev[column(entryrel, "client_seq") - 1] = Int64GetDatum(client_seq);
			en[column(entryrel, "client_seq") - 1] = false;
		}
		etup = heap_form_tuple(edesc, ev, en);
		simple_heap_insert(entryrel, etup);
		insert_index_entries(entryrel, etup);
	}
	index_close(pkey, AccessShareLock);
	table_close(entryrel, NoLock);
	table_close(docrel, NoLock);

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
