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
#include "access/heapam.h"
#include "access/heaptoast.h"
#include "access/toast_internals.h"
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
#define VALUE_STREAMS	8		/* runs of values read at once */
#define VALUE_RECENT	8		/* values read alone that a run may start from */
#define STREAM_GAP		16		/* go on to a value id at most this far on */
#define STREAM_SKIP		64		/* index entries passed over before starting again */

typedef struct ValueStream
{
	IndexScanDesc scan;
	Buffer		buf;			/* the TOAST heap page it read last, pinned */
	ScanDirection dir;			/* which way the scan runs */
	bool		open;			/* it runs on past one value (else: that one only) */
	bool		positioned;		/* the scan is just past the chunks of last */
	bool		pending;		/* its current entry is the next one to read */
	Oid			last;			/* the last value read whole */
	uint64		used;			/* when it last read a value (LRU) */
} ValueStream;

typedef struct ValueReader
{
	Relation	toastrel;		/* NULL: kv has no TOAST table */
	Relation   *toastidxs;
	int			num_indexes;
	int			valid_index;
	SnapshotData toast_snapshot;
	BufferAccessStrategy strategy;	/* a ring for TOAST pages, or NULL */
	bool		scan;			/* false: values are not read here */
	ValueStream alone;			/* the scan for one value */
	ValueStream streams[VALUE_STREAMS];
	Oid			recent[VALUE_RECENT];	/* values read alone last (a ring) */
	int			recent_next;
	uint64		clock;
	MemoryContext mcxt;			/* where the scans live (rows are read in a shorter one) */
} ValueReader;

static void
value_reader_begin(ValueReader *vr, Relation kv, bool scan, bool bulk)
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

static void
value_reader_end(ValueReader *vr)
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
static bool
value_reader_takes(ValueReader *vr, struct varlena *ptr, bool *compressed)
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
static void
value_reader_read(ValueReader *vr, struct varlena *ptr, char *dest)
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
 * The value behind an on-disk TOAST pointer that value_reader_takes,
 * whole and uncompressed, in a new palloc'd varlena.
 */
static struct varlena *
value_reader_fetch(ValueReader *vr, struct varlena *ptr, bool compressed)
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
	value_reader_read(vr, ptr, VARDATA(result));
	if (compressed)
	{
		struct varlena *raw = detoast_attr(result);

		pfree(result);
		result = raw;
	}
	return result;
}

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
	value_reader_begin(&ps->vr, ps->kv, read_values, bulk);
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
	value_reader_end(&ps->vr);
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
	value_reader_read(&st->ps.vr, ptr, VARDATA(data + voff));
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
	if (!value_reader_takes(&st->ps.vr, (struct varlena *) DatumGetPointer(values[1]),
							&compressed))
		tuple = heap_form_tuple(st->desc, values, nulls);
	else if (!compressed && !VARATT_IS_EXTERNAL(DatumGetPointer(values[0])) &&
			 !VARATT_IS_COMPRESSED(DatumGetPointer(values[0])))
		tuple = row_reading_value(st, (struct varlena *) DatumGetPointer(values[0]),
								  (struct varlena *) DatumGetPointer(values[1]));
	else
	{
		values[1] = PointerGetDatum(value_reader_fetch(&st->ps.vr,
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
