/*
 * range.c
 *
 * Range buckets and range reads (PROTOCOL.md sections 6a and 11a): the
 * bucket of an item, the range hashes of the state at a position, and the
 * items of some buckets of the state at a position, a position being a
 * log's base or a group end inside the log.
 *
 * Owns: synclog.bucket, synclog.range_hashes, synclog.range.
 * Must never: hold more than one page of items in memory, serve a
 * collected log's buckets, or serve a position inside a group.
 *
 * The hashes at a base come from synclog.range_hash (range_store.c); past
 * the base, the entries in between move them bucket by bucket
 * (catch_up.c, as catch_up_target moves the state hash).  A bucket's items
 * are found by one pass over the state in key order, keeping the listed
 * buckets' items: no index by bucket, whose pages every rotation would
 * dirty all over (BENCHMARKS.md, issue 11); a repair is rare, rotations
 * are not.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_bucket);
PG_FUNCTION_INFO_V1(synclog_range_hashes);
PG_FUNCTION_INFO_V1(synclog_range);

/* Little-endian u64 of synclog.kv.item_hash. */
static uint64
get_u64le(const uint8 *p)
{
	uint64		v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/*
 * Parse a stored item hash (synclog.kv.item_hash: u64le lo, u64le hi,
 * u64le klen + vlen); a malformed one is corruption (XX001).
 */
void
sl_item_hash_parse(bytea *item, int64 doc_id, uint64 *lo, uint64 *hi,
				   uint64 *bytes)
{
	const uint8 *p = (const uint8 *) VARDATA_ANY(item);

	if (VARSIZE_ANY_EXHDR(item) != SL_ITEM_HASH_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed item hash in synclog.kv"),
				 errdetail("An item hash of the document with internal id %lld is %d bytes; item hashes are %d bytes.",
						   (long long) doc_id, (int) VARSIZE_ANY_EXHDR(item),
						   SL_ITEM_HASH_LEN)));
	*lo = get_u64le(p);
	*hi = get_u64le(p + 8);
	*bytes = get_u64le(p + 16);
}

/* The bucket of (ns, key) in the form the tables store it. */
int16
sl_bucket_of(int16 ns, const uint8 *key, size_t klen)
{
	return (int16) slc_bucket((uint8) ns, key, klen);
}

/*
 * synclog.bucket(ns smallint, key bytea) returns integer
 *
 * The range bucket of an item (PROTOCOL.md section 11a), 0 to 4095.  ns
 * must be 1 (data) or 2 (client watermark; key = the client id's bytes)
 * and the key at most 1024 bytes (22023 otherwise).  Takes no locks.
 */
Datum
synclog_bucket(PG_FUNCTION_ARGS)
{
	int16		ns = PG_GETARG_INT16(0);
	bytea	   *key = PG_GETARG_BYTEA_PP(1);

	if (ns != SLC_NS_DATA && ns != SLC_NS_CLIENT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("namespace must be 1 (data) or 2 (client watermarks)"),
				 errdetail("The value given was %d.", ns)));
	if (VARSIZE_ANY_EXHDR(key) > SLC_KEY_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key is too long"),
				 errdetail("Keys are at most %d bytes; this one is %d bytes.",
						   SLC_KEY_MAX, (int) VARSIZE_ANY_EXHDR(key))));
	PG_RETURN_INT32(slc_bucket((uint8) ns, (const uint8 *) VARDATA_ANY(key),
							   VARSIZE_ANY_EXHDR(key)));
}

/* ------------------------------------------------------------------------
 * Reads
 * ------------------------------------------------------------------------
 */

/*
 * The optional position argument of the reads: NULL for the log's base,
 * else an LSN in the log at a group end (sl_check_target, 22023).
 */
static int64
arg_at(FunctionCallInfo fcinfo, int argno, const SlDoc *d, const SlLog *l)
{
	int64		lsn;

	if (PG_ARGISNULL(argno))
		return l->base_lsn;
	lsn = PG_GETARG_INT64(argno);
	sl_check_target(d, l, lsn, "lsn");
	return lsn;
}

