/*
 * kv_values.c
 *
 * Reading synclog.kv's out-of-line values for snapshot pages: the stored
 * bytes behind a TOAST pointer, straight into the row a page returns, with
 * a few scans of the TOAST index kept open for the page.
 *
 * Owns: ValueReader (kv_values.h): its TOAST relation, index, scans, ring
 * of buffers and the checks of every chunk it reads.
 * Must never: return a value it did not read whole and check chunk by
 * chunk (number, size, no extra chunk, the TOAST snapshot), keep a scan,
 * pin or ring past sl_value_reader_end, or read a TOAST table other than
 * kv's own (sl_value_reader_takes says which pointers it reads).
 *
 * The out-of-line values of one snapshot page, read from kv's TOAST table
 * with one relation, one index and a few index scans opened for the whole
 * page.  PostgreSQL's own detoasting (what a plain SELECT does when it
 * sends a value) opens the TOAST table and its index, takes their locks,
 * sets up a scan, descends the index from its root and tears it all down
 * again for every value: about a tenth of the server's CPU time for a page
 * of 4 KiB values (BENCHMARKS.md, area 7b).  Without scans (materialized
 * pages, whose values PostgreSQL detoasts when it sends them) the reader
 * only holds the locks.
 *
 * Values are read through streams.  A rotation writes the versions of its
 * keys one after the other, so their values get value ids (OIDs, handed out
 * in order) that follow key order, upwards or downwards, and their chunks
 * sit next to each other in the TOAST index; a page in key order reads a
 * few such runs interleaved (one per rotation whose versions are still
 * current).  A stream is a scan of the TOAST index from one value id on,
 * upwards or downwards, left where the last value it read ended: a value a
 * little further on in its direction is read by going on, passing over at
 * most STREAM_SKIP index entries of other values (entries only, not their
 * rows) on the way, instead of descending the index from its root.  Each
 * stream also keeps its TOAST heap page pinned, which the next value's
 * chunks usually share.  A stream starts at a value near (STREAM_GAP) the
 * last one of a stream or one of the VALUE_RECENT values read last; any
 * other value is read as PostgreSQL reads one, by a scan for that value
 * alone (one scan, used again for every such value), so values in no
 * order (a rotation of keys written in random order) cost what they cost
 * without streams.  Chunk rows are read and checked as PostgreSQL reads
 * them: the TOAST snapshot, every chunk of the value, no other.
 *
 * The TOAST pages of a snapshot larger than a quarter of shared_buffers go
 * through a ring of buffers (BAS_BULKREAD), as PostgreSQL reads a table
 * that large in a sequential scan: a client downloading a big state does
 * not evict what the appends and reads of other documents keep in
 * shared_buffers, and the download reuses a few buffers that stay in the
 * CPU's cache (and mapped in this backend) instead of taking a new one,
 * and faulting its memory in, for every page it reads.  A page of such a
 * snapshot read again is read from the kernel's cache, not found in
 * shared_buffers (BENCHMARKS.md, area 7b: still faster than the plain
 * SELECT finding its pages there).  Open scans keep a pin on their index
 * and heap pages between rows, as the scan of kv_key_idx does; all are
 * dropped when the page ends.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/heapam.h"
#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "access/itup.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/toast_internals.h"
#include "storage/bufmgr.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "kv_values.h"

#define STREAM_GAP		16		/* go on to a value id at most this far on */
#define STREAM_SKIP		64		/* index entries passed over before starting again */

void
sl_value_reader_begin(ValueReader *vr, Relation kv, bool scan, bool bulk)
{
	memset(vr, 0, sizeof(*vr));
	if (!OidIsValid(kv->rd_rel->reltoastrelid))
		return;
	vr->toastrel = table_open(kv->rd_rel->reltoastrelid, AccessShareLock);
	vr->valid_index = toast_open_indexes(vr->toastrel, AccessShareLock,
										 &vr->toastidxs, &vr->num_indexes);
	if (!scan)
		return;
	vr->scan = true;
	vr->mcxt = CurrentMemoryContext;
	init_toast_snapshot(&vr->toast_snapshot);
	if (bulk)
		vr->strategy = GetAccessStrategy(BAS_BULKREAD);
	/* the scans are opened when first needed */
}

