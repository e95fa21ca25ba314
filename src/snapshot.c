/*
 * snapshot.c
 *
 * Serving snapshots: the state of a document at a log's base LSN, in key
 * order and in pages a client can resume, plus the snapshot's summary and
 * its client watermarks.
 *
 * Owns: synclog.snapshot (version 0.1's C body) and synclog.snapshot_rows
 * (what the SQL synclog.snapshot of 0.2 runs), synclog.snapshot_info,
 * synclog.snapshot_clients.
 * Must never: hold a page beyond max_rows in memory, or serve a collected
 * log's snapshot (its versions may already be gone).
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "access/htup_details.h"
#include "access/itup.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_type_d.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "miscadmin.h"
#include "parser/parse_relation.h"
#include "storage/bufmgr.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "lib/stringinfo.h"
#include "utils/memutils.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "synclog.h"
#include "kv_values.h"

PG_FUNCTION_INFO_V1(synclog_snapshot);
PG_FUNCTION_INFO_V1(synclog_snapshot_rows);
PG_FUNCTION_INFO_V1(synclog_snapshot_info);
PG_FUNCTION_INFO_V1(synclog_snapshot_clients);

/*
 * The newest version at or below the snapshot LSN wins; tombstones are
 * dropped after that choice, not before, or an older value would show
 * through a deletion.
 */
#define SNAPSHOT_PAGE_SQL(after_clause) \
	"SELECT key, kind, value FROM (" \
	"  SELECT DISTINCT ON (key) key, kind, value FROM synclog.kv " \
	"  WHERE doc_id = $1 AND ns = $2 AND lsn <= $3 " after_clause \
	"  ORDER BY key, lsn DESC) v " \
	"WHERE kind <> 'd' LIMIT $4"

/*
 * Run one page of the state of namespace ns at lsn; rows land in
 * SPI_tuptable.  Used for client watermarks, whose values are small.
 */
static void
state_page(int64 doc_id, int16 ns, int64 lsn, bytea *after_key, int64 max_rows)
{
	static SPIPlanPtr plan_first;
	static SPIPlanPtr plan_next;
	Oid			types[5] = {INT8OID, INT2OID, INT8OID, INT8OID, BYTEAOID};
	Datum		args[5] = {Int64GetDatum(doc_id), Int16GetDatum(ns),
						   Int64GetDatum(lsn), Int64GetDatum(max_rows),
						   PointerGetDatum(after_key)};

	if (after_key == NULL)
		sl_exec(&plan_first, SNAPSHOT_PAGE_SQL(""), 4, types, args, NULL, true, 0);
	else
		sl_exec(&plan_next, SNAPSHOT_PAGE_SQL("AND key > $5"), 5, types, args,
				NULL, true, 0);
}

/* Look up doc and (uncollected) log in the caller's snapshot. */
static void
find_snapshot(FunctionCallInfo fcinfo, SlDoc *d, SlLog *l)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	text	   *log_id = sl_arg_log_id(fcinfo, 1);

	sl_find_readable_log(doc, log_id, d, l);
}

/* A column of rel that must exist. */
static AttrNumber
kv_column(Relation rel, const char *name)
{
	AttrNumber	att = attnameAttNum(rel, name, false);

	if (att == InvalidAttrNumber)
		elog(ERROR, "column \"%s\" of relation \"%s\" does not exist",
			 name, RelationGetRelationName(rel));
	return att;
}

/* The index columns of kv_key_idx: (doc_id, ns, key, lsn DESC). */
#define KV_IDX_DOC	1
#define KV_IDX_NS	2
#define KV_IDX_KEY	3
#define KV_IDX_LSN	4

/*
 * One page of the data keys of the state at lsn: the first max_rows keys
 * after after_key (NULL: from the first) whose newest version at or below
 * lsn is a value, with that value.
 *
 * A scan of kv_key_idx in the caller's snapshot, with no SQL in between.
 * Within a key the versions come newest first, and the index entry holds
 * the key and the LSN: versions after lsn and versions older than the one
 * that decided the key are skipped without reading their rows.  The first
 * version at or below lsn that the snapshot sees decides the key (a
 * tombstone drops it); one it does not see (a row of a rotation that
 * rolled back) is passed over.  So a page reads the rows it returns and
 * little more, as a plain paged SELECT of the same rows does, however many
 * older versions the state keeps (BENCHMARKS.md, area 7b).
 *
 * Relations are closed keeping their locks to the end of the transaction,
 * kv's TOAST table and its index included (opened for that alone when
 * values are not read here): PostgreSQL opens the TOAST table and its
 * index again for every value it detoasts, and finding the lock already
 * held makes each of those opens cheaper.
 */
