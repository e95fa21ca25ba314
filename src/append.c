/*
 * append.c
 *
 * Appending entries to a document's storage log: the hot path.
 *
 * Owns: synclog.append and synclog.append_delta, LSN assignment, the
 * per-client idempotence check, and writing retire entries
 * (sl_append_retire).
 * Must never: assign an LSN without holding the document's row lock
 * (FOR NO KEY UPDATE, see sl_lock_document) until commit.  That lock is
 * what makes LSN order equal commit order: the next appender cannot take
 * LSN n+1 before the holder of n has committed and become visible.  Must
 * never look at the log chain either: an entry's log is implied by its
 * LSN, which is what lets a rotation fold without blocking appends.  And
 * must not update the document row per append (a new row version and its
 * WAL each time): locking it is all the ordering needs, and the head is
 * the newest entry.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation_d.h"
#include "catalog/pg_type_d.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_append);
PG_FUNCTION_INFO_V1(synclog_append_delta);

/*
 * The hot path works on the tables directly (index lookups and a heap
 * insert) instead of through SQL statements: an append is one lock and one
 * row insert, and planning-free executor startup per statement, constraint
 * expressions and SPI bookkeeping would cost more than the work itself.
 * The invariants the entry table's CHECK constraints state are kept by this
 * code; the rare update of the document row, and everything else, still go
 * through SQL.
 *
 * What the hot path looks up by name (relation OIDs, column numbers, index
 * descriptions) is kept per backend until a relcache invalidation touches
 * one of those relations (the extension dropped and created again, an ALTER,
 * an index added).  So are, per document name, where this backend last found
 * the document's row and the last LSN it appended: the row is fetched by
 * its TID instead of through the name index, and the head lookup starts at
 * that LSN instead of reading every entry of the document on the index
 * page.  Both are only hints, checked every time: the row must still be the
 * newest version, visible, and carry the name; the LSN must belong to the
 * same document (the same id), and an entry must exist at or above it.
 */
typedef struct DocHint
{
	char		name[SL_DOC_NAME_MAX + 1];	/* hash key */
	int64		doc_id;			/* the document found under that name */
	ItemPointerData tid;		/* where its row was */
	int64		last_lsn;		/* last LSN appended to it here, or 0 */
} DocHint;

/* Documents remembered per backend; past this the table starts afresh. */
#define DOC_HINTS_MAX	4096

static struct
{
	bool		valid;
	MemoryContext cxt;
	Oid			doc,
				doc_name_key,
				entry,
				entry_pkey,
				entry_client_idx;
	/* synclog.doc */
	AttrNumber	d_doc_id,
				d_name,
				d_active_log,
				d_active_base,
				d_due,
				d_first_append_at,
				d_rotate_entries,
				d_rotate_bytes,
				d_auto_rotate,
				d_clients;
	/* synclog.entry */
	AttrNumber	e_doc_id,
				e_lsn,
				e_log_bytes,
				e_delta,
				e_client_id,
				e_client_seq,
				e_chain,
				e_group_lsn;
	/* The entry table has just its two indexes, as created: insert directly. */
	bool		direct_index;
	IndexInfo  *pkey_info;
	IndexInfo  *client_info;
	HTAB	   *docs;
} hot;

/* Relcache callback: forget the cache when one of its relations changes. */
static void
hot_invalidate(Datum arg, Oid relid)
{
	if (!hot.valid)
		return;
	if (relid == InvalidOid || relid == hot.doc || relid == hot.doc_name_key ||
		relid == hot.entry || relid == hot.entry_pkey || relid == hot.entry_client_idx)
		hot.valid = false;
}

/* The attribute number of column name of rel; the column must exist. */
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
	elog(ERROR, "column \"%s\" of relation \"%s\" does not exist",
		 name, RelationGetRelationName(rel));
	return InvalidAttrNumber;	/* keep compiler quiet */
}

/* Does an index cover exactly these heap columns, with no expression or predicate other than expected? */
static bool
index_is(IndexInfo *ii, int natts, const AttrNumber *attrs, bool partial)
{
	if (ii->ii_NumIndexAttrs != natts || ii->ii_Expressions != NIL ||
		(ii->ii_Predicate != NIL) != partial)
		return false;
	for (int i = 0; i < natts; i++)
		if (ii->ii_IndexAttrNumbers[i] != attrs[i])
			return false;
	return true;
}

/*
 * Fill the cache: the relations' OIDs, the columns' numbers, the index
 * descriptions, whether the entry table's indexes are still the two the
 * extension created (then the hot path inserts into them directly), and an
 * empty table of document hints.
 */
