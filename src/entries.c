/*
 * entries.c
 *
 * Walking a stored stretch of a document's log: its entries a fetch batch
 * at a time, and the changes of one stored delta.
 *
 * Owns: sl_foreach_entry and sl_foreach_change, used by the fold
 * (compact.c), by collection (gc.c) and by catching up (catch_up.c).
 * Must never: hold more than one fetch batch of entries in memory, or
 * trust a stored delta: it is decoded with the same checks as a client's,
 * and a gap or a malformed delta is reported as corruption (XX001).
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "synclog.h"

#define ENTRY_COLUMNS "SELECT lsn, delta, client_id, client_seq FROM synclog.entry " \
	"WHERE doc_id = $1 AND lsn > $2 AND lsn <= $3 "

/* A gap in a range that must be gapless: corruption (XX001). */
static void
missing_entry(int64 doc_id, int64 lsn)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("missing log entry"),
			 errdetail("The document with internal id %lld has no entry at LSN " INT64_FORMAT ".",
					   (long long) doc_id, lsn)));
}

/*
 * Call fn for every entry of the document in (lo, hi], newest or oldest
 * first.  Each call runs in a memory context that is reset after it, so a
 * callback keeps nothing from it unless it copies it elsewhere.
 */
static void
foreach_entry(int64 doc_id, int64 lo, int64 hi, bool newest_first,
			  bool read_only, sl_entry_fn fn, void *arg)
{
	static SPIPlanPtr plan_desc;
	static SPIPlanPtr plan_asc;
	Oid			types[3] = {INT8OID, INT8OID, INT8OID};
	Datum		args[3] = {Int64GetDatum(doc_id), Int64GetDatum(lo),
						   Int64GetDatum(hi)};
	Portal		portal;
	MemoryContext entry_cxt;
	SPITupleTable *batch;
	uint64		n;
	int64		expect = newest_first ? hi : lo + 1;

	if (hi <= lo)
		return;
	if (newest_first)
		portal = sl_cursor(&plan_desc, ENTRY_COLUMNS "ORDER BY lsn DESC",
						   3, types, args, NULL, read_only);
	else
		portal = sl_cursor(&plan_asc, ENTRY_COLUMNS "ORDER BY lsn",
						   3, types, args, NULL, read_only);
	entry_cxt = AllocSetContextCreate(CurrentMemoryContext, "synclog entry",
									  ALLOCSET_DEFAULT_SIZES);
	while ((n = sl_fetch(portal, &batch)) > 0)
	{
		for (uint64 i = 0; i < n; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(entry_cxt);
			bool		isnull;
			int64		lsn;
			bytea	   *delta;
			text	   *client_id = NULL;
			int64		client_seq = 0;
			Datum		d;

			CHECK_FOR_INTERRUPTS();
			lsn = DatumGetInt64(SPI_getbinval(batch->vals[i], batch->tupdesc, 1, &isnull));
			if (lsn != expect)
				missing_entry(doc_id, expect);
			expect += newest_first ? -1 : 1;
			delta = DatumGetByteaPP(SPI_getbinval(batch->vals[i], batch->tupdesc, 2, &isnull));
			delta = sl_stored_delta_v1(delta, doc_id, lsn);
			d = SPI_getbinval(batch->vals[i], batch->tupdesc, 3, &isnull);
			if (!isnull)
			{
				client_id = DatumGetTextPP(d);
				client_seq = DatumGetInt64(SPI_getbinval(batch->vals[i], batch->tupdesc, 4, &isnull));
			}
			fn(arg, lsn, delta, client_id, client_seq);
			MemoryContextSwitchTo(old);
			MemoryContextReset(entry_cxt);
		}
		SPI_freetuptable(batch);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(entry_cxt);
	if (expect != (newest_first ? lo : hi + 1))
		missing_entry(doc_id, expect);
}

void
sl_foreach_entry(int64 doc_id, int64 lo, int64 hi, bool newest_first,
				 sl_entry_fn fn, void *arg)
{
	foreach_entry(doc_id, lo, hi, newest_first, false, fn, arg);
}

/*
 * The same, oldest first, in the caller's snapshot: for readers, whose
 * other lookups see that snapshot too (a log collected since is still
 * there for them).
 */
void
sl_foreach_entry_ro(int64 doc_id, int64 lo, int64 hi, sl_entry_fn fn, void *arg)
{
	foreach_entry(doc_id, lo, hi, false, true, fn, arg);
}

/*
 * Call fn for every change of the stored delta of the entry at lsn (val is
 * NULL for a deletion).  Keys and values point into delta.
 */
void
sl_foreach_change(int64 doc_id, int64 lsn, bytea *delta,
				  sl_change_fn fn, void *arg)
{
	slc_delta_reader r;
	slc_change	c;
	int			more = 1;
	size_t		off = 0;
	slc_status	st;

	st = slc_delta_reader_init(&r, (const uint8 *) VARDATA_ANY(delta),
							   VARSIZE_ANY_EXHDR(delta), UINT32_MAX);
	while (st == SLC_OK)
	{
		st = slc_delta_next(&r, &c, &more, &off);
		if (st != SLC_OK || !more)
			break;
		fn(arg, c.key, c.klen, c.is_delete ? NULL : c.val, c.vlen);
	}
	if (st != SLC_OK)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed stored delta: %s", slc_status_message(st)),
				 errdetail("The entry is at LSN " INT64_FORMAT " of the document with internal id %lld.",
						   lsn, (long long) doc_id)));
}
