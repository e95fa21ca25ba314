/*
 * range.c
 *
 * Range buckets and range hashes (PROTOCOL.md section 11a): the bucket of
 * an item, the range hashes a rotation keeps per log base, and the reads
 * that serve them: the range hashes of a snapshot and the items of some
 * of its buckets.
 *
 * Owns: synclog.bucket, synclog.range_hashes, synclog.range, the table
 * synclog.range_hash (its rows are written here for the rotation, see
 * sl_range_delta_store, and removed here for gc, see sl_range_collect),
 * and synclog.fill_range_hashes, which the 0.1 to 0.2 upgrade runs once.
 * Must never: read a whole document's state to keep range hashes current
 * (a rotation writes one row per bucket whose keys it wrote, from item
 * hashes it already has), hold more than one page of items in memory, or
 * serve a collected log's buckets.
 *
 * Storage: synclog.range_hash holds (doc, bucket, lsn, hash) rows, the
 * bucket's hash from lsn on; the hashes at a log's base are, per bucket,
 * the newest row at or below base_lsn, an empty-hash row meaning an empty
 * bucket.  A rotation sealing at LSN s writes a row at s for each bucket
 * it wrote a key of (also when the bucket's hash ends up unchanged), so
 * the rows at s are also the list of buckets the rotation touched: what
 * catch_up (catch_up.c) reads to find the versions a rotation wrote
 * without scanning the state.  Rows instead of one packed value per log:
 * a rotation that changes few keys writes few small rows, where a packed
 * value would rewrite up to 4096 hashes (135 kB) every time.
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
PG_FUNCTION_INFO_V1(synclog_fill_range_hashes);

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
 * Keeping range hashes at rotation
 * ------------------------------------------------------------------------
 */

/*
 * What a rotation changed per bucket: the difference between the bucket's
 * hash at the rotation's base and at its seal (sums, counts and sizes wrap
 * modulo 2^64 and 2^128, so a difference is a hash like any other), and
 * which buckets it wrote keys of.
 */
struct SlRangeDelta
{
	slc_hash	diff[SLC_BUCKETS];
	bool		touched[SLC_BUCKETS];
	int			ntouched;
};

SlRangeDelta *
sl_range_delta_new(void)
{
	return palloc0(sizeof(SlRangeDelta));
}

static void
touch(SlRangeDelta *rd, int bucket)
{
	if (!rd->touched[bucket])
	{
		rd->touched[bucket] = true;
		rd->ntouched++;
	}
}

/* An item (by its item hash) enters bucket. */
void
sl_range_delta_add(SlRangeDelta *rd, int bucket, uint64 lo, uint64 hi,
				   uint64 bytes)
{
	touch(rd, bucket);
	slc_hash_add_item(&rd->diff[bucket], lo, hi, bytes);
}

/* An item (by its item hash) leaves bucket. */
void
sl_range_delta_remove(SlRangeDelta *rd, int bucket, uint64 lo, uint64 hi,
					  uint64 bytes)
{
	touch(rd, bucket);
	slc_hash_remove_item(&rd->diff[bucket], lo, hi, bytes);
}

/* A key of bucket was written without changing the bucket's items. */
void
sl_range_delta_touch(SlRangeDelta *rd, int bucket)
{
	touch(rd, bucket);
}

/*
 * Write the range hashes of the rotation's new log: for every touched
 * bucket, its hash at base_lsn (the newest row at or below it; none is the
 * empty bucket) plus the difference, as a row at seal_lsn.  Two statements
 * whatever the number of buckets.
 */