typedef struct PageScan
{
	Relation	kv;
	Relation	idx;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	AttrNumber	a_key;
	AttrNumber	a_kind;
	AttrNumber	a_value;
	int64		doc_id;
	int64		lsn;
	int32		max_rows;
	int32		sent;
	ScanKeyData skey[3];
	int			decided_len;	/* the last key decided, -1: none yet */
	char		decided[SLC_KEY_MAX];
	struct varlena *unpacked;	/* the current key, if the index compressed it */
	ValueReader vr;				/* reads values only for snapshot_rows */
	MemoryContext mcxt;			/* where the scans live */
	bool		open;
} PageScan;

static void
page_scan_begin(PageScan *ps, Oid kv_oid, Oid kv_idx_oid, int64 doc_id,
				int64 lsn, bytea *after_key, int32 max_rows, bool read_values,
				bool bulk)
{
	int			nkeys = after_key != NULL ? 3 : 2;

	ps->kv = table_open(kv_oid, AccessShareLock);
	ps->idx = index_open(kv_idx_oid, AccessShareLock);
	ps->a_key = kv_column(ps->kv, "key");
	ps->a_kind = kv_column(ps->kv, "kind");
	ps->a_value = kv_column(ps->kv, "value");
	ps->doc_id = doc_id;
	ps->lsn = lsn;
	ps->max_rows = max_rows;
	ps->sent = 0;
	ps->decided_len = -1;
	ps->unpacked = NULL;
	ps->mcxt = CurrentMemoryContext;
	/* opened in both cases: the lock is taken either way */
	sl_value_reader_begin(&ps->vr, ps->kv, read_values, bulk);
	ScanKeyInit(&ps->skey[0], KV_IDX_DOC, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(doc_id));
	ScanKeyInit(&ps->skey[1], KV_IDX_NS, BTEqualStrategyNumber, F_INT2EQ,
				Int16GetDatum(SLC_NS_DATA));
	if (after_key != NULL)
		ScanKeyInit(&ps->skey[2], KV_IDX_KEY, BTGreaterStrategyNumber, F_BYTEAGT,
					PointerGetDatum(after_key));
	ps->slot = table_slot_create(ps->kv, NULL);
	ps->scan = index_beginscan(ps->kv, ps->idx, GetActiveSnapshot(), nkeys, 0);
	ps->scan->xs_want_itup = true;
	index_rescan(ps->scan, ps->skey, nkeys, NULL, 0);
	ps->open = true;
}

static void
page_scan_end(PageScan *ps)
{
	if (!ps->open)
		return;
	ps->open = false;
	index_endscan(ps->scan);
	ExecDropSingleTupleTableSlot(ps->slot);
	sl_value_reader_end(&ps->vr);
	index_close(ps->idx, NoLock);
	table_close(ps->kv, NoLock);
}

/*
 * The next row of the page: false when the page is full or the state has
 * no more keys.  *key and *value are as stored, and point into the scan's
 * slot (good until the next call).
 */
