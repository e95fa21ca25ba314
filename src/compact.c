/*
 * compact.c
 *
 * Snapshot-and-rotate: fold the active log into the document's versioned
 * state, seal the log with an end-log marker and start a new log whose
 * snapshot is that state.
 *
 * Owns: synclog.compact and sl_compact_doc (which the background worker
 * calls too), the fold of log entries into synclog.kv, and the incremental
 * snapshot hash and range hashes (the per-bucket differences the fold
 * collects; range.c stores them).
 *
 * Must never: hold the document lock while folding a whole log (appends
 * would stall for the length of the fold), copy or scan the document state
 * (a rotation costs in proportion to its log, not to the document), keep
 * more than one batch of entries and one group of values in memory, or
 * make the new log visible
 * before its snapshot is complete: everything here is one transaction.
 *
 * How the pieces fit:
 *  - Entries are keyed by (doc, lsn); which log an entry belongs to follows
 *    from the log ranges, so appends that arrive while we fold simply land
 *    beyond the seal point and belong to the new log.  Nothing moves.
 *  - The state is kept as versions (doc, ns, key, lsn, value) where lsn is
 *    the LSN of the write; the state at a log's base_lsn is the newest
 *    version at or below it, tombstones (NULL value) hiding older ones.
 *    A version holds a copy of its value, never a pointer into an entry, so
 *    that gc can drop a collected log's entries wholesale; the copy costs
 *    one value per changed key, which is in proportion to the log.
 *  - The fold walks the entries newest first, so the first write seen for
 *    a key is its last: only that one becomes a version, and only the set
 *    of keys seen (not their values) stays in memory for the whole pass.
 *    Those last writes are folded in groups (at most 256 keys and about
 *    8 MiB of values): one lookup of the group's current versions through
 *    kv_key_idx and one multi-row INSERT, so the per-statement cost is
 *    paid per group, not per key.
 *  - Phase 1 folds without the document lock, catching up with appends
 *    until few remain; phase 2 locks the document, folds the short tail and
 *    switches.  Versions written in phase 1 that the tail supersedes are
 *    deleted, so each rotation leaves at most one version per key.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/pmsignal.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_compact);

/* Entries left over after which phase 1 stops catching up. */
#define CATCHUP_TAIL		64
/* Phase 1 passes at most; a document appended faster than we fold stops here. */
#define CATCHUP_PASSES		8

/*
 * The newest writes of a pass are folded in groups: one lookup of the
 * keys' current versions and one multi-row INSERT per group, instead of
 * two statements per key (each statement's executor start-up cost more
 * than the work on one key).  A group is bounded in keys and in the bytes
 * of the values it holds copies of.
 */
#define FOLD_GROUP_KEYS		256
#define FOLD_GROUP_BYTES	(8 * 1024 * 1024)

/* The newest write of one key in this pass, waiting to be folded. */
typedef struct FoldKey
{
	int16		ns;
	bytea	   *key;
	bytea	   *val;			/* NULL: deleted */
	int64		lsn;
	int16		bucket;			/* its range bucket (PROTOCOL.md 11a) */
} FoldKey;

typedef struct FoldCtx
{
	int64		doc_id;
	int64		rot_base;		/* base LSN of the log being sealed */
	int64		lo;				/* state at lo is materialized; fold (lo, hi] */
	slc_hash   *hash;			/* hash of the state at lo, updated in place */
	SlRangeDelta *ranges;		/* the same per bucket, from the rotation's base */
	slc_state  *seen;			/* (ns, key) already folded in this pass */
	int64		versions;		/* version rows written (for the caller's stats) */
	MemoryContext group_cxt;	/* copies of the group's keys and values */
	int			ngroup;
	int64		group_bytes;
	FoldKey		group[FOLD_GROUP_KEYS];
} FoldCtx;

/* A bytea copy of raw bytes. */
static bytea *
make_bytea(const uint8 *data, size_t len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	if (len > 0)
		memcpy(VARDATA(b), data, len);
	return b;
}

/* Little-endian u64, the byte order of synclog.kv.item_hash. */
static void
put_u64le(uint8 *p, uint64 v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8) (v >> (8 * i));
}