static void
hot_build(void)
{
	static bool registered = false;
	Relation	rel;
	List	   *indexes;
	MemoryContext old;
	HASHCTL		ctl;

	if (!registered)
	{
		CacheRegisterRelcacheCallback(hot_invalidate, (Datum) 0);
		registered = true;
	}
	if (hot.cxt == NULL)
		hot.cxt = AllocSetContextCreate(CacheMemoryContext, "synclog append cache",
										ALLOCSET_SMALL_SIZES);
	hot.valid = false;
	hot.docs = NULL;
	MemoryContextReset(hot.cxt);

	hot.doc = sl_relid("doc");
	hot.doc_name_key = sl_relid("doc_name_key");
	hot.entry = sl_relid("entry");
	hot.entry_pkey = sl_relid("entry_pkey");
	hot.entry_client_idx = sl_relid("entry_client_idx");

	rel = table_open(hot.doc, AccessShareLock);
	hot.d_doc_id = column(rel, "doc_id");
	hot.d_name = column(rel, "name");
	hot.d_active_log = column(rel, "active_log");
	hot.d_active_base = column(rel, "active_base");
	hot.d_due = column(rel, "due");
	hot.d_first_append_at = column(rel, "first_append_at");
	hot.d_rotate_entries = column(rel, "rotate_entries");
	hot.d_rotate_bytes = column(rel, "rotate_bytes");
	hot.d_auto_rotate = column(rel, "auto_rotate");
	hot.d_clients = column(rel, "clients");
	table_close(rel, AccessShareLock);

	rel = table_open(hot.entry, AccessShareLock);
	hot.e_doc_id = column(rel, "doc_id");
	hot.e_lsn = column(rel, "lsn");
	hot.e_log_bytes = column(rel, "log_bytes");
	hot.e_delta = column(rel, "delta");
	hot.e_client_id = column(rel, "client_id");
	hot.e_client_seq = column(rel, "client_seq");
	hot.e_chain = column(rel, "chain");
	hot.e_group_lsn = column(rel, "group_lsn");
	indexes = RelationGetIndexList(rel);
	old = MemoryContextSwitchTo(hot.cxt);
	{
		Relation	pkey = index_open(hot.entry_pkey, AccessShareLock);
		Relation	cidx = index_open(hot.entry_client_idx, AccessShareLock);
		AttrNumber	pk_attrs[2] = {hot.e_doc_id, hot.e_lsn};
		AttrNumber	ci_attrs[3] = {hot.e_doc_id, hot.e_client_id, hot.e_lsn};

		hot.pkey_info = BuildIndexInfo(pkey);
		hot.client_info = BuildIndexInfo(cidx);
		hot.direct_index = list_length(indexes) == 2 &&
			list_member_oid(indexes, hot.entry_pkey) &&
			list_member_oid(indexes, hot.entry_client_idx) &&
			index_is(hot.pkey_info, 2, pk_attrs, false) &&
			index_is(hot.client_info, 3, ci_attrs, true);
		index_close(cidx, AccessShareLock);
		index_close(pkey, AccessShareLock);
	}
	MemoryContextSwitchTo(old);
	list_free(indexes);
	table_close(rel, AccessShareLock);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = SL_DOC_NAME_MAX + 1;
	ctl.entrysize = sizeof(DocHint);
	ctl.hcxt = hot.cxt;
	hot.docs = hash_create("synclog document hints", 256, &ctl,
						   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	hot.valid = true;
}

/* The hints for a document name (validated: at most SL_DOC_NAME_MAX bytes), or NULL. */
static DocHint *
find_hint(const char *name)
{
	return (DocHint *) hash_search(hot.docs, name, HASH_FIND, NULL);
}

/* Remember where the document's row is; keeps the LSN hint while the id is the same. */
static DocHint *
set_hint(const char *name, int64 doc_id, ItemPointer tid)
{
	DocHint    *h;
	bool		found;

	if (hash_get_num_entries(hot.docs) >= DOC_HINTS_MAX &&
		hash_search(hot.docs, name, HASH_FIND, NULL) == NULL)
	{
		HASH_SEQ_STATUS seq;

		hash_seq_init(&seq, hot.docs);
		while ((h = (DocHint *) hash_seq_search(&seq)) != NULL)
			hash_search(hot.docs, h->name, HASH_REMOVE, NULL);
	}
	h = (DocHint *) hash_search(hot.docs, name, HASH_ENTER, &found);
	if (!found || h->doc_id != doc_id)
		h->last_lsn = 0;
	h->doc_id = doc_id;
	h->tid = *tid;
	return h;
}

/*
 * An SPI session (sl_spi_begin) costs a few syscache lookups and memory
 * contexts, more than a tenth of an append's own work; the hot path opens
 * one only when it runs SQL: a client's retry check, the rare update of
 * the document row.
 */
static void
need_spi(bool *open)
{
	if (!*open)
		sl_spi_begin();
	*open = true;
}

/*
 * Two bigint columns of the entry that an index scan over keys (heap column
 * numbers: systable_beginscan_ordered maps them to the index's) returns
 * last, as the snapshot sees it; false if there is none.
 */
static bool
newest_entry(Relation entryrel, Relation index, Snapshot snap, int nkeys,
			 ScanKey key, AttrNumber col1, int64 *val1, AttrNumber col2, int64 *val2)
{
	SysScanDesc scan = systable_beginscan_ordered(entryrel, index, snap, nkeys, key);
	HeapTuple	found = systable_getnext_ordered(scan, BackwardScanDirection);

	if (HeapTupleIsValid(found))
	{
		bool		isnull;
		TupleDesc	desc = RelationGetDescr(entryrel);

		*val1 = DatumGetInt64(heap_getattr(found, col1, desc, &isnull));
		*val2 = DatumGetInt64(heap_getattr(found, col2, desc, &isnull));
	}
	systable_endscan_ordered(scan);
	return HeapTupleIsValid(found);
}

/*
 * The client's newest entry in the document, as the snapshot sees it: its
 * client_seq and LSN, or -1 and -1.
 */
static void
client_newest(Relation entryrel, int64 doc_id, text *client_id, Snapshot snap,
			  int64 *seq, int64 *lsn)
{
	Relation	cidx = index_open(hot.entry_client_idx, AccessShareLock);
	ScanKeyData key[2];

	ScanKeyEntryInitialize(&key[0], 0, hot.e_doc_id, BTEqualStrategyNumber,
						   InvalidOid, InvalidOid, F_INT8EQ, Int64GetDatum(doc_id));
	ScanKeyEntryInitialize(&key[1], 0, hot.e_client_id, BTEqualStrategyNumber,
						   InvalidOid, cidx->rd_indcollation[1], F_TEXTEQ,
						   PointerGetDatum(client_id));
	if (!newest_entry(entryrel, cidx, snap, 2, key,
					  hot.e_client_seq, seq, hot.e_lsn, lsn))
		*seq = *lsn = -1;
	index_close(cidx, AccessShareLock);
}

/*
 * The LSN already recorded for (doc, client) when client_seq is not above
 * the client's watermark, or -1 when the append must go ahead; *new_client
 * says whether the document has no watermark of this client: none yet, or
 * its newest entry or state version is a retire entry's (PROTOCOL.md
 * section 4), after which the client id is new again.
 */
static int64
duplicate_of(Relation entryrel, int64 doc_id, int64 active_base,
			 text *client_id, int64 client_seq, bool *spi, bool *new_client)
{
	static SPIPlanPtr plan_kv;
	Oid			t_kv[2] = {INT8OID, BYTEAOID};
	Datum		v[2] = {Int64GetDatum(doc_id), PointerGetDatum(client_id)};
	Snapshot	snap;
	int64		seq,
				lsn;

	/*
	 * The client's newest entry is its watermark when it lies in the active
	 * log: every watermark a rotation folded is older.  Otherwise it is in a
	 * sealed log, already folded, and the folded watermark (which also
	 * survives the collection of that log) can be newer.  The snapshot is
	 * the one a new statement would take: the retry's original committed
	 * before we got the document's lock.
	 */
	snap = RegisterSnapshot(IsolationUsesXactSnapshot() ?
							GetTransactionSnapshot() : GetLatestSnapshot());
	client_newest(entryrel, doc_id, client_id, snap, &seq, &lsn);
	UnregisterSnapshot(snap);
	if (lsn <= active_base)
	{
		bool		isnull;
		bytea	   *wm;
		int64		wseq,
					wlsn;

		need_spi(spi);
		sl_exec(&plan_kv,
				"SELECT value, kind, lsn FROM synclog.kv "
				"WHERE doc_id = $1 AND ns = 2 AND key = $2 "
				"ORDER BY lsn DESC LIMIT 1",
				2, t_kv, v, NULL, false, 1);
		if (SPI_processed > 0 && DatumGetChar(sl_col(0, 2, &isnull)) == 'd')
		{
			/* a retire entry folded by a rotation */
			wseq = SLC_RETIRE_SEQ;
			wlsn = sl_col_int64(0, 3);
			if (wlsn > lsn)
			{
				seq = wseq;
				lsn = wlsn;
			}
		}
		else if (SPI_processed > 0)
		{
			Datum		d = sl_col(0, 1, &isnull);

			wm = isnull ? NULL : DatumGetByteaPP(d);
			if (wm == NULL || VARSIZE_ANY_EXHDR(wm) != SLC_WATERMARK_LEN)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("malformed client watermark in synclog.kv"),
						 errdetail("A watermark of the document with internal id %lld is %d bytes; watermarks are %d bytes.",
								   (long long) doc_id,
								   wm == NULL ? 0 : (int) VARSIZE_ANY_EXHDR(wm),
								   SLC_WATERMARK_LEN)));
			slc_watermark_decode((const uint8 *) VARDATA_ANY(wm), &wseq, &wlsn);
			if (wlsn > lsn)
			{
				seq = wseq;
				lsn = wlsn;
			}
		}
	}
	*new_client = lsn < 0 || seq == SLC_RETIRE_SEQ;
	if (*new_client)
		return -1;
	return client_seq <= seq ? lsn : -1;
}