static bool
page_scan_next(PageScan *ps, Datum *key, Datum *value)
{
	IndexScanDesc scan = ps->scan;
	MemoryContext caller = MemoryContextSwitchTo(ps->mcxt);

	while (ps->sent < ps->max_rows &&
		   index_getnext_tid(scan, ForwardScanDirection) != NULL)
	{
		bool		isnull;
		Datum		k = index_getattr(scan->xs_itup, KV_IDX_KEY, scan->xs_itupdesc, &isnull);
		struct varlena *kp = (struct varlena *) DatumGetPointer(k);
		int			klen;

		CHECK_FOR_INTERRUPTS();
		/* an index keeps long keys compressed (never out of line) */
		if (VARATT_IS_COMPRESSED(kp))
		{
			if (ps->unpacked != NULL)
				pfree(ps->unpacked);
			kp = ps->unpacked = detoast_attr(kp);
		}
		klen = VARSIZE_ANY_EXHDR(kp);
		if (klen > SLC_KEY_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("malformed key in synclog.kv"),
					 errdetail("A key of the document with internal id %lld is %d bytes; keys are at most %d bytes.",
							   (long long) ps->doc_id, klen, SLC_KEY_MAX)));
		/* an older version of a key already decided, or one after lsn */
		if ((klen == ps->decided_len && memcmp(VARDATA_ANY(kp), ps->decided, klen) == 0) ||
			DatumGetInt64(index_getattr(scan->xs_itup, KV_IDX_LSN,
										scan->xs_itupdesc, &isnull)) > ps->lsn)
			continue;
		/* a version this snapshot does not see decides nothing */
		if (!index_fetch_heap(scan, ps->slot))
			continue;
		memcpy(ps->decided, VARDATA_ANY(kp), klen);
		ps->decided_len = klen;
		if (DatumGetChar(slot_getattr(ps->slot, ps->a_kind, &isnull)) != 'v')
			continue;
		*key = slot_getattr(ps->slot, ps->a_key, &isnull);
		*value = slot_getattr(ps->slot, ps->a_value, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("missing value in synclog.kv"),
					 errdetail("A version of kind 'v' of the document with internal id %lld has no value.",
							   (long long) ps->doc_id)));
		ps->sent++;
		MemoryContextSwitchTo(caller);
		return true;
	}
	MemoryContextSwitchTo(caller);
	return false;
}

/*
 * synclog.snapshot_rows(doc text, log_id text, after_key bytea, max_rows integer)
 *   returns setof (key bytea, value bytea)
 *
 * What synclog.snapshot returns, a row per call.  synclog.snapshot is a SQL
 * function that calls this one in its select list, and PostgreSQL inlines
 * it into the caller's query, so that a page streams as a plain SELECT
 * does: each row goes out as soon as it is found, while the next is
 * looked up, and no page is materialized first (a C function in FROM
 * always is).  Out-of-line values are read here (a row value cannot hold
 * a TOAST pointer) through one ValueReader for the page.
 *
 * Callable by PUBLIC, but only by roles that may execute synclog.snapshot
 * (42501 otherwise); the same checks as synclog.snapshot follow.
 */
/* The OID of synclog.snapshot(text, text, bytea, integer). */
static Oid
snapshot_func_oid(void)
{
	Oid			argtypes[4] = {TEXTOID, TEXTOID, BYTEAOID, INT4OID};

	return LookupFuncName(list_make2(makeString("synclog"), makeString("snapshot")),
						  4, argtypes, false);
}

typedef struct RowsState
{
	PageScan	ps;
	TupleDesc	desc;
	ExprContext *econtext;
} RowsState;

/*
 * The row (key, value) of a value stored out of line uncompressed, built
 * around the value's bytes: read from the TOAST chunks straight into the
 * row (heap_form_tuple would zero the row, then copy a value read into a
 * buffer of its own: two more passes over every byte).  The layout is
 * heap_form_tuple's for two varlena columns without nulls: the key as
 * stored (its header may be short), zero padding to int alignment, the
 * value with a 4-byte header.
 */
static HeapTuple
row_reading_value(RowsState *st, struct varlena *key, struct varlena *ptr)
{
	struct varatt_external ext;
	Size		klen = VARSIZE_ANY(key);
	Size		hoff = MAXALIGN(SizeofHeapTupleHeader);
	Size		voff = INTALIGN(klen);
	Size		len;
	HeapTuple	tuple;
	HeapTupleHeader td;
	char	   *data;

	VARATT_EXTERNAL_GET_POINTER(ext, ptr);
	len = hoff + voff + VARHDRSZ + VARATT_EXTERNAL_GET_EXTSIZE(ext);
	tuple = (HeapTuple) palloc(HEAPTUPLESIZE + len);
	tuple->t_len = len;
	ItemPointerSetInvalid(&tuple->t_self);
	tuple->t_tableOid = InvalidOid;
	td = tuple->t_data = (HeapTupleHeader) ((char *) tuple + HEAPTUPLESIZE);
	memset(td, 0, hoff);
	HeapTupleHeaderSetDatumLength(td, len);
	HeapTupleHeaderSetTypeId(td, st->desc->tdtypeid);
	HeapTupleHeaderSetTypMod(td, st->desc->tdtypmod);
	ItemPointerSetInvalid(&td->t_ctid);
	HeapTupleHeaderSetNatts(td, 2);
	td->t_hoff = hoff;
	td->t_infomask = HEAP_HASVARWIDTH;
	data = (char *) td + hoff;
	memcpy(data, key, klen);
	memset(data + klen, 0, voff - klen);
	SET_VARSIZE(data + voff, VARHDRSZ + VARATT_EXTERNAL_GET_EXTSIZE(ext));
	sl_value_reader_read(&st->ps.vr, ptr, VARDATA(data + voff));
	return tuple;
}