/* Take a stored item of a bucket out of the running hash and its range hash. */
static void
remove_stored_item(FoldCtx *fc, bytea *item, int bucket)
{
	uint64		lo,
				hi,
				bytes;

	sl_item_hash_parse(item, fc->doc_id, &lo, &hi, &bytes);
	slc_hash_remove_item(fc->hash, lo, hi, bytes);
	sl_range_delta_remove(fc->ranges, bucket, lo, hi, bytes);
}

/* The newest version of one key at or below an LSN. */
static const char *const kv_at_sql =
"SELECT lsn, kind, item_hash FROM synclog.kv "
"WHERE doc_id = $1 AND ns = $2 AND key = $3 AND lsn <= $4 "
"ORDER BY lsn DESC LIMIT 1";

/*
 * A version written by an earlier pass of this rotation (above its base)
 * and superseded now: drop it, and for a deletion look below the
 * rotation's base to learn whether the key still needs a tombstone.
 * Rare (only keys written both before and during the last pass), so one
 * key at a time.
 */
static bool
drop_superseded(FoldCtx *fc, const FoldKey *k, int64 old_lsn)
{
	static SPIPlanPtr plan_at;
	static SPIPlanPtr plan_delete;
	Oid			types[4] = {INT8OID, INT2OID, BYTEAOID, INT8OID};
	Datum		args[4] = {Int64GetDatum(fc->doc_id), Int16GetDatum(k->ns),
						   PointerGetDatum(k->key), Int64GetDatum(old_lsn)};
	bool		older_present = false;
	bool		isnull;

	sl_exec(&plan_delete,
			"DELETE FROM synclog.kv "
			"WHERE doc_id = $1 AND ns = $2 AND key = $3 AND lsn = $4",
			4, types, args, NULL, false, 0);
	if (k->val == NULL)
	{
		args[3] = Int64GetDatum(fc->rot_base);
		sl_exec(&plan_at, kv_at_sql, 4, types, args, NULL, false, 1);
		if (SPI_processed > 0)
			older_present = DatumGetChar(sl_col(0, 2, &isnull)) != 'd';
		SPI_freetuptable(SPI_tuptable);
	}
	return older_present;
}

/*
 * Make the newest writes of a group of keys (val NULL = deleted) part of
 * the state, and move the hash from each key's value at lo to its new
 * value.  The old values are never read: their item hashes are stored with
 * their versions.  The keys of a group are distinct (each is the first
 * sighting of its key in the pass), so their lookups and inserts do not
 * depend on each other.
 */