/* Insert the index entries of a new entry tuple. */
static void
insert_index_entries(Relation rel, HeapTuple tup, int64 doc_id, int64 lsn,
					 text *client_id, bool *spi)
{
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;

	if (hot.direct_index)
	{
		Relation	pkey = index_open(hot.entry_pkey, RowExclusiveLock);
		Datum		v[3] = {Int64GetDatum(doc_id), Int64GetDatum(lsn), (Datum) 0};
		bool		n[3] = {false, false, false};

		index_insert(pkey, v, n, &tup->t_self, rel, UNIQUE_CHECK_YES, false,
					 hot.pkey_info);
		index_close(pkey, NoLock);
		if (client_id != NULL)
		{
			Relation	cidx = index_open(hot.entry_client_idx, RowExclusiveLock);

			v[1] = PointerGetDatum(client_id);
			v[2] = Int64GetDatum(lsn);
			index_insert(cidx, v, n, &tup->t_self, rel, UNIQUE_CHECK_NO, false,
						 hot.client_info);
			index_close(cidx, NoLock);
		}
		return;
	}

	/*
	 * Someone changed the table's indexes: let the executor handle them, as
	 * the extension's owner with the pinned search_path, like all of
	 * synclog's SQL (an expression index may call functions).
	 */
	need_spi(spi);
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

/*
 * Whether value reached a rotation threshold: the document's override
 * unless it is NULL, else the setting; 0 turns the threshold off.
 */
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

	ScanKeyEntryInitialize(&key, 0, hot.d_name, BTEqualStrategyNumber,
						   InvalidOid, C_COLLATION_OID, F_TEXTEQ,
						   PointerGetDatum(doc));
	scan = systable_beginscan(docrel, hot.doc_name_key, true, snap, 1, &key);
	found = systable_getnext(scan);
	copy = HeapTupleIsValid(found) ? heap_copytuple(found) : NULL;
	systable_endscan(scan);
	return copy;
}