/*
 * synclog.range_hashes(doc text, log_id text, lsn bigint DEFAULT NULL)
 *   returns setof (bucket integer, hash bytea)
 *
 * The range hashes of the state at position (log_id, lsn) of the
 * document, at the log's base when lsn is NULL (any log of the document
 * that is not collected): one row per non-empty bucket, in bucket order.
 * Their sum (synclog.hash_combine) is the state's hash there: the log's
 * snapshot_hash at its base, what synclog.catch_up_target returns at the
 * head.  lsn must lie in the log and end a group (22023); SL002 for a log
 * that is not the document's, SL003 for a collected one.  Reads the
 * stored rows since the newest full one at or below the base
 * (range_store.c) and, for a position past the base, the entries in
 * between (their keys' base item hashes, never the values).  Runs in the
 * caller's snapshot.
 *
 * Takes AccessShareLock on synclog.doc, synclog.entry (through the view
 * synclog.doc_head), synclog.log and synclog.range_hash (and synclog.kv
 * for a position past the base), and on synclog.doc_grant when the caller
 * is a role whose confinement this backend has not cached yet; no row
 * locks.
 */
Datum
synclog_range_hashes(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	text	   *log_id = sl_arg_log_id(fcinfo, 1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SlDoc		d;
	SlLog		l;
	int64		at;
	slc_hash   *rh;

	InitMaterializedSRF(fcinfo, 0);
	sl_spi_begin();
	sl_find_readable_log(doc, log_id, &d, &l);
	at = arg_at(fcinfo, 2, &d, &l);
	rh = palloc(sizeof(slc_hash) * SLC_BUCKETS);
	sl_range_hashes_at(d.doc_id, l.base_lsn, rh, true);
	sl_head_range_hashes(d.doc_id, &l, at, rh);
	for (int b = 0; b < SLC_BUCKETS; b++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		if (rh[b].count == 0)
			continue;
		values[0] = Int32GetDatum(b);
		values[1] = PointerGetDatum(sl_hash_to_bytea(&rh[b]));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	sl_spi_end();
	return (Datum) 0;
}

/* int comparator for qsort */
static int
cmp_int(const void *a, const void *b)
{
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	return (x > y) - (x < y);
}

/*
 * The buckets argument: not NULL, no NULL element, each in 0..4095;
 * returned sorted without duplicates.
 */
static int *
arg_buckets(FunctionCallInfo fcinfo, int argno, int *nout)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int		   *out;
	int			m = 0;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("\"%s\" must not be NULL", "buckets")));
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("\"%s\" must be a one-dimensional array", "buckets")));
	deconstruct_array(arr, INT4OID, 4, true, TYPALIGN_INT, &elems, &nulls, &n);
	out = palloc(sizeof(int) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		int			b;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("\"%s\" must not contain NULL", "buckets")));
		b = DatumGetInt32(elems[i]);
		if (b < 0 || b >= SLC_BUCKETS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("bucket %d is out of range", b),
					 errdetail("Buckets are numbered 0 to %d.", SLC_BUCKETS - 1)));
		out[i] = b;
	}
	qsort(out, n, sizeof(int), cmp_int);
	for (int i = 0; i < n; i++)
		if (m == 0 || out[m - 1] != out[i])
			out[m++] = out[i];
	*nout = m;
	return out;
}

/*
 * The items of the listed buckets in the state at a log's base, in (ns,
 * key) order, after (after_ns, after_key): per key the newest version at
 * or below the base (a tombstone: absent).  The keys and their versions'
 * LSNs come from one pass over kv_key_idx (an index-only scan once
 * vacuum has marked kv's pages all-visible), the other buckets' keys
 * dropped there; only the listed buckets' rows are then fetched.  Values
 * stay as stored (TOAST pointers) until sent.
 */
typedef struct BaseScan
{
	Portal		portal;
	SPITupleTable *batch;
	uint64		n;
	uint64		i;
	/* the current item, valid until the next call */
	int16		ns;
	bytea	   *key;
	Datum		value;
	bool		value_null;
	bytea	   *nskey;			/* ns || key, for merging with writes */
} BaseScan;

