/*
 * range_store.c
 *
 * Where the range hashes of every retained log base are kept (PROTOCOL.md
 * section 11a, "On the server"): what a rotation writes, how the hashes
 * at a base are read back, what gc removes, and the one-time fill of the
 * upgrade from 0.1.
 *
 * Owns: the table synclog.range_hash (one row per rotation that changed
 * any bucket, see the 0.2 script for its layout), SlRangeDelta, and
 * synclog.fill_range_hashes, which the 0.1 to 0.2 upgrade runs once.
 * Must never: read a document's state to keep range hashes current (a
 * rotation applies the item hashes it already has to the hashes at its
 * base), write more than one row per rotation, or remove a row that the
 * hashes at a retained base are read from.
 *
 * A row at LSN s holds new range hashes from s on: of the buckets the
 * rotation sealing at s changed (a partial row; an emptied bucket is
 * listed with the empty hash), or of every non-empty bucket (a full row).
 * The hashes at a base are those of the newest full row at or below it,
 * updated by the partial rows after it up to the base, oldest first.  A
 * rotation writes a full row when the partial rows since the last full one
 * and its own would list more buckets than a full row, so a read applies
 * at most two full rows' worth of buckets, and the buckets written over
 * time are at most twice those the rotations changed plus one full row.
 * Rows go to the right edge of the primary key (doc_id, lsn): a rotation's
 * WAL for its range hashes is about its row's bytes, 35 per bucket it
 * changed, and no page of an index spread by bucket.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_fill_range_hashes);

/* One bucket in a packed row: u16le bucket, then its 33-byte hash (PROTOCOL.md 11). */
#define RH_ENTRY	(2 + SLC_HASH_LEN)

/*
 * Pack the hashes of the buckets marked in which (all non-empty ones when
 * which is NULL) into a row's bytea.
 */
static bytea *
rh_pack(const slc_hash *rh, const bool *which, int *nout)
{
	int			n = 0;
	bytea	   *b;
	uint8	   *p;

	for (int i = 0; i < SLC_BUCKETS; i++)
		if (which ? which[i] : rh[i].count != 0)
			n++;
	b = palloc(VARHDRSZ + (Size) n * RH_ENTRY);
	SET_VARSIZE(b, VARHDRSZ + (Size) n * RH_ENTRY);
	p = (uint8 *) VARDATA(b);
	for (int i = 0; i < SLC_BUCKETS; i++)
		if (which ? which[i] : rh[i].count != 0)
		{
			p[0] = (uint8) (i & 0xff);
			p[1] = (uint8) (i >> 8);
			slc_hash_serialize(&rh[i], p + 2);
			p += RH_ENTRY;
		}
	*nout = n;
	return b;
}

/*
 * Apply a stored row to rh (a full row first empties every bucket);
 * returns the buckets it lists.  A row that is not whole entries of
 * buckets in 0..4095 is corruption (XX001).
 */
static int
rh_apply(bytea *packed, bool full, int64 doc_id, int64 lsn, slc_hash *rh)
{
	const uint8 *p = (const uint8 *) VARDATA_ANY(packed);
	size_t		len = VARSIZE_ANY_EXHDR(packed);

	if (len % RH_ENTRY != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed range hash row in synclog.range_hash"),
				 errdetail("The row of the document with internal id %lld at LSN %lld is %zu bytes, not a multiple of %d.",
						   (long long) doc_id, (long long) lsn, len, RH_ENTRY)));
	if (full)
		for (int i = 0; i < SLC_BUCKETS; i++)
			slc_hash_init(&rh[i]);
	for (size_t off = 0; off < len; off += RH_ENTRY)
	{
		int			b = p[off] | (p[off + 1] << 8);

		if (b >= SLC_BUCKETS ||
			slc_hash_parse(p + off + 2, SLC_HASH_LEN, &rh[b]) != SLC_OK)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("malformed range hash row in synclog.range_hash"),
					 errdetail("The row of the document with internal id %lld at LSN %lld has a malformed entry for bucket %d.",
							   (long long) doc_id, (long long) lsn, b)));
	}
	return (int) (len / RH_ENTRY);
}

/*
 * The range hashes (SLC_BUCKETS of them, into rh) of the document's state
 * at lsn, a retained log base: the newest full row at or below lsn and
 * the rows after it up to lsn.  Returns the buckets the partial rows
 * listed (what a rotation weighs against writing a full row).  Reads at
 * most the rows since that full row: in the caller's snapshot for a
 * reader (read_only), in a new one for the rotation, which must see the
 * row a rotation it waited for committed.
 */