/*
 * Whether the relation has this block, without a system call each time.
 * smgrnblocks() leaves the size it read in smgr_cached_nblocks (it only
 * trusts that cache during recovery itself).  The size can only have
 * shrunk since if the relation was truncated, which needs an
 * AccessExclusiveLock and sends an invalidation that destroys this
 * backend's SMgrRelation, cache included, when we take our lock on the
 * table (before we get here); growth elsewhere only makes the cached size
 * too small, and a block past it is checked with the real size.
 */
static bool
block_exists(Relation rel, BlockNumber blk)
{
	BlockNumber cached = RelationGetSmgr(rel)->smgr_cached_nblocks[MAIN_FORKNUM];

	if (cached != InvalidBlockNumber && blk < cached)
		return true;
	return blk < RelationGetNumberOfBlocks(rel);
}

/*
 * The document's row at a remembered TID, if that is still the version of
 * the row named doc that the snapshot sees (a copy), or NULL.  Document
 * names are unique among visible rows, so this finds what doc_row would;
 * a stale TID (the row updated, deleted, moved by VACUUM FULL, or its page
 * truncated away) just finds nothing.
 */
static HeapTuple
doc_at(Relation docrel, ItemPointer tid, text *doc, Snapshot snap)
{
	HeapTupleData tuple;
	Buffer		buf;
	HeapTuple	copy = NULL;

	/* heap_fetch reads the block, which must exist. */
	if (!block_exists(docrel, ItemPointerGetBlockNumber(tid)))
		return NULL;
	tuple.t_self = *tid;
	if (heap_fetch(docrel, snap, &tuple, &buf, false))
	{
		bool		isnull;
		text	   *name = DatumGetTextPP(heap_getattr(&tuple, hot.d_name,
													  RelationGetDescr(docrel),
													  &isnull));

		if (!isnull &&
			VARSIZE_ANY_EXHDR(name) == VARSIZE_ANY_EXHDR(doc) &&
			memcmp(VARDATA_ANY(name), VARDATA_ANY(doc), VARSIZE_ANY_EXHDR(doc)) == 0)
			copy = heap_copytuple(&tuple);
		ReleaseBuffer(buf);
	}
	return copy;
}

/* What an append needs to know of the document's newest entry. */
typedef struct LastEntry
{
	int64		lsn;			/* 0 if the document has no entry */
	int64		log_bytes;
	int64		group_lsn;
	bool		mine;			/* written by this transaction */
	uint8		chain[SLC_CHAIN_LEN];
} LastEntry;

/*
 * The document's newest entry as one snapshot sees it (all zero when there
 * is none).  With a hint (an LSN at or below the head) the index scan
 * starts there instead of reading every entry of the document on the last
 * index page; a hint above the head (a rolled back append) finds nothing,
 * and the scan is repeated without it.
 */