static void
rows_shutdown(Datum arg)
{
	page_scan_end(&((RowsState *) DatumGetPointer(arg))->ps);
}

Datum
synclog_snapshot_rows(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	RowsState  *st;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	bool		compressed;
	HeapTuple	tuple;

	if (SRF_IS_FIRSTCALL())
	{
		ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
		MemoryContext old;
		bytea	   *after_key = NULL;
		int32		max_rows;
		SlDoc		d;
		SlLog		l;
		Oid			kv_oid,
					kv_idx_oid;
		TupleDesc	desc;
		slc_hash	h;

		(void) sl_arg_doc(fcinfo, 0);
		(void) sl_arg_log_id(fcinfo, 1);
		max_rows = sl_arg_positive_int(fcinfo, 3, "max_rows");
		if (pg_proc_aclcheck(snapshot_func_oid(), GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FUNCTION, "snapshot");
		if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("set-valued function called in context that cannot accept a set")));
		funcctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		st = palloc0(sizeof(RowsState));
		st->desc = BlessTupleDesc(desc);
		if (!PG_ARGISNULL(2))
			after_key = PG_GETARG_BYTEA_P_COPY(2);
		sl_spi_begin();
		find_snapshot(fcinfo, &d, &l);
		sl_bytea_to_hash(l.snapshot_hash, &h);
		kv_oid = sl_relid("kv");
		kv_idx_oid = sl_relid("kv_key_idx");
		sl_spi_end();
		page_scan_begin(&st->ps, kv_oid, kv_idx_oid, d.doc_id, l.base_lsn,
						after_key, max_rows, true,
						h.bytes > (uint64) NBuffers * BLCKSZ / 4);
		st->econtext = rsinfo->econtext;
		RegisterExprContextCallback(st->econtext, rows_shutdown, PointerGetDatum(st));
		funcctx->user_fctx = st;
		MemoryContextSwitchTo(old);
	}
	funcctx = SRF_PERCALL_SETUP();
	st = (RowsState *) funcctx->user_fctx;
	if (!page_scan_next(&st->ps, &values[0], &values[1]))
	{
		UnregisterExprContextCallback(st->econtext, rows_shutdown, PointerGetDatum(st));
		page_scan_end(&st->ps);
		SRF_RETURN_DONE(funcctx);
	}
	if (!sl_value_reader_takes(&st->ps.vr, (struct varlena *) DatumGetPointer(values[1]),
							&compressed))
		tuple = heap_form_tuple(st->desc, values, nulls);
	else if (!compressed && !VARATT_IS_EXTERNAL(DatumGetPointer(values[0])) &&
			 !VARATT_IS_COMPRESSED(DatumGetPointer(values[0])))
		tuple = row_reading_value(st, (struct varlena *) DatumGetPointer(values[0]),
								  (struct varlena *) DatumGetPointer(values[1]));
	else
	{
		values[1] = PointerGetDatum(sl_value_reader_fetch(&st->ps.vr,
													   (struct varlena *) DatumGetPointer(values[1]),
													   compressed));
		tuple = heap_form_tuple(st->desc, values, nulls);
		pfree(DatumGetPointer(values[1]));
	}
	SRF_RETURN_NEXT(funcctx, HeapTupleGetDatum(tuple));
}