static void
fold_group(FoldCtx *fc)
{
	static SPIPlanPtr plan_at;
	static SPIPlanPtr plan_insert;
	int			n = fc->ngroup;
	Datum	   *ns;
	Datum	   *keys;
	int64	   *old_lsn;
	bool	   *keep;
	int			nkeep = 0;
	MemoryContext old = MemoryContextSwitchTo(fc->group_cxt);

	if (n == 0)
	{
		MemoryContextSwitchTo(old);
		return;
	}
	ns = palloc(sizeof(Datum) * n);
	keys = palloc(sizeof(Datum) * n);
	old_lsn = palloc(sizeof(int64) * n);
	keep = palloc(sizeof(bool) * n);
	for (int i = 0; i < n; i++)
	{
		ns[i] = Int16GetDatum(fc->group[i].ns);
		keys[i] = PointerGetDatum(fc->group[i].key);
		old_lsn[i] = -1;
		/* A deletion of a key that no retained state holds needs no row. */
		keep[i] = fc->group[i].val != NULL;
	}

	/*
	 * The keys' versions at lo.  LIMIT keeps the LATERAL subquery from
	 * being flattened into a join, so whatever the statistics say this is
	 * one probe of kv_key_idx per key, never a scan of the document.
	 */
	{
		Oid			types[4] = {INT8OID, INT2ARRAYOID, BYTEAARRAYOID, INT8OID};
		Datum		args[4];

		args[0] = Int64GetDatum(fc->doc_id);
		args[1] = PointerGetDatum(construct_array(ns, n, INT2OID, 2, true, TYPALIGN_SHORT));
		args[2] = PointerGetDatum(construct_array(keys, n, BYTEAOID, -1, false, TYPALIGN_INT));
		args[3] = Int64GetDatum(fc->lo);
		sl_exec(&plan_at,
				"SELECT u.i, o.lsn, o.kind, o.item_hash "
				"FROM unnest($2, $3) WITH ORDINALITY AS u(ns, key, i), LATERAL ("
				"  SELECT w.lsn, w.kind, w.item_hash FROM synclog.kv w "
				"  WHERE w.doc_id = $1 AND w.ns = u.ns AND w.key = u.key AND w.lsn <= $4 "
				"  ORDER BY w.lsn DESC LIMIT 1) o",
				4, types, args, NULL, false, 0);
		MemoryContextSwitchTo(fc->group_cxt);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			int			i = (int) sl_col_int64(r, 1) - 1;
			bool		present = DatumGetChar(sl_col(r, 3, &isnull)) != 'd';

			if (present)
				remove_stored_item(fc, DatumGetByteaPP(sl_col(r, 4, &isnull)),
								   fc->group[i].bucket);
			old_lsn[i] = sl_col_int64(r, 2);
			if (old_lsn[i] <= fc->rot_base && present)
				keep[i] = true;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	for (int i = 0; i < n; i++)
		if (old_lsn[i] > fc->rot_base && drop_superseded(fc, &fc->group[i], old_lsn[i]))
			keep[i] = true;

	/* One INSERT for the group's new versions. */
	{
		Oid			types[7] = {INT8OID, INT2ARRAYOID, BYTEAARRAYOID, INT8ARRAYOID,
								CHARARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID};
		Datum		args[7];
		Datum	   *lsns = palloc(sizeof(Datum) * n);
		Datum	   *kinds = palloc(sizeof(Datum) * n);
		Datum	   *vals = palloc(sizeof(Datum) * n);
		Datum	   *items = palloc(sizeof(Datum) * n);
		bool	   *nulls = palloc(sizeof(bool) * n);
		int			dims[1];
		int			lbs[1] = {1};

		MemoryContextSwitchTo(fc->group_cxt);
		for (int i = 0; i < n; i++)
		{
			FoldKey    *k = &fc->group[i];

			if (!keep[i])
				continue;
			ns[nkeep] = Int16GetDatum(k->ns);
			keys[nkeep] = PointerGetDatum(k->key);
			lsns[nkeep] = Int64GetDatum(k->lsn);
			kinds[nkeep] = CharGetDatum(k->val != NULL ? 'v' : 'd');
			nulls[nkeep] = k->val == NULL;
			vals[nkeep] = PointerGetDatum(k->val);
			items[nkeep] = (Datum) 0;
			if (k->val != NULL)
			{
				uint32		klen = VARSIZE_ANY_EXHDR(k->key);
				uint32		vlen = VARSIZE_ANY_EXHDR(k->val);
				uint64		lo,
							hi;
				bytea	   *item = palloc(VARHDRSZ + SL_ITEM_HASH_LEN);
				uint8	   *p = (uint8 *) VARDATA(item);

				slc_item_hash((uint8) k->ns, (const uint8 *) VARDATA_ANY(k->key), klen,
							  (const uint8 *) VARDATA_ANY(k->val), vlen, &lo, &hi);
				slc_hash_add_item(fc->hash, lo, hi, (uint64) klen + vlen);
				sl_range_delta_add(fc->ranges, k->bucket, lo, hi, (uint64) klen + vlen);
				SET_VARSIZE(item, VARHDRSZ + SL_ITEM_HASH_LEN);
				put_u64le(p, lo);
				put_u64le(p + 8, hi);
				put_u64le(p + 16, (uint64) klen + vlen);
				items[nkeep] = PointerGetDatum(item);
			}
			nkeep++;
		}
		if (nkeep > 0)
		{
			dims[0] = nkeep;
			args[0] = Int64GetDatum(fc->doc_id);
			args[1] = PointerGetDatum(construct_array(ns, nkeep, INT2OID, 2, true, TYPALIGN_SHORT));
			args[2] = PointerGetDatum(construct_array(keys, nkeep, BYTEAOID, -1, false, TYPALIGN_INT));
			args[3] = PointerGetDatum(construct_array(lsns, nkeep, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			args[4] = PointerGetDatum(construct_array(kinds, nkeep, CHAROID, 1, true, TYPALIGN_CHAR));
			args[5] = PointerGetDatum(construct_md_array(vals, nulls, 1, dims, lbs, BYTEAOID, -1, false, TYPALIGN_INT));
			args[6] = PointerGetDatum(construct_md_array(items, nulls, 1, dims, lbs, BYTEAOID, -1, false, TYPALIGN_INT));
			sl_exec(&plan_insert,
					"INSERT INTO synclog.kv (doc_id, ns, key, lsn, kind, value, item_hash) "
					"SELECT $1, u.ns, u.key, u.lsn, u.kind, u.value, u.item_hash "
					"FROM unnest($2, $3, $4, $5, $6, $7) AS u(ns, key, lsn, kind, value, item_hash)",
					7, types, args, NULL, false, 0);
			fc->versions += (int64) SPI_processed;
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(fc->group_cxt);
	fc->ngroup = 0;
	fc->group_bytes = 0;
}

/* Queue the newest write of one key (val NULL = deleted) for its group. */
static void
fold_item(FoldCtx *fc, int16 ns, const uint8 *key, uint32 klen,
		  const uint8 *val, uint32 vlen, int64 lsn)
{
	FoldKey    *k = &fc->group[fc->ngroup];
	MemoryContext old = MemoryContextSwitchTo(fc->group_cxt);

	k->ns = ns;
	k->key = make_bytea(key, klen);
	k->val = val != NULL ? make_bytea(val, vlen) : NULL;
	k->lsn = lsn;
	k->bucket = sl_bucket_of(ns, key, klen);
	MemoryContextSwitchTo(old);
	fc->group_bytes += klen + vlen;
	if (++fc->ngroup == FOLD_GROUP_KEYS || fc->group_bytes >= FOLD_GROUP_BYTES)
		fold_group(fc);
}

/* A change of an entry being folded: only a key's newest write counts. */
typedef struct FoldEntry
{
	FoldCtx    *fc;
	int64		lsn;
} FoldEntry;

/* sl_change_fn of the fold: queue the change if its key is new to the pass. */
static void
fold_change(void *arg, const uint8 *key, uint32 klen, const uint8 *val,
			uint32 vlen)
{
	FoldEntry  *fe = (FoldEntry *) arg;

	if (sl_keyset_add(fe->fc->seen, SLC_NS_DATA, key, klen))
		fold_item(fe->fc, SLC_NS_DATA, key, klen, val, vlen, fe->lsn);
}

/*
 * sl_entry_fn of the fold: the entry's client watermark and its changes,
 * each only if this pass has not seen the key yet (entries come newest
 * first).  A retire entry (client_seq SLC_RETIRE_SEQ, PROTOCOL.md section
 * 4) folds as a deletion of the watermark: a 'd' version in synclog.kv.
 */
static void
fold_entry(void *arg, int64 lsn, bytea *delta, text *client_id,
		   int64 client_seq)
{
	FoldCtx    *fc = (FoldCtx *) arg;
	FoldEntry	fe = {fc, lsn};

	if (client_id != NULL &&
		sl_keyset_add(fc->seen, SLC_NS_CLIENT, (const uint8 *) VARDATA_ANY(client_id),
					  VARSIZE_ANY_EXHDR(client_id)))
	{
		uint8		wm[SLC_WATERMARK_LEN];

		slc_watermark_encode(client_seq, lsn, wm);
		fold_item(fc, SLC_NS_CLIENT, (const uint8 *) VARDATA_ANY(client_id),
				  VARSIZE_ANY_EXHDR(client_id),
				  client_seq == SLC_RETIRE_SEQ ? NULL : wm, SLC_WATERMARK_LEN, lsn);
	}
	sl_foreach_change(fc->doc_id, lsn, delta, fold_change, &fe);
}

/*
 * Fold entries (lo, hi] onto the state at lo, newest first.  On return the
 * state at hi is materialized and fc->hash is its hash.
 */
static void
fold_range(FoldCtx *fc, int64 hi)
{
	MemoryContext fold_cxt;

	if (hi <= fc->lo)
		return;
	fold_cxt = AllocSetContextCreate(CurrentMemoryContext, "synclog fold",
									 ALLOCSET_SMALL_SIZES);
	fc->seen = sl_keyset_new(fold_cxt);
	fc->group_cxt = AllocSetContextCreate(fold_cxt, "synclog fold group",
										  ALLOCSET_DEFAULT_SIZES);
	sl_foreach_entry(fc->doc_id, fc->lo, hi, true, fold_entry, fc);
	fold_group(fc);
	MemoryContextDelete(fold_cxt);
	fc->group_cxt = NULL;
	fc->seen = NULL;
	fc->lo = hi;
}

/*
 * Lock the active and previous log rows of the document, in generation
 * order (the order every other locker of log rows uses).  Returns false if
 * the chain changed since the document was read; the caller retries.  In a
 * transaction that appended to the document, a log row another rotation
 * holds is refused at once (55P03) instead of waited for: that rotation
 * waits for this transaction, so the wait would be a deadlock.
 */
static bool
lock_chain(text *doc, const SlDoc *d, int32 *generation, slc_hash *hash)
{
	static SPIPlanPtr plan;
	static SPIPlanPtr plan_held;
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(d->doc_id)};
	bool		found = false;

	if (sl_document_held(d->doc_id))
	{
		/*
		 * This transaction appended to the document, so it holds the
		 * document's row.  A concurrent rotation holding the log rows
		 * waits for that row in its last phase: waiting for its log rows
		 * here would deadlock.  Take what is free and refuse at once if
		 * anything is not (every document has an active log, so no row at
		 * all means a locked one).
		 */
		sl_exec(&plan_held,
				"SELECT log_id, state, generation, snapshot_hash, "
				"  (SELECT count(*) FROM synclog.log c "
				"    WHERE c.doc_id = $1 AND c.state IN ('active', 'previous')) "
				"FROM synclog.log WHERE doc_id = $1 AND state IN ('active', 'previous') "
				"ORDER BY generation FOR NO KEY UPDATE SKIP LOCKED",
				1, types, args, NULL, false, 0);
		if (SPI_processed == 0 ||
			(int64) SPI_processed < sl_col_int64(0, 5))
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("could not rotate document \"%s\": another rotation of it is in progress",
							sl_doc_cstring(doc)),
					 errdetail("This transaction appended to the document, and the other rotation waits for this transaction to end."),
					 errhint("Rotate in a transaction that does not append to the document.")));
	}
	else
		sl_exec(&plan,
				"SELECT log_id, state, generation, snapshot_hash FROM synclog.log "
				"WHERE doc_id = $1 AND state IN ('active', 'previous') "
				"ORDER BY generation FOR NO KEY UPDATE",
				1, types, args, NULL, false, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *state = sl_col_text(i, 2);
		char	   *log_id = sl_col_text(i, 1);
		bool		isnull;

		if (strcmp(state, SL_LOG_ACTIVE) != 0)
			continue;
		if (strcmp(log_id, d->active_log) != 0)
			return false;
		*generation = (int32) sl_col_int64(i, 3);
		sl_bytea_to_hash(DatumGetByteaPP(sl_col(i, 4, &isnull)), hash);
		found = true;
	}
	return found;
}

/*
 * Refuse to rotate onto a base state that is not there: a snapshot with
 * items, but no state version of the document in synclog.kv.  A logical
 * restore loads each table in one transaction, so a restore that has
 * loaded the logs and the entries but not yet synclog.kv looks exactly
 * like this, and folding the entries onto the missing state would seal a
 * wrong state under a right-looking hash.  (pause.c keeps the worker away
 * from a restore it recognizes; this catches the loaders it does not.)
 */
static void
require_base_state(text *doc, const SlDoc *d, const slc_hash *base)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(d->doc_id)};

	if (base->count == 0)
		return;
	sl_exec(&plan, "SELECT 1 FROM synclog.kv WHERE doc_id = $1 LIMIT 1",
			1, types, args, NULL, false, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot rotate document \"%s\": its state is not loaded",
						sl_doc_cstring(doc)),
				 errdetail("The snapshot of log \"%s\" has " UINT64_FORMAT " items, but synclog.kv holds no state of the document.",
						   d->active_log, (uint64) base->count),
				 errhint("A restore may still be loading synclog.kv: wait for it to finish, and pause synclog (synclog.pause()) during restores that pg_restore does not run.")));
}