static void
last_entry(Relation entryrel, Relation pkey, int64 doc_id, Snapshot snap,
		   int64 hint, LastEntry *out)
{
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	found;

	ScanKeyEntryInitialize(&key[0], 0, hot.e_doc_id, BTEqualStrategyNumber,
						   InvalidOid, InvalidOid, F_INT8EQ, Int64GetDatum(doc_id));
	ScanKeyEntryInitialize(&key[1], 0, hot.e_lsn, BTGreaterEqualStrategyNumber,
						   InvalidOid, InvalidOid, F_INT8GE, Int64GetDatum(hint));
	scan = systable_beginscan_ordered(entryrel, pkey, snap, hint > 0 ? 2 : 1, key);
	found = systable_getnext_ordered(scan, BackwardScanDirection);
	memset(out, 0, sizeof(*out));
	if (HeapTupleIsValid(found))
	{
		TupleDesc	desc = RelationGetDescr(entryrel);
		bool		isnull;
		bytea	   *chain;

		out->lsn = DatumGetInt64(heap_getattr(found, hot.e_lsn, desc, &isnull));
		out->log_bytes = DatumGetInt64(heap_getattr(found, hot.e_log_bytes, desc, &isnull));
		/* NULL: the entry starts its group (most do; it saves 8 bytes a row) */
		out->group_lsn = DatumGetInt64(heap_getattr(found, hot.e_group_lsn, desc, &isnull));
		if (isnull)
			out->group_lsn = out->lsn;
		out->mine = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(found->t_data));
		chain = DatumGetByteaPP(heap_getattr(found, hot.e_chain, desc, &isnull));
		if (isnull || VARSIZE_ANY_EXHDR(chain) != SLC_CHAIN_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("malformed chain value in synclog.entry"),
					 errdetail("The entry at LSN " INT64_FORMAT " of the document with internal id %lld does not hold a %d-byte chain value.",
							   out->lsn, (long long) doc_id, SLC_CHAIN_LEN)));
		memcpy(out->chain, VARDATA_ANY(chain), SLC_CHAIN_LEN);
	}
	systable_endscan_ordered(scan);
	if (!HeapTupleIsValid(found) && hint > 0)
		last_entry(entryrel, pkey, doc_id, snap, 0, out);
}

/*
 * The log bytes before the entry at lsn, which lies in the active log
 * (above base): the log_bytes of the entry before it, or 0 when it is the
 * log's first.  log_bytes counts version 1 bytes, whatever is stored.
 */
static int64
bytes_before(Relation entryrel, Relation pkey, int64 doc_id, int64 lsn,
			 int64 base, Snapshot snap)
{
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	found;
	int64		result;
	TupleDesc	desc = RelationGetDescr(entryrel);
	bool		isnull;

	if (lsn - 1 <= base)
		return 0;
	ScanKeyEntryInitialize(&key[0], 0, hot.e_doc_id, BTEqualStrategyNumber,
						   InvalidOid, InvalidOid, F_INT8EQ, Int64GetDatum(doc_id));
	ScanKeyEntryInitialize(&key[1], 0, hot.e_lsn, BTEqualStrategyNumber,
						   InvalidOid, InvalidOid, F_INT8EQ, Int64GetDatum(lsn - 1));
	scan = systable_beginscan_ordered(entryrel, pkey, snap, 2, key);
	found = systable_getnext_ordered(scan, ForwardScanDirection);
	if (!HeapTupleIsValid(found))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("missing entry in synclog.entry"),
				 errdetail("The document with internal id %lld has no entry at LSN " INT64_FORMAT ", before a group's start.",
						   (long long) doc_id, lsn - 1)));
	result = DatumGetInt64(heap_getattr(found, hot.e_log_bytes, desc, &isnull));
	systable_endscan_ordered(scan);
	return result;
}

/* The same for callers without the relations at hand (compact.c). */
void
sl_last_entry(int64 doc_id, Snapshot snap, int64 *lsn, int64 *log_bytes)
{
	Relation	entryrel;
	Relation	pkey;
	LastEntry	le;

	if (!hot.valid)
		hot_build();
	entryrel = table_open(hot.entry, AccessShareLock);
	pkey = index_open(hot.entry_pkey, AccessShareLock);
	last_entry(entryrel, pkey, doc_id, snap, 0, &le);
	*lsn = le.lsn;
	*log_bytes = le.log_bytes;
	index_close(pkey, AccessShareLock);
	table_close(entryrel, AccessShareLock);
}

/*
 * The chain value at the base of the document's active log (SPI must be
 * connected); the row is the document's, which the caller has locked.
 */
static void
active_base_chain(int64 doc_id, uint8 out[SLC_CHAIN_LEN])
{
	static SPIPlanPtr plan;
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(doc_id)};
	bool		isnull;
	bytea	   *chain;

	sl_exec(&plan,
			"SELECT l.base_chain FROM synclog.doc d "
			"JOIN synclog.log l ON l.log_id = d.active_log WHERE d.doc_id = $1",
			1, types, args, NULL, false, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("active log of the document with internal id %lld is missing",
						(long long) doc_id)));
	chain = DatumGetByteaPP(sl_col(0, 1, &isnull));
	if (VARSIZE_ANY_EXHDR(chain) != SLC_CHAIN_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed chain value in synclog.log"),
				 errdetail("The active log of the document with internal id %lld has a base chain value of %d bytes.",
						   (long long) doc_id, (int) VARSIZE_ANY_EXHDR(chain))));
	memcpy(out, VARDATA_ANY(chain), SLC_CHAIN_LEN);
}

/* What an UPDATE of a concurrently changed row raises in REPEATABLE READ. */
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
 * append, one more client when the append is a client's first (clients = 1)
 * and one less for a retire entry (clients = -1).  The first two happen at
 * most once per log and the others once per client, so appends almost
 * never write the row.
 */