int
sl_range_hashes_at(int64 doc_id, int64 lsn, slc_hash *rh, bool read_only)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		args[2] = {Int64GetDatum(doc_id), Int64GetDatum(lsn)};
	int			partial = 0;

	for (int i = 0; i < SLC_BUCKETS; i++)
		slc_hash_init(&rh[i]);
	sl_exec(&plan,
			"SELECT r.lsn, r.full_image, r.hashes FROM synclog.range_hash r "
			"WHERE r.doc_id = $1 AND r.lsn <= $2 AND r.lsn >= coalesce(("
			"  SELECT f.lsn FROM synclog.range_hash f "
			"  WHERE f.doc_id = $1 AND f.lsn <= $2 AND f.full_image "
			"  ORDER BY f.lsn DESC LIMIT 1), 0) "
			"ORDER BY r.lsn",
			2, types, args, NULL, read_only, 0);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		bool		full = DatumGetBool(sl_col(r, 2, &isnull));
		int			n = rh_apply(DatumGetByteaPP(sl_col(r, 3, &isnull)), full, doc_id,
								 sl_col_int64(r, 1), rh);

		if (!full)
			partial += n;
	}
	SPI_freetuptable(SPI_tuptable);
	return partial;
}

/* Write one row. */
static void
rh_insert(int64 doc_id, int64 lsn, bool full, bytea *packed)
{
	static SPIPlanPtr plan;
	Oid			types[4] = {INT8OID, INT8OID, BOOLOID, BYTEAOID};
	Datum		args[4] = {Int64GetDatum(doc_id), Int64GetDatum(lsn),
	BoolGetDatum(full), PointerGetDatum(packed)};

	sl_exec(&plan,
			"INSERT INTO synclog.range_hash (doc_id, lsn, full_image, hashes) "
			"VALUES ($1, $2, $3, $4)",
			4, types, args, NULL, false, 0);
}

/* ------------------------------------------------------------------------
 * What a rotation changed
 * ------------------------------------------------------------------------
 */

/*
 * The difference per bucket between the rotation's base and its seal
 * (sums, counts and sizes wrap modulo 2^64 and 2^128, so a difference is
 * a hash like any other; an unchanged bucket's is the empty hash).
 */
struct SlRangeDelta
{
	slc_hash	diff[SLC_BUCKETS];
};

SlRangeDelta *
sl_range_delta_new(void)
{
	return palloc0(sizeof(SlRangeDelta));
}

/* An item (by its item hash) enters bucket. */
void
sl_range_delta_add(SlRangeDelta *rd, int bucket, uint64 lo, uint64 hi,
				   uint64 bytes)
{
	slc_hash_add_item(&rd->diff[bucket], lo, hi, bytes);
}

/* An item (by its item hash) leaves bucket. */
void
sl_range_delta_remove(SlRangeDelta *rd, int bucket, uint64 lo, uint64 hi,
					  uint64 bytes)
{
	slc_hash_remove_item(&rd->diff[bucket], lo, hi, bytes);
}

/*
 * Write the range hashes of the rotation's new log (sealed at seal_lsn,
 * its predecessor based at base_lsn): the hashes at base_lsn plus the
 * differences, as one row at seal_lsn listing the buckets that changed,
 * or every non-empty bucket when that is the smaller way to keep reads
 * bounded (see the file header).  Nothing when no bucket changed.
 */
void
sl_range_delta_store(SlRangeDelta *rd, int64 doc_id, int64 base_lsn,
					 int64 seal_lsn)
{
	slc_hash   *rh = palloc(sizeof(slc_hash) * SLC_BUCKETS);
	bool	   *changed = palloc0(sizeof(bool) * SLC_BUCKETS);
	slc_hash	zero;
	int			nchanged = 0;
	int			nonempty = 0;
	int			partial;
	int			n;

	slc_hash_init(&zero);
	for (int i = 0; i < SLC_BUCKETS; i++)
		if (!slc_hash_equal(&rd->diff[i], &zero))
		{
			changed[i] = true;
			nchanged++;
		}
	if (nchanged > 0)
	{
		partial = sl_range_hashes_at(doc_id, base_lsn, rh, false);
		for (int i = 0; i < SLC_BUCKETS; i++)
		{
			if (changed[i])
				slc_hash_combine(&rh[i], &rd->diff[i]);
			if (rh[i].count != 0)
				nonempty++;
		}
		if (partial + nchanged > nonempty)
			rh_insert(doc_id, seal_lsn, true, rh_pack(rh, NULL, &n));
		else
			rh_insert(doc_id, seal_lsn, false, rh_pack(rh, changed, &n));
	}
	pfree(rh);
	pfree(changed);
}

