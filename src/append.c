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
 * The hot path works on the two tables directly (index lookup, tuple lock,
 * heap update and insert) instead of through SQL statements: an append is
 * one row lock and one row insert, and planning-free executor startup per
 * statement, constraint expressions and SPI bookkeeping would cost more
 * than the work itself.  The invariants the tables' CHECK constraints
 * state are kept by this code; compaction and everything else still go
 * through SQL.
 */
typedef struct DocCols
{
	AttrNumber	doc_id,
				head_lsn,
				active_log,
				active_base,
				active_bytes,
				due,
				first_append_at,
				rotate_entries,
				rotate_bytes,
				auto_rotate;
} DocCols;

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

static Oid
synclog_relid(Oid nsp, const char *name)
{
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "synclog: relation synclog.%s is missing", name);
	return relid;
}

/* Insert the index entries of a new heap tuple (all indexes, or none for HOT). */
static void
insert_index_entries(Relation rel, HeapTuple tup, bool is_update)
{
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;

	if (is_update && HeapTupleIsHeapOnly(tup))
		return;
	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel), &TTSOpsHeapTuple);
	ExecStoreHeapTuple(tup, slot, false);
	/*
	 * Passed as an insert: the update flag only adds a hint for bottom-up
	 * index deletion, and computing it needs a range table we do not have.
	 */
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

/*
 * Append an already validated delta.  Runs inside sl_spi_begin/end (for
 * the access check and the rare SQL lookups of duplicate_of).
 */