static void
base_begin(BaseScan *bs, int64 doc_id, int64 base, const int *list, int nlist,
		   int16 after_ns, bytea *after_key)
{
	static SPIPlanPtr plan;
	Oid			types[5] = {INT8OID, INT8OID, INT2OID, BYTEAOID, INT4ARRAYOID};
	Datum		args[5];
	Datum	   *elems = palloc(sizeof(Datum) * nlist);
	bytea	   *none = palloc(VARHDRSZ);

	SET_VARSIZE(none, VARHDRSZ);
	memset(bs, 0, sizeof(*bs));
	for (int i = 0; i < nlist; i++)
		elems[i] = Int32GetDatum(list[i]);
	args[0] = Int64GetDatum(doc_id);
	args[1] = Int64GetDatum(base);
	/* (0, '') sorts before every item: ns is 1 or 2 */
	args[2] = Int16GetDatum(after_key != NULL ? after_ns : 0);
	args[3] = PointerGetDatum(after_key != NULL ? after_key : none);
	args[4] = PointerGetDatum(construct_array(elems, nlist, INT4OID, 4, true, TYPALIGN_INT));
	bs->portal = sl_cursor(&plan,
						   "SELECT k.ns, k.key, v.value FROM ("
						   "  SELECT DISTINCT ON (ns, key) ns, key, lsn FROM synclog.kv "
						   "  WHERE doc_id = $1 AND lsn <= $2 AND (ns, key) > ($3, $4) "
						   "    AND synclog.bucket(ns, key) = ANY ($5) "
						   "  ORDER BY ns, key, lsn DESC) k, "
						   "LATERAL (SELECT w.kind, w.value FROM synclog.kv w "
						   "  WHERE w.doc_id = $1 AND w.ns = k.ns AND w.key = k.key "
						   "    AND w.lsn = k.lsn) v "
						   "WHERE v.kind <> 'd' ORDER BY k.ns, k.key",
						   5, types, args, NULL, true);
}

/* Step to the next item; false at the end. */
static bool
base_next(BaseScan *bs)
{
	bool		isnull;
	HeapTuple	tup;
	const uint8 *k;
	size_t		klen;

	if (bs->i == bs->n)
	{
		if (bs->batch != NULL)
			SPI_freetuptable(bs->batch);
		bs->batch = NULL;
		bs->i = 0;
		if ((bs->n = sl_fetch(bs->portal, &bs->batch)) == 0)
			return false;
	}
	tup = bs->batch->vals[bs->i++];
	CHECK_FOR_INTERRUPTS();
	bs->ns = DatumGetInt16(SPI_getbinval(tup, bs->batch->tupdesc, 1, &isnull));
	bs->key = DatumGetByteaPP(SPI_getbinval(tup, bs->batch->tupdesc, 2, &isnull));
	bs->value = SPI_getbinval(tup, bs->batch->tupdesc, 3, &bs->value_null);
	k = (const uint8 *) VARDATA_ANY(bs->key);
	klen = VARSIZE_ANY_EXHDR(bs->key);
	if (bs->nskey != NULL)
		pfree(bs->nskey);
	bs->nskey = palloc(VARHDRSZ + 1 + klen);
	SET_VARSIZE(bs->nskey, VARHDRSZ + 1 + klen);
	((uint8 *) VARDATA(bs->nskey))[0] = (uint8) bs->ns;
	if (klen > 0)
		memcpy(VARDATA(bs->nskey) + 1, k, klen);
	return true;
}

static void
base_end(BaseScan *bs)
{
	if (bs->batch != NULL)
		SPI_freetuptable(bs->batch);
	SPI_cursor_close(bs->portal);
}

static void
put_item(ReturnSetInfo *rsinfo, int16 ns, const uint8 *key, size_t klen,
		 Datum value, bool value_null)
{
	Datum		values[4];
	bool		nulls[4] = {false, false, false, value_null};
	bytea	   *k = palloc(VARHDRSZ + klen);

	SET_VARSIZE(k, VARHDRSZ + klen);
	if (klen > 0)
		memcpy(VARDATA(k), key, klen);
	values[0] = Int32GetDatum(slc_bucket((uint8) ns, key, klen));
	values[1] = Int16GetDatum(ns);
	values[2] = PointerGetDatum(k);
	values[3] = value;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	pfree(k);
}

/*
 * synclog.range(doc text, log_id text, buckets integer[], after_ns smallint,
 *               after_key bytea, max_rows integer, lsn bigint)
 *   returns setof (bucket integer, ns smallint, key bytea, value bytea)
 *
 * The items of the listed buckets in the state at position (log_id, lsn)
 * of the document (the log's base when lsn is NULL), ordered by (ns, key),
 * at most max_rows of them, after (after_ns, after_key) when those are
 * given (both or neither).  ns 1 are data items, ns 2 client watermarks
 * (key = the client id's bytes, value = its 16-byte watermark).  The
 * listed buckets are complete when a call returns fewer than max_rows
 * rows.  22023 for a bucket outside 0..4095, max_rows below 1, an
 * incomplete or bad after_*, or an lsn outside the log or inside a group;
 * 22004 for a NULL array or element; SL002/SL003 as synclog.snapshot.
 *
 * One pass over the state's keys at the base in key order from the after
 * position (kv_key_idx; only the listed buckets' rows and values are
 * read), merged with the last writes of the entries (base, lsn] to the
 * listed buckets' keys (sorted with work_mem, spilling beyond).  A repair
 * costs the server a pass over the state's keys and the network the
 * buckets that differ.  Runs in the caller's snapshot.
 *
 * Takes AccessShareLock on synclog.doc, synclog.entry (through the view
 * synclog.doc_head), synclog.log and synclog.kv, and on synclog.doc_grant
 * when the caller is a role whose confinement this backend has not cached
 * yet; no row locks.
 */