/*
 * synclog.snapshot(doc text, log_id text, after_key bytea, max_rows integer)
 *   returns setof (key bytea, value bytea)
 *
 * One page of the document's state at the base LSN of log log_id (which
 * must not be collected): the data keys after after_key (from the first
 * when it is NULL) in byte order of the key, at most max_rows of them.
 * Runs in the caller's snapshot, so a client pages through one state even
 * while rotations and collections go on.
 *
 * Since version 0.2 synclog.snapshot is a SQL function over
 * synclog.snapshot_rows (above); this is its version 0.1 body, which an
 * installation runs between CREATE EXTENSION of 0.1 and the update.  It
 * puts the page into the function's tuplestore, values as they are
 * stored: out-of-line ones as TOAST pointers, fetched once when the row
 * is sent.  The pointers stay good until then: the rows they point to are
 * visible to this statement's snapshot, which stays registered until the
 * last row is sent (a portal keeps it; PostgreSQL detoasts the rows of one
 * held past its transaction when it persists them), so no VACUUM after a
 * gc can take them away before that.
 *
 * Both take AccessShareLock on synclog.doc, synclog.entry (through the view
 * synclog.doc_head), synclog.log and synclog.kv (with its TOAST table and
 * index), and on synclog.doc_grant when the caller is a role whose
 * confinement this backend has not cached yet; no row locks.
 */
Datum
synclog_snapshot(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bytea	   *after_key = PG_ARGISNULL(2) ? NULL : PG_GETARG_BYTEA_PP(2);
	int32		max_rows = sl_arg_positive_int(fcinfo, 3, "max_rows");
	SlDoc		d;
	SlLog		l;
	Oid			kv_oid,
				kv_idx_oid;
	PageScan   *ps = palloc(sizeof(PageScan));
	Datum		values[2];
	bool		nulls[2] = {false, false};

	(void) sl_arg_doc(fcinfo, 0);
	(void) sl_arg_log_id(fcinfo, 1);
	InitMaterializedSRF(fcinfo, 0);
	sl_spi_begin();
	find_snapshot(fcinfo, &d, &l);
	kv_oid = sl_relid("kv");
	kv_idx_oid = sl_relid("kv_key_idx");
	sl_spi_end();
	page_scan_begin(ps, kv_oid, kv_idx_oid, d.doc_id, l.base_lsn, after_key,
					max_rows, false, false);
	while (page_scan_next(ps, &values[0], &values[1]))
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	page_scan_end(ps);
	pfree(ps);
	return (Datum) 0;
}

/*
 * Calls fn for every client watermark of the snapshot, in client_id order,
 * a page at a time so that a document with very many clients stays cheap.
 */
typedef void (*watermark_fn) (void *arg, const char *id, int idlen,
							  int64 seq, int64 lsn);

static void
foreach_watermark(int64 doc_id, int64 lsn, watermark_fn fn, void *arg)
{
	bytea	   *after = NULL;

	for (;;)
	{
		uint64		n;
		bool		isnull;

		state_page(doc_id, SLC_NS_CLIENT, lsn, after, 1000);
		n = SPI_processed;
		for (uint64 i = 0; i < n; i++)
		{
			bytea	   *k = DatumGetByteaPP(sl_col(i, 1, &isnull));
			bytea	   *v = DatumGetByteaPP(sl_col(i, 3, &isnull));
			int64		seq,
						wlsn;

			if (VARSIZE_ANY_EXHDR(v) != SLC_WATERMARK_LEN)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("malformed client watermark in synclog.kv"),
						 errdetail("A watermark of the document with internal id %lld is %d bytes; watermarks are %d bytes.",
								   (long long) doc_id, (int) VARSIZE_ANY_EXHDR(v),
								   SLC_WATERMARK_LEN)));
			slc_watermark_decode((const uint8 *) VARDATA_ANY(v), &seq, &wlsn);
			fn(arg, VARDATA_ANY(k), VARSIZE_ANY_EXHDR(k), seq, wlsn);
			if (i == n - 1)
				after = DatumGetByteaPCopy(sl_col(i, 1, &isnull));
		}
		SPI_freetuptable(SPI_tuptable);
		if (n < 1000)
			break;
	}
}

typedef struct InfoAcc
{
	StringInfoData json;
	int64		clients;
	int64		client_bytes;
} InfoAcc;

