/*
 * snapshot.c
 *
 * Serving snapshots: the state of a document at a log's base LSN, in key
 * order and in pages a client can resume, plus the snapshot's summary and
 * its client watermarks.
 *
 * Owns: synclog.snapshot, synclog.snapshot_info, synclog.snapshot_clients.
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
#include "miscadmin.h"
#include "parser/parse_relation.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "lib/stringinfo.h"
#include "utils/memutils.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_snapshot);
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

	sl_require_doc(doc, false);
	sl_find_doc(doc, d, true);
	sl_find_log(doc, d, log_id, l, false, true);
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
 * One page of the data keys of the state at lsn into the tuplestore: the
 * first max_rows keys after after_key (NULL: from the first) whose newest
 * version at or below lsn is a value, with that value.
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
 * Values go into the tuplestore as they are stored, out-of-line ones as
 * TOAST pointers, and are fetched once, when the row is sent, as a plain
 * SELECT does; detoasting them here copied every value twice more.  The
 * pointers stay good until then: the rows they point to are visible to
 * this statement's snapshot, which stays registered until the last row is
 * sent (a portal keeps it; PostgreSQL detoasts the rows of one held past
 * its transaction when it persists them), so no VACUUM after a gc can take
 * them away before that.
 */
static void
data_page(ReturnSetInfo *rsinfo, Oid kv_oid, Oid kv_idx_oid, int64 doc_id,
		  int64 lsn, bytea *after_key, int32 max_rows)
{
	Relation	kv = table_open(kv_oid, AccessShareLock);
	Relation	idx = index_open(kv_idx_oid, AccessShareLock);
	AttrNumber	a_key = kv_column(kv, "key"),
				a_kind = kv_column(kv, "kind"),
				a_value = kv_column(kv, "value");
	ScanKeyData skey[3];
	int			nkeys = after_key != NULL ? 3 : 2;
	IndexScanDesc scan;
	TupleTableSlot *slot = table_slot_create(kv, NULL);
	char	   *decided = palloc(SLC_KEY_MAX);	/* the last key decided */
	struct varlena *unpacked = NULL;
	int			decided_len = -1;
	int32		sent = 0;

	ScanKeyInit(&skey[0], KV_IDX_DOC, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(doc_id));
	ScanKeyInit(&skey[1], KV_IDX_NS, BTEqualStrategyNumber, F_INT2EQ,
				Int16GetDatum(SLC_NS_DATA));
	if (after_key != NULL)
		ScanKeyInit(&skey[2], KV_IDX_KEY, BTGreaterStrategyNumber, F_BYTEAGT,
					PointerGetDatum(after_key));
	scan = index_beginscan(kv, idx, GetActiveSnapshot(), nkeys, 0);
	scan->xs_want_itup = true;
	index_rescan(scan, skey, nkeys, NULL, 0);
	while (sent < max_rows && index_getnext_tid(scan, ForwardScanDirection) != NULL)
	{
		bool		isnull;
		Datum		k = index_getattr(scan->xs_itup, KV_IDX_KEY, scan->xs_itupdesc, &isnull);
		struct varlena *kp = (struct varlena *) DatumGetPointer(k);
		int			klen;

		CHECK_FOR_INTERRUPTS();
		/* an index keeps long keys compressed (never out of line) */
		if (VARATT_IS_COMPRESSED(kp))
		{
			if (unpacked != NULL)
				pfree(unpacked);
			kp = unpacked = detoast_attr(kp);
		}
		klen = VARSIZE_ANY_EXHDR(kp);
		if (klen > SLC_KEY_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("malformed key in synclog.kv"),
					 errdetail("A key of the document with internal id %lld is %d bytes; keys are at most %d bytes.",
							   (long long) doc_id, klen, SLC_KEY_MAX)));
		/* an older version of a key already decided, or one after lsn */
		if ((klen == decided_len && memcmp(VARDATA_ANY(kp), decided, klen) == 0) ||
			DatumGetInt64(index_getattr(scan->xs_itup, KV_IDX_LSN,
										scan->xs_itupdesc, &isnull)) > lsn)
			continue;
		/* a version this snapshot does not see decides nothing */
		if (!index_fetch_heap(scan, slot))
			continue;
		memcpy(decided, VARDATA_ANY(kp), klen);
		decided_len = klen;
		if (DatumGetChar(slot_getattr(slot, a_kind, &isnull)) == 'v')
		{
			Datum		values[2];
			bool		nulls[2] = {false, false};

			values[0] = slot_getattr(slot, a_key, &isnull);
			values[1] = slot_getattr(slot, a_value, &nulls[1]);
			if (nulls[1])
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("missing value in synclog.kv"),
						 errdetail("A version of kind 'v' of the document with internal id %lld has no value.",
								   (long long) doc_id)));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			sent++;
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	pfree(decided);
	index_close(idx, AccessShareLock);
	table_close(kv, AccessShareLock);
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
 * Takes AccessShareLock on synclog.doc, synclog.entry (through the view
 * synclog.doc_head), synclog.log and synclog.kv, and on synclog.doc_grant
 * when the caller is a role whose confinement this backend has not cached
 * yet; no row locks.
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

	(void) sl_arg_doc(fcinfo, 0);
	(void) sl_arg_log_id(fcinfo, 1);
	InitMaterializedSRF(fcinfo, 0);
	sl_spi_begin();
	find_snapshot(fcinfo, &d, &l);
	kv_oid = sl_relid("kv");
	kv_idx_oid = sl_relid("kv_key_idx");
	sl_spi_end();
	data_page(rsinfo, kv_oid, kv_idx_oid, d.doc_id, l.base_lsn, after_key, max_rows);
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