/* The document's head LSN and its active log's bytes; false if it is gone. */
static bool
current_head(int64 doc_id, int64 *head, int64 *bytes)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(doc_id)};

	sl_exec(&plan,
			"SELECT head_lsn, active_bytes FROM synclog.doc_head WHERE doc_id = $1",
			1, types, args, NULL, false, 1);
	if (SPI_processed == 0)
		return false;
	*head = sl_col_int64(0, 1);
	*bytes = sl_col_int64(0, 2);
	return true;
}

/*
 * The switch, under the document's lock: the previous log retires, the
 * active one is sealed at seal_lsn with its end-log marker (next log, end
 * hash, the chain value of the entry at seal_lsn), the new log starts
 * there with the snapshot hash and that chain value, and the document row
 * points at it.
 */
static void
switch_logs(const SlDoc *d, int32 generation, const char *new_log,
			int64 seal_lsn, bytea *hash)
{
	static SPIPlanPtr plan_retire;
	static SPIPlanPtr plan_seal;
	static SPIPlanPtr plan_new;
	static SPIPlanPtr plan_doc;
	static SPIPlanPtr plan_stats;
	Oid			t1[1] = {INT8OID};
	Datum		v1[1] = {Int64GetDatum(d->doc_id)};
	Oid			t2[4] = {TEXTOID, INT8OID, TEXTOID, BYTEAOID};
	Datum		v2[4] = {CStringGetTextDatum(d->active_log), Int64GetDatum(seal_lsn),
						 CStringGetTextDatum(new_log), PointerGetDatum(hash)};
	Oid			t3[5] = {TEXTOID, INT8OID, INT4OID, INT8OID, BYTEAOID};
	Datum		v3[5] = {CStringGetTextDatum(new_log), Int64GetDatum(d->doc_id),
						 Int32GetDatum(generation + 1), Int64GetDatum(seal_lsn),
						 PointerGetDatum(hash)};
	Oid			t4[3] = {INT8OID, TEXTOID, INT8OID};
	Datum		v4[3] = {Int64GetDatum(d->doc_id), CStringGetTextDatum(new_log),
						 Int64GetDatum(seal_lsn)};

	sl_exec(&plan_retire,
			"UPDATE synclog.log SET state = 'retired' "
			"WHERE doc_id = $1 AND state = 'previous'",
			1, t1, v1, NULL, false, 0);
	sl_exec(&plan_seal,
			"UPDATE synclog.log SET state = 'previous', end_lsn = $2, "
			"next_log_id = $3, end_hash = $4, sealed_at = now(), "
			"end_chain = (SELECT chain FROM synclog.entry "
			"WHERE doc_id = synclog.log.doc_id AND lsn = $2) "
			"WHERE log_id = $1",
			4, t2, v2, NULL, false, 0);
	sl_exec(&plan_new,
			"INSERT INTO synclog.log (log_id, doc_id, generation, state, "
			"base_lsn, snapshot_hash, base_chain) "
			"SELECT $1, $2, $3, 'active', $4, $5, chain FROM synclog.entry "
			"WHERE doc_id = $2 AND lsn = $4",
			5, t3, v3, NULL, false, 0);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("missing entry in log \"%s\"", d->active_log),
				 errdetail("The log has no entry at LSN " INT64_FORMAT ", where it is being sealed.",
						   seal_lsn)));
	sl_exec(&plan_doc,
			"UPDATE synclog.doc SET active_log = $2, active_base = $3, "
			"active_since = now(), due = false, "
			"first_append_at = NULL WHERE doc_id = $1",
			3, t4, v4, NULL, false, 0);
	sl_exec(&plan_stats,
			"INSERT INTO synclog.doc_stats AS s (doc_id, rotations) VALUES ($1, 1) "
			"ON CONFLICT (doc_id) DO UPDATE SET rotations = s.rotations + 1",
			1, t1, v1, NULL, false, 0);
}