static void
mark_doc(int64 doc_id, bool due, bool first, int clients)
{
	static SPIPlanPtr plan;
	Oid			types[4] = {INT8OID, BOOLOID, TIMESTAMPTZOID, INT8OID};
	Datum		args[4] = {Int64GetDatum(doc_id), BoolGetDatum(due),
						   TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
						   Int64GetDatum(clients)};
	char		nulls[5] = "    ";

	if (!first)
		nulls[2] = 'n';
	sl_exec(&plan,
			"UPDATE synclog.doc SET due = due OR $2, "
			"first_append_at = coalesce(first_append_at, $3), "
			"clients = greatest(clients + $4, 0) WHERE doc_id = $1",
			4, types, args, nulls, false, 0);
}

/*
 * Lock the document's row and return it (a copy).  The lock waits for
 * whoever holds it (an append, a rotation's seal, a drop), and only a
 * snapshot taken after the wait sees what they committed; the holder
 * committed before its lock went, so the newest snapshot sees its entry:
 * that is what makes LSN order commit order.  If the row changed while we
 * waited (a rotation, a policy change, an append crossing a threshold), we
 * lock its new version; if it was deleted, the document we were appending
 * to is gone, even if one of the same name was created since, as for an
 * UPDATE.  hint, if not NULL, is where the row was last seen.
 */