void
sl_value_reader_end(ValueReader *vr)
{
	if (vr->toastrel == NULL)
		return;
	for (int i = -1; i < VALUE_STREAMS; i++)
	{
		ValueStream *s = i < 0 ? &vr->alone : &vr->streams[i];

		if (s->scan == NULL)
			continue;
		index_endscan(s->scan);
		if (BufferIsValid(s->buf))
			ReleaseBuffer(s->buf);
		s->scan = NULL;
	}
	if (vr->strategy != NULL)
		FreeAccessStrategy(vr->strategy);
	toast_close_indexes(vr->toastidxs, vr->num_indexes, NoLock);
	table_close(vr->toastrel, NoLock);
}

static void
value_chunk_corrupted(ValueReader *vr, Oid valueid, const char *what, int32 got, int32 expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("malformed value in synclog.kv"),
			 errdetail("Out-of-line value %u in %s: %s %d, expected %d.",
					   valueid, RelationGetRelationName(vr->toastrel), what, got, expected)));
}

/*
 * Whether the reader reads the value behind an on-disk TOAST pointer (one
 * of kv's own TOAST table), and whether it is stored compressed.
 */
bool
sl_value_reader_takes(ValueReader *vr, struct varlena *ptr, bool *compressed)
{
	struct varatt_external ext;

	if (!vr->scan || !VARATT_IS_EXTERNAL_ONDISK(ptr))
		return false;
	VARATT_EXTERNAL_GET_POINTER(ext, ptr);
	/* VARATT_EXTERNAL_IS_COMPRESSED, without its signed comparison */
	*compressed = VARATT_EXTERNAL_GET_EXTSIZE(ext) < (uint32) (ext.va_rawsize - VARHDRSZ);
	return ext.va_toastrelid == RelationGetRelid(vr->toastrel);
}

/* How far apart two value ids are. */
static inline Oid
id_distance(Oid a, Oid b)
{
	return a > b ? a - b : b - a;
}

/* How far valueid is from a stream's last value in its direction (0: behind it). */
static Oid
stream_distance(ValueStream *s, Oid valueid)
{
	if (ScanDirectionIsForward(s->dir))
		return valueid > s->last ? valueid - s->last : 0;
	return valueid < s->last ? s->last - valueid : 0;
}

/*
 * The stream to read value valueid with: an open one that leads to it; or
 * else one started at it, open towards it from the last value of a stream
 * or a recent one it is near (so that the next values can follow), and the
 * scan for it alone when it is near none.
 */
static ValueStream *
value_stream_for(ValueReader *vr, Oid valueid)
{
	ValueStream *best = NULL;
	ValueStream *near = NULL;	/* the stream whose last value is near_id */
	ValueStream *lru = &vr->streams[0];
	ValueStream *s;
	Oid			near_id = InvalidOid;
	Oid			best_dist = STREAM_GAP + 1;
	Oid			near_dist = STREAM_GAP + 1;
	ScanKeyData key;
	MemoryContext caller;

	for (int i = 0; i < VALUE_STREAMS; i++)
	{
		s = &vr->streams[i];
		if (s->positioned && s->last != valueid)
		{
			Oid			d = id_distance(valueid, s->last);

			if (stream_distance(s, valueid) == d && d < best_dist)
			{
				best = s;
				best_dist = d;
			}
			if (d < near_dist)
			{
				near = s;
				near_id = s->last;
				near_dist = d;
			}
		}
		if (s->used < lru->used)
			lru = s;
	}
	if (best != NULL)
		return best;
	for (int i = 0; i < VALUE_RECENT; i++)
	{
		Oid			r = vr->recent[i];

		if (OidIsValid(r) && r != valueid && id_distance(valueid, r) < near_dist)
		{
			near = NULL;
			near_id = r;
			near_dist = id_distance(valueid, r);
		}
	}
	/* the run of near_id goes on from valueid (a stream's own: in its slot) */
	s = !OidIsValid(near_id) ? &vr->alone : near != NULL ? near : lru;
	caller = MemoryContextSwitchTo(vr->mcxt);
	if (s->scan == NULL)
	{
		s->scan = index_beginscan(vr->toastrel, vr->toastidxs[vr->valid_index],
								  &vr->toast_snapshot, 1, 0);
		/* an open stream reads the value id of an entry without its row */
		s->scan->xs_want_itup = s != &vr->alone;
		s->buf = InvalidBuffer;
	}
	s->open = OidIsValid(near_id);
	s->dir = s->open && valueid < near_id ? BackwardScanDirection : ForwardScanDirection;
	if (!s->open)
		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(valueid));
	else if (ScanDirectionIsForward(s->dir))
		ScanKeyInit(&key, 1, BTGreaterEqualStrategyNumber, F_OIDGE, ObjectIdGetDatum(valueid));
	else
		ScanKeyInit(&key, 1, BTLessEqualStrategyNumber, F_OIDLE, ObjectIdGetDatum(valueid));
	index_rescan(s->scan, &key, 1, NULL, 0);
	MemoryContextSwitchTo(caller);
	s->positioned = false;
	s->pending = false;
	return s;
}