/*
 * gc of a log that ended at end_lsn (gc.c): every retained snapshot is at
 * end_lsn or later, and the hashes at any of them are read from the
 * newest full row at or below it onwards, which is at or after the newest
 * full row at or below end_lsn.  The rows before that one are removed.
 * One index range; returns the rows removed.
 */
int64
sl_range_collect(int64 doc_id, int64 end_lsn)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		args[2] = {Int64GetDatum(doc_id), Int64GetDatum(end_lsn)};

	sl_exec(&plan,
			"DELETE FROM synclog.range_hash r WHERE r.doc_id = $1 AND r.lsn < ("
			"  SELECT f.lsn FROM synclog.range_hash f "
			"  WHERE f.doc_id = $1 AND f.lsn <= $2 AND f.full_image "
			"  ORDER BY f.lsn DESC LIMIT 1)",
			2, types, args, NULL, false, 0);
	return (int64) SPI_processed;
}

/* ------------------------------------------------------------------------
 * The upgrade from 0.1
 * ------------------------------------------------------------------------
 */

/*
 * The range hashes of the snapshot at lsn, from the state itself: the
 * stored item hash of every item (one pass over the state in key order:
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
					   "SELECT ns, key, item_hash FROM ("
					   "  SELECT DISTINCT ON (ns, key) ns, key, kind, item_hash "
					   "  FROM synclog.kv WHERE doc_id = $1 AND lsn <= $2 "
					   "  ORDER BY ns, key, lsn DESC) v WHERE kind = 'v'",
					   2, types, args, NULL, false);
	while ((n = sl_fetch(portal, &batch)) > 0)
	{
		for (uint64 i = 0; i < n; i++)
		{
			bool		isnull;
			int16		ns = DatumGetInt16(SPI_getbinval(batch->vals[i], batch->tupdesc, 1, &isnull));
			bytea	   *key = DatumGetByteaPP(SPI_getbinval(batch->vals[i], batch->tupdesc, 2, &isnull));
			uint64		lo,
						hi,
						bytes;

			sl_item_hash_parse(DatumGetByteaPP(SPI_getbinval(batch->vals[i], batch->tupdesc, 3, &isnull)),
							   doc_id, &lo, &hi, &bytes);
			slc_hash_add_item(&out[sl_bucket_of(ns, (const uint8 *) VARDATA_ANY(key),
												VARSIZE_ANY_EXHDR(key))],
							  lo, hi, bytes);
		}
		SPI_freetuptable(batch);
	}
	SPI_cursor_close(portal);
}

/*
 * synclog.fill_range_hashes() returns bigint
 *
 * Run once by the upgrade from 0.1 (and dropped right after): a full row
 * of range hashes at the base of every log that is not collected, from
 * its snapshot.  Returns the rows written.
 *
 * Takes AccessShareLock on synclog.log and synclog.kv and RowExclusiveLock
 * on synclog.range_hash.
 */
Datum
synclog_fill_range_hashes(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan_logs;
	MemoryContext cxt;
	uint64		nlogs;
	SPITupleTable *logs;
	int64		written = 0;

	sl_spi_begin();
	cxt = AllocSetContextCreate(CurrentMemoryContext, "synclog range fill",
								ALLOCSET_DEFAULT_SIZES);
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
		MemoryContext old = MemoryContextSwitchTo(cxt);
		slc_hash   *now = palloc(sizeof(slc_hash) * SLC_BUCKETS);
		int			n;

		CHECK_FOR_INTERRUPTS();
		hashes_from_state(doc_id, base, now);
		rh_insert(doc_id, base, true, rh_pack(now, NULL, &n));
		written++;
		MemoryContextSwitchTo(old);
		MemoryContextReset(cxt);
	}
	MemoryContextDelete(cxt);
	sl_spi_end();
	PG_RETURN_INT64(written);
}