Datum
synclog_range(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	text	   *log_id = sl_arg_log_id(fcinfo, 1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			nbuckets;
	int		   *list = arg_buckets(fcinfo, 2, &nbuckets);
	bool	   *buckets = palloc0(sizeof(bool) * SLC_BUCKETS);
	int16		after_ns = 0;
	bytea	   *after_key = NULL;
	int32		max_rows = sl_arg_positive_int(fcinfo, 5, "max_rows");
	int64		sent = 0;
	int64		at;
	SlDoc		d;
	SlLog		l;
	BaseScan	bs;
	SlWrites   *w;
	bytea	   *w_nskey = NULL;
	bytea	   *w_value = NULL;
	bool		have_w;
	bool		have_b;
	MemoryContext row_cxt;

	if (PG_ARGISNULL(3) != PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("after_ns and after_key must be given together"),
				 errhint("Pass the last row's ns and key to read the next page, or neither to start.")));
	if (!PG_ARGISNULL(3))
	{
		after_ns = PG_GETARG_INT16(3);
		after_key = PG_GETARG_BYTEA_PP(4);
		if (after_ns != SLC_NS_DATA && after_ns != SLC_NS_CLIENT)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("after_ns must be 1 (data) or 2 (client watermarks)"),
					 errdetail("The value given was %d.", after_ns)));
	}
	for (int i = 0; i < nbuckets; i++)
		buckets[list[i]] = true;

	InitMaterializedSRF(fcinfo, 0);
	sl_spi_begin();
	sl_find_readable_log(doc, log_id, &d, &l);
	at = arg_at(fcinfo, 6, &d, &l);
	if (nbuckets == 0)
	{
		sl_spi_end();
		return (Datum) 0;
	}
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "synclog range row",
									ALLOCSET_DEFAULT_SIZES);
	w = sl_writes_begin(d.doc_id, l.base_lsn, at, buckets, after_ns, after_key);
	base_begin(&bs, d.doc_id, l.base_lsn, list, nbuckets, after_ns, after_key);
	have_b = base_next(&bs);
	have_w = sl_writes_next(w, &w_nskey, &w_value);
	while ((have_b || have_w) && sent < max_rows)
	{
		int			cmp;
		MemoryContext old;

		if (!have_w)
			cmp = -1;
		else if (!have_b)
			cmp = 1;
		else
			cmp = sl_bytes_cmp((const uint8 *) VARDATA(bs.nskey), VARSIZE(bs.nskey) - VARHDRSZ,
							   (const uint8 *) VARDATA(w_nskey), VARSIZE(w_nskey) - VARHDRSZ);
		old = MemoryContextSwitchTo(row_cxt);
		if (cmp < 0)
		{
			put_item(rsinfo, bs.ns, (const uint8 *) VARDATA_ANY(bs.key),
					 VARSIZE_ANY_EXHDR(bs.key), bs.value, bs.value_null);
			sent++;
		}
		else if (w_value != NULL)
		{
			/* a write at or after the base replaces the base's item */
			put_item(rsinfo, ((const uint8 *) VARDATA(w_nskey))[0],
					 (const uint8 *) VARDATA(w_nskey) + 1, VARSIZE(w_nskey) - VARHDRSZ - 1,
					 PointerGetDatum(w_value), false);
			sent++;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(row_cxt);
		if (cmp <= 0)
			have_b = base_next(&bs);
		if (cmp >= 0)
		{
			if (w_nskey != NULL)
				pfree(w_nskey);
			if (w_value != NULL)
				pfree(w_value);
			w_nskey = w_value = NULL;
			have_w = sl_writes_next(w, &w_nskey, &w_value);
		}
	}
	base_end(&bs);
	sl_writes_end(w);
	MemoryContextDelete(row_cxt);
	sl_spi_end();
	return (Datum) 0;
}