void
sl_range_delta_store(SlRangeDelta *rd, int64 doc_id, int64 base_lsn,
					 int64 seal_lsn)
{
	static SPIPlanPtr plan_old;
	static SPIPlanPtr plan_insert;
	Datum	   *buckets;
	Datum	   *hashes;
	slc_hash   *now;
	int			n = 0;

	if (rd->ntouched == 0)
		return;
	buckets = palloc(sizeof(Datum) * rd->ntouched);
	hashes = palloc(sizeof(Datum) * rd->ntouched);
	now = palloc(sizeof(slc_hash) * rd->ntouched);
	for (int b = 0; b < SLC_BUCKETS; b++)
		if (rd->touched[b])
		{
			buckets[n] = Int16GetDatum((int16) b);
			slc_hash_init(&now[n]);
			n++;
		}
	{
		Oid			types[3] = {INT8OID, INT2ARRAYOID, INT8OID};
		Datum		args[3];

		args[0] = Int64GetDatum(doc_id);
		args[1] = PointerGetDatum(construct_array(buckets, n, INT2OID, 2, true,
												  TYPALIGN_SHORT));
		args[2] = Int64GetDatum(base_lsn);
		/* LIMIT keeps the LATERAL a probe of the primary key per bucket. */
		sl_exec(&plan_old,
				"SELECT u.i, o.hash FROM unnest($2) WITH ORDINALITY AS u(bucket, i), "
				"LATERAL (SELECT r.hash FROM synclog.range_hash r "
				"  WHERE r.doc_id = $1 AND r.bucket = u.bucket AND r.lsn <= $3 "
				"  ORDER BY r.lsn DESC LIMIT 1) o",
				3, types, args, NULL, false, 0);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			int			i = (int) sl_col_int64(r, 1) - 1;

			sl_bytea_to_hash(DatumGetByteaPP(sl_col(r, 2, &isnull)), &now[i]);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	for (int i = 0; i < n; i++)
	{
		slc_hash_combine(&now[i], &rd->diff[DatumGetInt16(buckets[i])]);
		hashes[i] = PointerGetDatum(sl_hash_to_bytea(&now[i]));
	}
	{
		Oid			types[4] = {INT8OID, INT2ARRAYOID, INT8OID, BYTEAARRAYOID};
		Datum		args[4];

		args[0] = Int64GetDatum(doc_id);
		args[1] = PointerGetDatum(construct_array(buckets, n, INT2OID, 2, true,
												  TYPALIGN_SHORT));
		args[2] = Int64GetDatum(seal_lsn);
		args[3] = PointerGetDatum(construct_array(hashes, n, BYTEAOID, -1, false,
												  TYPALIGN_INT));
		sl_exec(&plan_insert,
				"INSERT INTO synclog.range_hash (doc_id, bucket, lsn, hash) "
				"SELECT $1, u.bucket, $3, u.hash FROM unnest($2, $4) AS u(bucket, hash)",
				4, types, args, NULL, false, 0);
	}
}

/*
 * gc of a log that ended at end_lsn (gc.c): every retained snapshot is at
 * end_lsn or later, so of each bucket only the newest row at or below
 * end_lsn counts.  The buckets with a row at end_lsn (those the rotation
 * that sealed the log touched) lose their older rows, and then their
 * empty-hash rows at end_lsn, which hide nothing any more.  Buckets
 * without a row at end_lsn keep their one row below it.  The work follows
 * the document's range hash rows (at most 4096 per retained log), and for
 * the rows at end_lsn a probe of the primary key each, never the state.
 * Returns the rows removed.
 */
int64
sl_range_collect(int64 doc_id, int64 end_lsn)
{
	static SPIPlanPtr plan_old;
	static SPIPlanPtr plan_empty;
	Oid			types[3] = {INT8OID, INT8OID, BYTEAOID};
	slc_hash	empty;
	Datum		args[3];
	int64		removed;

	slc_hash_init(&empty);
	args[0] = Int64GetDatum(doc_id);
	args[1] = Int64GetDatum(end_lsn);
	args[2] = PointerGetDatum(sl_hash_to_bytea(&empty));
	sl_exec(&plan_old,
			"DELETE FROM synclog.range_hash WHERE ctid = ANY (ARRAY("
			"  SELECT o.ctid FROM synclog.range_hash n, LATERAL ("
			"    SELECT w.ctid FROM synclog.range_hash w "
			"    WHERE w.doc_id = $1 AND w.bucket = n.bucket AND w.lsn < $2 "
			"    OFFSET 0) o "
			"  WHERE n.doc_id = $1 AND n.lsn = $2))",
			2, types, args, NULL, false, 0);
	removed = (int64) SPI_processed;
	sl_exec(&plan_empty,
			"DELETE FROM synclog.range_hash WHERE doc_id = $1 AND lsn = $2 AND hash = $3",
			3, types, args, NULL, false, 0);
	return removed + (int64) SPI_processed;
}

/* ------------------------------------------------------------------------
 * Reads
 * ------------------------------------------------------------------------
 */

/*
 * synclog.range_hashes(doc text, log_id text)
 *   returns setof (bucket integer, hash bytea)
 *
 * The range hashes of the snapshot at the base of log log_id (any log of
 * the document that is not collected): one row per non-empty bucket, in
 * bucket order.  Their sum (synclog.hash_combine) is the log's
 * snapshot_hash.  SL002 for a log that is not the document's, SL003 for a
 * collected one.  Runs in the caller's snapshot.
 *
 * Takes AccessShareLock on synclog.doc, synclog.entry (through the view
 * synclog.doc_head), synclog.log and synclog.range_hash, and on
 * synclog.doc_grant when the caller is a role whose confinement this
 * backend has not cached yet; no row locks.
 */
Datum
synclog_range_hashes(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	text	   *log_id = sl_arg_log_id(fcinfo, 1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	static SPIPlanPtr plan;
	SlDoc		d;
	SlLog		l;
	slc_hash	empty;
	Oid			types[3] = {INT8OID, INT8OID, BYTEAOID};
	Datum		args[3];

	InitMaterializedSRF(fcinfo, 0);
	sl_spi_begin();
	sl_find_readable_log(doc, log_id, &d, &l);
	slc_hash_init(&empty);
	args[0] = Int64GetDatum(d.doc_id);
	args[1] = Int64GetDatum(l.base_lsn);
	args[2] = PointerGetDatum(sl_hash_to_bytea(&empty));
	sl_exec(&plan,
			"SELECT bucket::integer, hash FROM ("
			"  SELECT DISTINCT ON (bucket) bucket, hash FROM synclog.range_hash "
			"  WHERE doc_id = $1 AND lsn <= $2 ORDER BY bucket, lsn DESC) r "
			"WHERE hash <> $3 ORDER BY bucket",
			3, types, args, NULL, true, 0);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		Datum		values[2];
		bool		nulls[2];

		values[0] = sl_col(r, 1, &nulls[0]);
		values[1] = sl_col(r, 2, &nulls[1]);
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
 * One bucket's items of the state at lsn after (after_ns, after_key) (all
 * when after_key is NULL), at most max_rows, into the result; returns how
 * many.  The newest version at or below lsn decides each item, a
 * tombstone dropping it.  kv_bucket_idx finds the bucket's versions (an
 * index range, a 4096th of the state's), which are sorted here.
 */
static int64
bucket_page(ReturnSetInfo *rsinfo, int64 doc_id, int bucket, int64 lsn,
			int16 after_ns, bytea *after_key, int64 max_rows)
{
	static SPIPlanPtr plan;
	Oid			types[6] = {INT8OID, INT2OID, INT8OID, INT8OID, INT2OID, BYTEAOID};
	Datum		args[6];
	Portal		portal;
	SPITupleTable *batch;
	uint64		n;
	int64		sent = 0;
	bytea	   *none = palloc(VARHDRSZ);

	SET_VARSIZE(none, VARHDRSZ);
	args[0] = Int64GetDatum(doc_id);
	args[1] = Int16GetDatum((int16) bucket);
	args[2] = Int64GetDatum(lsn);
	args[3] = Int64GetDatum(max_rows);
	/* (0, '') sorts before every item: ns is 1 or 2 */
	args[4] = Int16GetDatum(after_key != NULL ? after_ns : 0);
	args[5] = PointerGetDatum(after_key != NULL ? after_key : none);
	portal = sl_cursor(&plan,
					   "SELECT ns, key, value FROM ("
					   "  SELECT DISTINCT ON (ns, key) ns, key, kind, value FROM synclog.kv "
					   "  WHERE doc_id = $1 AND bucket = $2 AND lsn <= $3 "
					   "    AND (ns, key) > ($5, $6) "
					   "  ORDER BY ns, key, lsn DESC) v "
					   "WHERE kind <> 'd' LIMIT $4",
					   6, types, args, NULL, true);
	while ((n = sl_fetch(portal, &batch)) > 0)
	{
		for (uint64 i = 0; i < n; i++)
		{
			Datum		values[4];
			bool		nulls[4] = {false, false, false, false};

			values[0] = Int32GetDatum(bucket);
			values[1] = SPI_getbinval(batch->vals[i], batch->tupdesc, 1, &nulls[1]);
			values[2] = SPI_getbinval(batch->vals[i], batch->tupdesc, 2, &nulls[2]);
			values[3] = SPI_getbinval(batch->vals[i], batch->tupdesc, 3, &nulls[3]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			sent++;
		}
		SPI_freetuptable(batch);
	}
	SPI_cursor_close(portal);
	return sent;
}

/*
 * synclog.range(doc text, log_id text, buckets integer[], after_bucket integer,
 *               after_ns smallint, after_key bytea, max_rows integer)
 *   returns setof (bucket integer, ns smallint, key bytea, value bytea)
 *
 * The items of the listed buckets in the snapshot at the base of log
 * log_id, ordered by (bucket, ns, key), at most max_rows of them, starting
 * after (after_bucket, after_ns, after_key) when those are given (all
 * three or none).  ns 1 are data items, ns 2 client watermarks (key = the
 * client id's bytes, value = its 16-byte watermark).  The listed buckets
 * are complete when a call returns fewer than max_rows rows.  22023 for a
 * bucket outside 0..4095, max_rows below 1, or an incomplete after_*;
 * SL002/SL003 as synclog.snapshot.  Runs in the caller's snapshot.
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
	int		   *buckets = arg_buckets(fcinfo, 2, &nbuckets);
	bool		has_after = !PG_ARGISNULL(3);
	int32		after_bucket = has_after ? PG_GETARG_INT32(3) : -1;
	int16		after_ns = 0;
	bytea	   *after_key = NULL;
	int32		max_rows = sl_arg_positive_int(fcinfo, 6, "max_rows");
	int64		sent = 0;
	SlDoc		d;
	SlLog		l;

	if (has_after != !PG_ARGISNULL(4) || has_after != !PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("after_bucket, after_ns and after_key must be given together"),
				 errhint("Pass the last row's bucket, ns and key to read the next page, or none of them to start.")));
	if (has_after)
	{
		after_ns = PG_GETARG_INT16(4);
		after_key = PG_GETARG_BYTEA_PP(5);
		if (after_bucket < 0 || after_bucket >= SLC_BUCKETS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("bucket %d is out of range", after_bucket),
					 errdetail("Buckets are numbered 0 to %d.", SLC_BUCKETS - 1)));
	}

	InitMaterializedSRF(fcinfo, 0);
	sl_spi_begin();
	sl_find_readable_log(doc, log_id, &d, &l);
	for (int i = 0; i < nbuckets && sent < max_rows; i++)
	{
		if (buckets[i] < after_bucket)
			continue;
		CHECK_FOR_INTERRUPTS();
		sent += bucket_page(rsinfo, d.doc_id, buckets[i], l.base_lsn, after_ns,
							buckets[i] == after_bucket ? after_key : NULL,
							max_rows - sent);
	}
	sl_spi_end();
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * The upgrade from 0.1
 * ------------------------------------------------------------------------
 */

/*
 * The range hashes of the snapshot at lsn, from the state itself: the
 * stored item hash of every item, bucket by bucket (one sort of the state:
 * the upgrade runs this once per log it keeps).
 */
static void
hashes_from_state(int64 doc_id, int64 lsn, slc_hash *out)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		args[2] = {Int64GetDatum(doc_id), Int64GetDatum(lsn)};
	Portal		portal;
	SPITupleTable *batch;
	uint64		n;

	for (int b = 0; b < SLC_BUCKETS; b++)
		slc_hash_init(&out[b]);
	portal = sl_cursor(&plan,
					   "SELECT bucket, item_hash FROM ("
					   "  SELECT DISTINCT ON (bucket, ns, key) bucket, kind, item_hash "
					   "  FROM synclog.kv WHERE doc_id = $1 AND lsn <= $2 "
					   "  ORDER BY bucket, ns, key, lsn DESC) v WHERE kind = 'v'",
					   2, types, args, NULL, false);
	while ((n = sl_fetch(portal, &batch)) > 0)
	{
		for (uint64 i = 0; i < n; i++)
		{
			bool		isnull;
			int			b = DatumGetInt16(SPI_getbinval(batch->vals[i], batch->tupdesc, 1, &isnull));
			uint64		lo,
						hi,
						bytes;

			sl_item_hash_parse(DatumGetByteaPP(SPI_getbinval(batch->vals[i], batch->tupdesc, 2, &isnull)),
							   doc_id, &lo, &hi, &bytes);
			slc_hash_add_item(&out[b], lo, hi, bytes);
		}
		SPI_freetuptable(batch);
	}
	SPI_cursor_close(portal);
}

/*
 * synclog.fill_range_hashes() returns bigint
 *
 * Run once by the upgrade from 0.1 (and dropped right after): the range
 * hashes of every log that is not collected, from its snapshot, written
 * as the rotations would have (the oldest log of each document a row per
 * non-empty bucket, each later one a row per bucket whose hash differs
 * from its predecessor's).  Returns the rows written.
 *
 * Takes AccessShareLock on synclog.log and synclog.kv and RowExclusiveLock
 * on synclog.range_hash.
 */
Datum
synclog_fill_range_hashes(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan_logs;
	static SPIPlanPtr plan_prev;
	static SPIPlanPtr plan_insert;
	MemoryContext cxt;
	uint64		nlogs;
	SPITupleTable *logs;
	slc_hash   *now;
	slc_hash   *prev;
	int64		written = 0;

	sl_spi_begin();
	cxt = AllocSetContextCreate(CurrentMemoryContext, "synclog range fill",
								ALLOCSET_DEFAULT_SIZES);
	now = MemoryContextAlloc(cxt, sizeof(slc_hash) * SLC_BUCKETS);
	prev = MemoryContextAlloc(cxt, sizeof(slc_hash) * SLC_BUCKETS);
	sl_exec(&plan_logs,
			"SELECT doc_id, base_lsn FROM synclog.log "
			"WHERE state <> 'collected' AND base_lsn > 0 ORDER BY doc_id, generation",
			0, NULL, NULL, NULL, false, 0);
	logs = SPI_tuptable;
	nlogs = SPI_processed;
	for (uint64 r = 0; r < nlogs; r++)
	{
		bool		isnull;
		int64		doc_id = DatumGetInt64(SPI_getbinval(logs->vals[r], logs->tupdesc, 1, &isnull));
		int64		base = DatumGetInt64(SPI_getbinval(logs->vals[r], logs->tupdesc, 2, &isnull));
		Oid			types[4] = {INT8OID, INT8OID, INT2ARRAYOID, BYTEAARRAYOID};
		Datum		args[4] = {Int64GetDatum(doc_id), Int64GetDatum(base)};
		Datum	   *buckets;
		Datum	   *hashes;
		int			n = 0;
		MemoryContext old = MemoryContextSwitchTo(cxt);

		CHECK_FOR_INTERRUPTS();
		hashes_from_state(doc_id, base, now);
		for (int b = 0; b < SLC_BUCKETS; b++)
			slc_hash_init(&prev[b]);
		sl_exec(&plan_prev,
				"SELECT DISTINCT ON (bucket) bucket, hash FROM synclog.range_hash "
				"WHERE doc_id = $1 AND lsn <= $2 ORDER BY bucket, lsn DESC",
				2, types, args, NULL, false, 0);
		MemoryContextSwitchTo(cxt);
		for (uint64 i = 0; i < SPI_processed; i++)
			sl_bytea_to_hash(DatumGetByteaPP(sl_col(i, 2, &isnull)),
							 &prev[DatumGetInt16(sl_col(i, 1, &isnull))]);
		SPI_freetuptable(SPI_tuptable);
		buckets = palloc(sizeof(Datum) * SLC_BUCKETS);
		hashes = palloc(sizeof(Datum) * SLC_BUCKETS);
		for (int b = 0; b < SLC_BUCKETS; b++)
			if (!slc_hash_equal(&now[b], &prev[b]))
			{
				buckets[n] = Int16GetDatum((int16) b);
				hashes[n++] = PointerGetDatum(sl_hash_to_bytea(&now[b]));
			}
		if (n > 0)
		{
			args[2] = PointerGetDatum(construct_array(buckets, n, INT2OID, 2, true,
													  TYPALIGN_SHORT));
			args[3] = PointerGetDatum(construct_array(hashes, n, BYTEAOID, -1, false,
													  TYPALIGN_INT));
			sl_exec(&plan_insert,
					"INSERT INTO synclog.range_hash (doc_id, bucket, lsn, hash) "
					"SELECT $1, u.bucket, $2, u.hash FROM unnest($3, $4) AS u(bucket, hash)",
					4, types, args, NULL, false, 0);
			written += n;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(cxt);
		now = MemoryContextAlloc(cxt, sizeof(slc_hash) * SLC_BUCKETS);
		prev = MemoryContextAlloc(cxt, sizeof(slc_hash) * SLC_BUCKETS);
	}
	MemoryContextDelete(cxt);
	sl_spi_end();
	PG_RETURN_INT64(written);
}