static HeapTuple
lock_and_read(Relation docrel, text *doc, ItemPointer hint, bool xact_snapshot)
{
	for (;;)
	{
		Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
		HeapTuple	row = NULL;
		HeapTupleData locked;
		Buffer		buf;
		TM_FailureData tmfd;
		TM_Result	res;

		if (hint != NULL)
			row = doc_at(docrel, hint, doc, snap);
		if (row == NULL)
			row = doc_row(docrel, doc, snap);
		hint = NULL;
		UnregisterSnapshot(snap);
		if (row == NULL)
			sl_unknown_doc(doc);
		locked.t_self = row->t_self;
		res = heap_lock_tuple(docrel, &locked, GetCurrentCommandId(true),
							  LockTupleNoKeyExclusive, LockWaitBlock, false,
							  &buf, &tmfd);
		ReleaseBuffer(buf);
		if (res == TM_Ok)
			return row;
		if (res != TM_Updated && res != TM_Deleted)
			elog(ERROR, "unrecognized heap_lock_tuple status: %u", (unsigned int) res);
		if (xact_snapshot)
			serialization_failure();
		if (res == TM_Deleted)
			sl_unknown_doc(doc);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Append an already validated delta.  client_seq SLC_RETIRE_SEQ (only from
 * sl_append_retire) appends a retire entry if the client has a watermark,
 * and returns -1, appending nothing, if it has none.
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
	Datum	   *values;
	bool	   *nulls;
	Snapshot	snap;
	int64		doc_id,
				hint,
				lsn,
				base,
				bytes,
				group_lsn;
	LastEntry	last;
	uint8		prev_chain[SLC_CHAIN_LEN];
	bytea	   *stored;			/* what the entry keeps: delta, maybe compressed */
	char		name[SL_DOC_NAME_MAX + 1];
	DocHint    *h;
	bool		isnull;
	bool		new_client = false;
	bool		retire = client_id != NULL && client_seq == SLC_RETIRE_SEQ;
	bool		spi = false;
	Oid			caller = GetUserId();

	/* What the executor would check for an INSERT (also true on a standby). */
	PreventCommandIfReadOnly("synclog.append()");
	PreventCommandIfParallelMode("synclog.append()");
	sl_require_doc_as(caller, doc, true);

	/*
	 * Make what this transaction wrote before visible, as a new SQL
	 * statement would: several appends in one statement must see each
	 * other's LSNs.
	 */
	CommandCounterIncrement();
	if (!hot.valid)
		hot_build();

	/* RowShareLock: the relation lock SELECT ... FOR NO KEY UPDATE takes. */
	docrel = table_open(hot.doc, RowShareLock);
	entryrel = table_open(hot.entry, RowExclusiveLock);
	pkey = index_open(hot.entry_pkey, AccessShareLock);
	desc = RelationGetDescr(docrel);

	text_to_cstring_buffer(doc, name, sizeof(name));
	h = find_hint(name);
#ifdef SYNCLOG_TEST_HOOKS
	/* Test hook: move the remembered row to another block (append_hint.spec). */
	if (h != NULL && synclog_debug_hint_block >= 0)
		ItemPointerSetBlockNumber(&h->tid, (BlockNumber) synclog_debug_hint_block);
#endif
	row = lock_and_read(docrel, doc, h != NULL ? &h->tid : NULL,
						IsolationUsesXactSnapshot());
	doc_id = DatumGetInt64(heap_getattr(row, hot.d_doc_id, desc, &isnull));
	sl_note_document_held(doc_id);
	h = set_hint(name, doc_id, &row->t_self);
	hint = h->last_lsn;
	snap = RegisterSnapshot(GetLatestSnapshot());
	last_entry(entryrel, pkey, doc_id, snap, hint, &last);
	UnregisterSnapshot(snap);

	/*
	 * In REPEATABLE READ and SERIALIZABLE the transaction's snapshot must
	 * see the newest entry and document row, or the append fails as an
	 * UPDATE of a concurrently updated row would: the transaction could not
	 * see the entries that took the LSNs before its own, nor a retry's
	 * original.
	 */
	if (IsolationUsesXactSnapshot())
	{
		HeapTuple	seen;
		LastEntry	seen_last;

		snap = GetTransactionSnapshot();
		seen = doc_row(docrel, doc, snap);
		if (seen == NULL || !ItemPointerEquals(&seen->t_self, &row->t_self))
			serialization_failure();
		last_entry(entryrel, pkey, doc_id, snap, last.lsn, &seen_last);
		if (seen_last.lsn != last.lsn)
			serialization_failure();
	}

	values = palloc(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	heap_deform_tuple(row, desc, values, nulls);
	base = DatumGetInt64(values[hot.d_active_base - 1]);
	lsn = Max(last.lsn, base) + 1;
	bytes = (last.lsn > base ? last.log_bytes : 0) + size;

	if (client_id != NULL)
	{
		/*
		 * A retry racing its original: the original held the lock, so we
		 * come here after it committed, and find its entry.
		 */
		int64		dup;

		dup = duplicate_of(entryrel, doc_id, base, client_id, client_seq, &spi,
						   &new_client);
		if (retire ? new_client : dup >= 0)
		{
			index_close(pkey, AccessShareLock);
			table_close(entryrel, NoLock);
			table_close(docrel, NoLock);
			if (spi)
				sl_spi_end();
			return retire ? -1 : dup;
		}
	}

	/*
	 * The chain value continues from the entry before; only when that one
	 * is gone (the active log is empty and the sealed log before it was
	 * collected) does it come from the active log's base.  The group goes
	 * on while this transaction appends (never across a rotation).
	 */
	if (last.lsn == lsn - 1 && last.lsn > 0)
		memcpy(prev_chain, last.chain, SLC_CHAIN_LEN);
	else
	{
		need_spi(&spi);
		active_base_chain(doc_id, prev_chain);
	}
	group_lsn = lsn;
	if (last.lsn > base && last.mine)
	{
		int64		group_bytes;

		group_lsn = last.group_lsn;
		snap = RegisterSnapshot(GetLatestSnapshot());
		group_bytes = bytes - bytes_before(entryrel, pkey, doc_id, group_lsn, base, snap);
		UnregisterSnapshot(snap);
		if (group_bytes > (int64) synclog_max_group_kb * 1024)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("transaction's entries to document \"%s\" exceed \"synclog.max_group_size\"", name),
					 errdetail("Its entries from LSN " INT64_FORMAT " on hold " INT64_FORMAT " bytes of deltas; the limit is %d kB.",
							   group_lsn, group_bytes, synclog_max_group_kb),
					 errhint("Split the write over several transactions, or have a superuser raise the setting.")));
	}

	/* The policy's flags (see policy.c). */
	{
		bool		due = false;
		bool		first = nulls[hot.d_first_append_at - 1];

		if (!DatumGetBool(values[hot.d_due - 1]) &&
			DatumGetBool(values[hot.d_auto_rotate - 1]))
			due = threshold_reached(values[hot.d_rotate_entries - 1],
									nulls[hot.d_rotate_entries - 1],
									sl_threshold_entries(), lsn - base) ||
				threshold_reached(values[hot.d_rotate_bytes - 1],
								  nulls[hot.d_rotate_bytes - 1],
								  sl_threshold_bytes(), bytes);
		if (new_client)
		{
			int64		clients = DatumGetInt64(values[hot.d_clients - 1]);

			if (clients >= synclog_max_clients_per_doc)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("too many clients for document \"%s\"", name),
						 errdetail("The document has watermarks of %lld clients; \"synclog.max_clients_per_doc\" is %d.",
								   (long long) clients, synclog_max_clients_per_doc),
						 errhint("Append with a client id the document already has, or without one.")));
		}
		if (due || first || new_client || retire)
		{
			need_spi(&spi);
			mark_doc(doc_id, due, first, retire ? -1 : new_client ? 1 : 0);
		}
	}

	/*
	 * Store it compressed when that pays (delta_store.c); everything else
	 * (the size, the policy, the chain value below) is over the version 1
	 * bytes in delta.
	 */
	stored = sl_delta_to_store(delta);

	/* The entry. */
	{
		TupleDesc	edesc = RelationGetDescr(entryrel);
		Datum	   *ev = palloc0(sizeof(Datum) * edesc->natts);
		bool	   *en = palloc(sizeof(bool) * edesc->natts);
		HeapTuple	etup;
		bytea	   *chain;

		for (int i = 0; i < edesc->natts; i++)
			en[i] = true;
		ev[hot.e_doc_id - 1] = Int64GetDatum(doc_id);
		en[hot.e_doc_id - 1] = false;
		ev[hot.e_lsn - 1] = Int64GetDatum(lsn);
		en[hot.e_lsn - 1] = false;
		ev[hot.e_log_bytes - 1] = Int64GetDatum(bytes);
		en[hot.e_log_bytes - 1] = false;
		ev[hot.e_delta - 1] = PointerGetDatum(stored);
		en[hot.e_delta - 1] = false;
		if (client_id != NULL)
		{
			ev[hot.e_client_id - 1] = PointerGetDatum(client_id);
			en[hot.e_client_id - 1] = false;
			ev[hot.e_client_seq - 1] = Int64GetDatum(client_seq);
			en[hot.e_client_seq - 1] = false;
		}
		chain = palloc(VARHDRSZ + SLC_CHAIN_LEN);
		SET_VARSIZE(chain, VARHDRSZ + SLC_CHAIN_LEN);
		slc_chain_next(prev_chain, lsn,
					   (const uint8 *) VARDATA_ANY(delta), VARSIZE_ANY_EXHDR(delta),
					   client_id ? VARDATA_ANY(client_id) : NULL,
					   client_id ? VARSIZE_ANY_EXHDR(client_id) : 0,
					   client_seq, (uint8 *) VARDATA(chain));
		ev[hot.e_chain - 1] = PointerGetDatum(chain);
		en[hot.e_chain - 1] = false;
		if (group_lsn != lsn)
		{
			ev[hot.e_group_lsn - 1] = Int64GetDatum(group_lsn);
			en[hot.e_group_lsn - 1] = false;
		}
		etup = heap_form_tuple(edesc, ev, en);
		simple_heap_insert(entryrel, etup);
		insert_index_entries(entryrel, etup, doc_id, lsn, client_id, &spi);
	}
	index_close(pkey, AccessShareLock);
	table_close(entryrel, NoLock);
	table_close(docrel, NoLock);

	/*
	 * The next append of this backend to the document starts its search
	 * here.  Unless SQL run since (mark_doc) invalidated the cache, h is
	 * still this document's entry: only hot_build empties the table.
	 */
	if (hot.valid)
		h->last_lsn = lsn;

	if (synclog_notify_append)
		sl_notify(VARDATA_ANY(doc), VARSIZE_ANY_EXHDR(doc), SL_EVENT_APPEND);
	if (spi)
		sl_spi_end();
	return lsn;
}