/*
 * Rotate one document.  Must run inside sl_spi_begin/end.  Returns false,
 * changing nothing, when the active log holds no entries; otherwise fills
 * *stats and returns true.
 */
bool
sl_compact_doc(text *doc, const char *new_log, SlRotation *stats)
{
	SlDoc		d;
	int32		generation = 0;
	slc_hash	hash;
	FoldCtx		fc;
	int64		head;
	int64		seal;
	int64		bytes;
	uint8		serialized[SLC_HASH_LEN];
	bytea	   *hash_b;
	TimestampTz start = GetCurrentTimestamp();
	int			attempt = 0;

	for (;;)
	{
		sl_find_doc(doc, &d, false);
		SL_TEST_PAUSE("rotation_between_reads");
		if (lock_chain(doc, &d, &generation, &hash))
			break;
		/* A concurrent rotation committed between our reads: look again. */
		if (++attempt >= 3)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update"),
					 errdetail("Other rotations of document \"%s\" committed %d times while this one was being prepared.",
							   sl_doc_cstring(doc), attempt)));
	}

	require_base_state(doc, &d, &hash);

	memset(&fc, 0, sizeof(fc));
	fc.doc_id = d.doc_id;
	fc.rot_base = d.active_base;
	fc.lo = d.active_base;
	fc.hash = &hash;
	fc.ranges = sl_range_delta_new();

	/* Phase 1: without the document lock, appends keep flowing. */
	for (int pass = 0; pass < CATCHUP_PASSES; pass++)
	{
		if (!current_head(d.doc_id, &head, &bytes) || head - fc.lo <= CATCHUP_TAIL)
			break;
		fold_range(&fc, head);
	}

	/*
	 * Phase 2: the document lock orders us after every append up to seal,
	 * and every append after the seal waits for us; the head read after
	 * the wait (a new statement, so a new snapshot) sees them all.
	 */
	if (!sl_lock_document(d.doc_id) || !current_head(d.doc_id, &seal, &bytes))
		sl_unknown_doc(doc);
	if (IsolationUsesXactSnapshot())
	{
		/*
		 * A transaction snapshot may miss appends that committed while we
		 * waited; sealing below them would start the new log among its own
		 * entries.  Fail as an UPDATE of a changed row would.
		 */
		int64		latest,
					latest_bytes;

		sl_last_entry(d.doc_id, GetLatestSnapshot(), &latest, &latest_bytes);
		if (latest > seal)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update")));
	}
	if (seal == d.active_base)
		return false;
	stats->tail_entries = seal - fc.lo;
	fold_range(&fc, seal);