static int64
append_encoded(text *doc, bytea *delta, text *client_id, int64 client_seq)
{
	int64		size = VARSIZE_ANY_EXHDR(delta);
	Oid			nsp = get_namespace_oid("synclog", false);
	Relation	docrel;
	Relation	entryrel;
	DocCols		c;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	found;
	ItemPointerData tid;
	Snapshot	snap;
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	TM_Result	res;
	HeapTuple	oldtup;
	HeapTuple	newtup;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	bool	   *repl;
	int64		doc_id,
				lsn,
				base,
				bytes;
	char	   *log_id;
	bool		xact_snapshot;
	AttrNumber	name_attno;

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

	docrel = table_open(synclog_relid(nsp, "doc"), RowExclusiveLock);
	c.doc_id = column(docrel, "doc_id");
	c.head_lsn = column(docrel, "head_lsn");
	c.active_log = column(docrel, "active_log");
	c.active_base = column(docrel, "active_base");
	c.active_bytes = column(docrel, "active_bytes");
	c.due = column(docrel, "due");
	c.first_append_at = column(docrel, "first_append_at");
	c.rotate_entries = column(docrel, "rotate_entries");
	c.rotate_bytes = column(docrel, "rotate_bytes");
	c.auto_rotate = column(docrel, "auto_rotate");
	name_attno = column(docrel, "name");

	desc = RelationGetDescr(docrel);
	values = palloc0(sizeof(Datum) * desc->natts);
	nulls = palloc0(sizeof(bool) * desc->natts);
	repl = palloc0(sizeof(bool) * desc->natts);

	/*
	 * Read the document row, compute its next version and update it; if
	 * another append (or a rotation) updated the row meanwhile, heap_update
	 * waits for it to commit and reports it, and we start over from the new
	 * version.  The row stays locked by our update until we commit: that is
	 * what makes LSN order commit order.
	 *
	 * In READ COMMITTED every attempt reads in a fresh snapshot, as UPDATE
	 * does.  In REPEATABLE READ and SERIALIZABLE the transaction's snapshot
	 * must see the newest version, or the append fails with a serialization
	 * error like an UPDATE would: the transaction could not see the entries
	 * that took the LSNs before its own, nor a retry's original.
	 */
	for (int attempt = 0;; attempt++)
	{
		CHECK_FOR_INTERRUPTS();
		/* systable_beginscan rewrites the key's attribute number: set it anew. */
		ScanKeyEntryInitialize(&key, 0, name_attno, BTEqualStrategyNumber,
							   InvalidOid, DEFAULT_COLLATION_OID, F_TEXTEQ,
							   PointerGetDatum(doc));
		snap = RegisterSnapshot(xact_snapshot ? GetTransactionSnapshot() : GetLatestSnapshot());
		scan = systable_beginscan(docrel, synclog_relid(nsp, "doc_name_key"), true,
								  snap, 1, &key);
		found = systable_getnext(scan);
		oldtup = HeapTupleIsValid(found) ? heap_copytuple(found) : NULL;
		systable_endscan(scan);
		UnregisterSnapshot(snap);
		if (oldtup == NULL)
			sl_unknown_doc(doc);
		tid = oldtup->t_self;
		heap_deform_tuple(oldtup, desc, values, nulls);
		doc_id = DatumGetInt64(values[c.doc_id - 1]);
		lsn = DatumGetInt64(values[c.head_lsn - 1]) + 1;
		base = DatumGetInt64(values[c.active_base - 1]);
		bytes = DatumGetInt64(values[c.active_bytes - 1]) + size;
		log_id = TextDatumGetCString(values[c.active_log - 1]);

		if (client_id != NULL)
		{
			/*
			 * A retry racing its original: the original holds the row, so
			 * our update below waits for it and we come back here to find
			 * its entry.
			 */
			int64		dup = duplicate_of(doc_id, base, client_id, client_seq);

			if (dup >= 0)
			{
				table_close(docrel, NoLock);
				return dup;
			}
		}

		/* The next version: LSN, bytes, and the due flag (see policy.c). */
		{
			bool		due = DatumGetBool(values[c.due - 1]);

			if (!due && DatumGetBool(values[c.auto_rotate - 1]))
				due = threshold_reached(values[c.rotate_entries - 1], nulls[c.rotate_entries - 1],
										sl_threshold_entries(), lsn - base) ||
					threshold_reached(values[c.rotate_bytes - 1], nulls[c.rotate_bytes - 1],
									  sl_threshold_bytes(), bytes);
			memset(repl, 0, sizeof(bool) * desc->natts);
			values[c.head_lsn - 1] = Int64GetDatum(lsn);
			values[c.active_bytes - 1] = Int64GetDatum(bytes);
			values[c.due - 1] = BoolGetDatum(due);
			if (nulls[c.first_append_at - 1])
			{
				values[c.first_append_at - 1] =
					TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
				nulls[c.first_append_at - 1] = false;
			}
			repl[c.head_lsn - 1] = repl[c.active_bytes - 1] = true;
			repl[c.due - 1] = repl[c.first_append_at - 1] = true;
		}
		newtup = heap_modify_tuple(oldtup, desc, values, nulls, repl);
		res = heap_update(docrel, &tid, newtup, GetCurrentCommandId(true),
						  InvalidSnapshot, true, &tmfd, &lockmode);
		if (res == TM_Ok)
			break;
		if (res != TM_Updated && res != TM_Deleted)
			elog(ERROR, "synclog: unexpected result %d updating document \"%s\"",
				 (int) res, sl_doc_cstring(doc));
		if (xact_snapshot)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update")));

		/*
		 * Dropped while we waited: the document we were appending to is
		 * gone, even if one of the same name was created since, as for an
		 * UPDATE.
		 */
		if (res == TM_Deleted)
			sl_unknown_doc(doc);
		heap_freetuple(newtup);
		heap_freetuple(oldtup);
	}
	insert_index_entries(docrel, newtup, true);

	/* The entry. */
	entryrel = table_open(synclog_relid(nsp, "entry"), RowExclusiveLock);
	{
		TupleDesc	edesc = RelationGetDescr(entryrel);
		Datum	   *ev = palloc0(sizeof(Datum) * edesc->natts);
		bool	   *en = palloc0(sizeof(bool) * edesc->natts);
		HeapTuple	etup;

		for (int i = 0; i < edesc->natts; i++)
			en[i] = true;
		ev[column(entryrel, "doc_id") - 1] = Int64GetDatum(doc_id);
		en[column(entryrel, "doc_id") - 1] = false;
		ev[column(entryrel, "lsn") - 1] = Int64GetDatum(lsn);
		en[column(entryrel, "lsn") - 1] = false;
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
		insert_index_entries(entryrel, etup, false);
	}
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