/*
 * Append a retire entry of client_id to the document (PROTOCOL.md section
 * 4: the client's id, client_seq -1, the empty delta), through the same
 * path, checks and locks as any append; the caller must be allowed to
 * write the document.  Returns its LSN, or -1, appending nothing, when the
 * client has no watermark in the document.  Must be called outside
 * sl_spi_begin/end.
 */
int64
sl_append_retire(text *doc, text *client_id)
{
	bytea	   *delta = palloc(VARHDRSZ + SLC_DELTA_HEADER_LEN);

	SET_VARSIZE(delta, VARHDRSZ + SLC_DELTA_HEADER_LEN);
	memset(VARDATA(delta), 0, SLC_DELTA_HEADER_LEN);
	*(uint8 *) VARDATA(delta) = SLC_DELTA_VERSION;
	return append_encoded(doc, delta, client_id, SLC_RETIRE_SEQ);
}

/*
 * synclog.append(doc text, keys bytea[], vals bytea[], client_id text, client_seq bigint) returns bigint
 *
 * Encodes keys[i] -> vals[i] (a NULL value deletes the key) as a delta,
 * as synclog.encode_delta does, and appends it to the document; returns
 * its LSN.  With client_id and client_seq, a client_seq at or below the
 * client's last one is a retry: nothing is appended, and the LSN already
 * recorded for the client is returned.
 *
 * Takes RowShareLock on synclog.doc (the lock SELECT ... FOR NO KEY UPDATE
 * takes), and RowExclusiveLock when the append writes the document's row
 * (the first append of a log, or the one that crosses a rotation
 * threshold); RowExclusiveLock on synclog.entry; AccessShareLock on
 * synclog.kv when a client_id is given and the client has no entry in the
 * active log (its watermark is then in the state), and on
 * synclog.doc_grant when the caller is a role whose confinement this
 * backend has not cached yet (and, on a backend's first append or
 * after a change to these tables, briefly on synclog.doc and synclog.entry
 * to read their layout).  Row lock: FOR NO KEY UPDATE on the document's
 * row, held until the transaction ends, also by a retry: it orders the
 * document's appends and makes LSN order commit order.  With
 * "synclog.notify_append" on, the NOTIFY takes at commit the lock that
 * orders notifying commits.
 */
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

	lsn = append_encoded(doc, delta, client_id, client_seq);
	PG_RETURN_INT64(lsn);
}

/*
 * synclog.append_delta(doc text, delta bytea, client_id text, client_seq bigint) returns bigint
 *
 * Appends a delta the client encoded, after checking it as
 * synclog.decode_delta does; otherwise as synclog.append.
 *
 * Takes the same locks as synclog.append.
 */
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

	lsn = append_encoded(doc, delta, client_id, client_seq);
	PG_RETURN_INT64(lsn);
}