/* Step a stream to its next index entry (the pending one first); false at its end. */
static bool
value_stream_next(ValueStream *s)
{
	if (s->pending)
	{
		s->pending = false;
		return true;
	}
	return index_getnext_tid(s->scan, s->dir) != NULL;
}

/* The value id of a stream's current entry (a scan for one value has no other). */
static Oid
value_stream_id(ValueStream *s, Oid valueid)
{
	bool		isnull;

	if (!s->open)
		return valueid;
	return DatumGetObjectId(index_getattr(s->scan->xs_itup, 1, s->scan->xs_itupdesc, &isnull));
}

/*
 * The chunk row of a stream's current index entry, if the TOAST snapshot
 * sees it, in *tuple (good while s->buf stays pinned: until the stream
 * reads another page).  What index_fetch_heap does, but through the
 * reader's ring of buffers when it has one (TOAST rows are never updated,
 * so a row is its own HOT chain).
 */
static bool
value_stream_fetch(ValueReader *vr, ValueStream *s, HeapTuple tuple)
{
	ItemPointer tid = &s->scan->xs_heaptid;
	BlockNumber blkno = ItemPointerGetBlockNumber(tid);
	bool		all_dead;
	bool		found;

	if (!BufferIsValid(s->buf) || BufferGetBlockNumber(s->buf) != blkno)
	{
		if (BufferIsValid(s->buf))
			ReleaseBuffer(s->buf);
		s->buf = ReadBufferExtended(vr->toastrel, MAIN_FORKNUM, blkno, RBM_NORMAL,
									vr->strategy);
		heap_page_prune_opt(vr->toastrel, s->buf);
	}
	LockBuffer(s->buf, BUFFER_LOCK_SHARE);
	found = heap_hot_search_buffer(tid, vr->toastrel, s->buf, &vr->toast_snapshot,
								   tuple, &all_dead, true);
	LockBuffer(s->buf, BUFFER_LOCK_UNLOCK);
	return found;
}

/*
 * Copy the stored bytes behind an on-disk TOAST pointer of kv (as stored:
 * compressed ones compressed) to dest, VARATT_EXTERNAL_GET_EXTSIZE bytes.
 * A stream reads the chunks in its direction (downwards: the last first).
 */