#ifdef SYNCLOG_TEST_HOOKS
	/* Test hook: hold the rotation here so a crash test can kill it. */
	for (int waited = 0; waited < synclog_debug_rotation_delay_ms; waited += 10)
	{
		CHECK_FOR_INTERRUPTS();
		if (!PostmasterIsAlive())
			proc_exit(1);
		pg_usleep(10000L);
	}
#endif

	/* The range hashes of the new log's base (range.c). */
	sl_range_delta_store(fc.ranges, d.doc_id, d.active_base, seal);

	slc_hash_serialize(&hash, serialized);
	hash_b = palloc(VARHDRSZ + SLC_HASH_LEN);
	SET_VARSIZE(hash_b, VARHDRSZ + SLC_HASH_LEN);
	memcpy(VARDATA(hash_b), serialized, SLC_HASH_LEN);
	switch_logs(&d, generation, new_log, seal, hash_b);
	sl_notify(VARDATA_ANY(doc), VARSIZE_ANY_EXHDR(doc), SL_EVENT_ROTATE);

	strlcpy(stats->old_log, d.active_log, sizeof(stats->old_log));
	stats->log_bytes = bytes;
	stats->base_lsn = d.active_base;
	stats->seal_lsn = seal;
	stats->versions = fc.versions;
	stats->state_items = hash.count;
	stats->state_bytes = hash.bytes;
	stats->elapsed_ms = (double) (GetCurrentTimestamp() - start) / 1000.0;
	return true;
}