/* watermark_fn of snapshot_info: one member of the clients object, and the counts. */
static void
info_add(void *arg, const char *id, int idlen, int64 seq, int64 lsn)
{
	InfoAcc    *a = (InfoAcc *) arg;
	char	   *s = pnstrdup(id, idlen);

	appendStringInfoString(&a->json, a->clients ? "," : "");
	escape_json(&a->json, s);
	appendStringInfo(&a->json, ":{\"seq\":" INT64_FORMAT ",\"lsn\":" INT64_FORMAT "}",
					 seq, lsn);
	a->clients++;
	a->client_bytes += idlen + SLC_WATERMARK_LEN;
	pfree(s);
}

/*
 * synclog.snapshot_info(doc text, log_id text)
 *   returns setof (log_id text, base_lsn bigint, snapshot_hash bytea, key_count bigint,
 *                  key_bytes bigint, client_count bigint, clients jsonb)
 *
 * The summary of the snapshot of log log_id: its hash, the number and size
 * of its data keys (from the hash, less the watermarks) and its client
 * watermarks as a JSON object client_id -> {seq, lsn}.
 *
 * Takes AccessShareLock on synclog.doc, synclog.entry (through the view
 * synclog.doc_head), synclog.log and synclog.kv, and on synclog.doc_grant
 * when the caller is a role whose confinement this backend has not cached
 * yet; no row locks.
 */
Datum
synclog_snapshot_info(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SlDoc		d;
	SlLog		l;
	slc_hash	h;
	InfoAcc		acc;
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};

	InitMaterializedSRF(fcinfo, 0);
	sl_spi_begin();
	find_snapshot(fcinfo, &d, &l);
	sl_bytea_to_hash(l.snapshot_hash, &h);
	initStringInfo(&acc.json);
	appendStringInfoChar(&acc.json, '{');
	acc.clients = 0;
	acc.client_bytes = 0;
	foreach_watermark(d.doc_id, l.base_lsn, info_add, &acc);
	appendStringInfoChar(&acc.json, '}');

	values[0] = CStringGetTextDatum(l.log_id);
	values[1] = Int64GetDatum(l.base_lsn);
	values[2] = PointerGetDatum(l.snapshot_hash);
	/* The hash counts every item; keys are what is left after the clients. */
	values[3] = Int64GetDatum((int64) h.count - acc.clients);
	values[4] = Int64GetDatum((int64) h.bytes - acc.client_bytes);
	values[5] = Int64GetDatum(acc.clients);
	values[6] = DirectFunctionCall1(jsonb_in, CStringGetDatum(acc.json.data));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	sl_spi_end();
	return (Datum) 0;
}

typedef struct ClientRows
{
	ReturnSetInfo *rsinfo;
} ClientRows;

/* watermark_fn of snapshot_clients: one result row. */
static void
client_row(void *arg, const char *id, int idlen, int64 seq, int64 lsn)
{
	ClientRows *c = (ClientRows *) arg;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	values[0] = PointerGetDatum(cstring_to_text_with_len(id, idlen));
	values[1] = Int64GetDatum(seq);
	values[2] = Int64GetDatum(lsn);
	tuplestore_putvalues(c->rsinfo->setResult, c->rsinfo->setDesc, values, nulls);
}

/*
 * synclog.snapshot_clients(doc text, log_id text)
 *   returns setof (client_id text, client_seq bigint, client_lsn bigint)
 *
 * The client watermarks of the snapshot of log log_id, in client_id order.
 *
 * Takes AccessShareLock on synclog.doc, synclog.entry (through the view
 * synclog.doc_head), synclog.log and synclog.kv, and on synclog.doc_grant
 * when the caller is a role whose confinement this backend has not cached
 * yet; no row locks.
 */
Datum
synclog_snapshot_clients(PG_FUNCTION_ARGS)
{
	ClientRows	c;
	SlDoc		d;
	SlLog		l;

	c.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	InitMaterializedSRF(fcinfo, 0);
	sl_spi_begin();
	find_snapshot(fcinfo, &d, &l);
	foreach_watermark(d.doc_id, l.base_lsn, client_row, &c);
	sl_spi_end();
	return (Datum) 0;
}