void
sl_value_reader_read(ValueReader *vr, struct varlena *ptr, char *dest)
{
	struct varatt_external ext;
	int32		extsize;
	int32		totalchunks;
	int32		got = 0;
	int			skipped = 0;
	ValueStream *s;
	Oid			valueid;
	Oid			id;
	HeapTupleData tuple;
	TupleDesc	desc = RelationGetDescr(vr->toastrel);

	VARATT_EXTERNAL_GET_POINTER(ext, ptr);
	valueid = ext.va_valueid;
	extsize = VARATT_EXTERNAL_GET_EXTSIZE(ext);
	totalchunks = extsize > 0 ? (extsize - 1) / TOAST_MAX_CHUNK_SIZE + 1 : 0;
	s = value_stream_for(vr, valueid);
	while (got < totalchunks)
	{
		if (!value_stream_next(s))
			break;
		id = value_stream_id(s, valueid);
		if (id != valueid && (id < valueid) == ScanDirectionIsForward(s->dir))
		{
			/* another value's chunk on the way */
			if (++skipped > STREAM_SKIP)
			{
				/* further on than it looked: start again at the value */
				s->positioned = false;
				s = value_stream_for(vr, valueid);
				skipped = 0;
			}
			continue;
		}
		if (id != valueid)
			break;				/* past the value */
		/* a chunk row this snapshot does not see is passed over, as PostgreSQL does */
		if (value_stream_fetch(vr, s, &tuple))
		{
			bool		isnull;
			int32		seq;
			int32		expected;
			struct varlena *chunk;
			int32		size;
			int32		want;

			seq = DatumGetInt32(heap_getattr(&tuple, 2, desc, &isnull));
			chunk = (struct varlena *) DatumGetPointer(heap_getattr(&tuple, 3, desc, &isnull));
			if (VARATT_IS_EXTENDED(chunk) && !VARATT_IS_SHORT(chunk))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("malformed value in synclog.kv"),
						 errdetail("Out-of-line value %u in %s has a chunk that is itself compressed or out of line.",
								   valueid, RelationGetRelationName(vr->toastrel))));
			size = VARSIZE_ANY_EXHDR(chunk);
			expected = ScanDirectionIsForward(s->dir) ? got : totalchunks - 1 - got;
			if (seq != expected)
				value_chunk_corrupted(vr, valueid, "chunk number", seq, expected);
			if (seq < 0 || seq >= totalchunks)
				value_chunk_corrupted(vr, valueid, "chunk number", seq, totalchunks - 1);
			want = seq < totalchunks - 1 ? TOAST_MAX_CHUNK_SIZE :
				extsize - (totalchunks - 1) * TOAST_MAX_CHUNK_SIZE;
			if (size != want)
				value_chunk_corrupted(vr, valueid, "chunk size", size, want);
			memcpy(dest + seq * TOAST_MAX_CHUNK_SIZE, VARDATA_ANY(chunk), size);
			got++;
		}
	}
	if (got != totalchunks)
		value_chunk_corrupted(vr, valueid, "chunks", got, totalchunks);

	/*
	 * The entries after the value's last chunk: one more chunk of it that
	 * this snapshot sees is one too many, as a scan to the end of the value
	 * finds; the first of another value is where the stream goes on.
	 */
	s->positioned = false;
	while (value_stream_next(s))
	{
		id = value_stream_id(s, valueid);
		if (id != valueid)
		{
			s->pending = true;
			s->positioned = true;
			break;
		}
		if (value_stream_fetch(vr, s, &tuple))
		{
			bool		isnull;

			value_chunk_corrupted(vr, valueid, "chunk number",
								  DatumGetInt32(heap_getattr(&tuple, 2, desc, &isnull)),
								  ScanDirectionIsForward(s->dir) ? totalchunks - 1 : 0);
		}
	}
	if (!s->open)
		s->positioned = false;	/* it has nothing more to read */
	s->last = valueid;
	s->used = ++vr->clock;
	if (!s->open)
	{
		vr->recent[vr->recent_next] = valueid;
		vr->recent_next = (vr->recent_next + 1) % VALUE_RECENT;
	}
}

/*
 * The value behind an on-disk TOAST pointer that sl_value_reader_takes,
 * whole and uncompressed, in a new palloc'd varlena.
 */
struct varlena *
sl_value_reader_fetch(ValueReader *vr, struct varlena *ptr, bool compressed)
{
	struct varatt_external ext;
	int32		extsize;
	struct varlena *result;

	VARATT_EXTERNAL_GET_POINTER(ext, ptr);
	extsize = VARATT_EXTERNAL_GET_EXTSIZE(ext);
	result = (struct varlena *) palloc(extsize + VARHDRSZ);
	if (compressed)
		SET_VARSIZE_COMPRESSED(result, extsize + VARHDRSZ);
	else
		SET_VARSIZE(result, extsize + VARHDRSZ);
	sl_value_reader_read(vr, ptr, VARDATA(result));
	if (compressed)
	{
		struct varlena *raw = detoast_attr(result);

		pfree(result);
		result = raw;
	}
	return result;
}