/*
 * synclog.compact(doc text) returns text
 *
 * Rotates the document: folds its active log into the versioned state,
 * seals the log with an end-log marker and starts a new log whose snapshot
 * is the state at the seal.  Returns the new log's id, or NULL, changing
 * nothing, when the active log holds no entries.
 *
 * Takes AccessShareLock on synclog.entry; RowShareLock and then
 * RowExclusiveLock on synclog.log and synclog.doc; RowExclusiveLock on
 * synclog.kv and synclog.doc_stats; and AccessShareLock on
 * synclog.doc_grant when the caller is a role whose confinement this
 * backend has not cached yet.  Row locks, all held until the transaction
 * ends: FOR NO KEY UPDATE on the document's active and previous log rows
 * (in generation order) from the start; FOR NO KEY UPDATE on the
 * document's row only for the last phase (the short tail of the fold and
 * the switch), which makes appends to the document wait from then on; and
 * the rows it updates or deletes (those log rows, the document's row, its
 * counters, the state versions a later write superseded).  At commit, the
 * rotation's NOTIFY takes the lock that orders notifying commits.
 */
Datum
synclog_compact(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	char	   *new_log = sl_new_log_id();
	SlRotation	stats;
	bool		rotated;

	sl_spi_begin();
	sl_require_doc(doc, true);
	sl_require_not_paused("rotate a document");
	rotated = sl_compact_doc(doc, new_log, &stats);
	sl_spi_end();
	if (!rotated)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(new_log));
}
