/*
 * catch_up.c
 *
 * Catching up (PROTOCOL.md section 6a): what a client several entries or
 * several rotations behind needs to reach the head, one item per key that
 * changed rather than one entry per change; the head it ends at, with the
 * hash of the state there; and what each way of catching up costs.
 *
 * Owns: synclog.catch_up, synclog.catch_up_target, synclog.sync_cost.
 * Must never: hold a log, a state or a page of candidates in memory (the
 * candidates go through a tuplesort, which spills to disk past work_mem,
 * and values are resolved a batch at a time); return fewer items than
 * changed between the position and the target (a superset is allowed);
 * read more of the state than the candidates' versions; or
 * mix moments: every lookup runs in the caller's snapshot.
 *
 * Which items can differ between a position p (in log P) and a target t
 * (in log T, at or after P):
 *  - T = P: the keys and client ids of the entries in (p, t];
 *  - otherwise: those of P's entries after p, (p, P.end]; those of the
 *    entries of the sealed logs in between, (P.end, T.base], which their
 *    rotations folded into the state at T's base; and those of T's entries
 *    in (T.base, t].
 * The entries of the logs in between are retained while P is: gc collects
 * logs oldest first (gc.c).  A key only the logs in between wrote that is
 * absent both at P's end and at T's base was written and deleted in
 * between: unchanged for the client, so left out (one more probe of the
 * state for such keys), which keeps the deletions returned to keys the
 * state at P's end held.  Crossing logs thus reads their entries, as a
 * replay would, but moves one item per key; rotations write nothing for
 * it (an index of the state versions by LSN made their WAL a third
 * larger).
 *
 * The value of a candidate at the target: its last write in (T.base, t]
 * if T's entries wrote it, else the state at T's base (NULL if absent).
 */
#include "postgres.h"

#include "access/tupdesc.h"
#include "catalog/pg_operator_d.h"
#include "catalog/pg_type_d.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/tuplesort.h"
#include "utils/typcache.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_catch_up);
PG_FUNCTION_INFO_V1(synclog_catch_up_target);
PG_FUNCTION_INFO_V1(synclog_sync_cost);

/* Keys resolved against the state per statement. */
#define LOOKUP_BATCH	256

/*
 * Candidate items, sorted by (ns || key, lsn DESC).  lsn 0 marks a key
 * whose value at the target is the state's at T's base; lsn -1 the same
 * for a key only the sealed logs between P and T wrote, which is left out
 * when it is absent both at T's base and at P's end (written and deleted
 * in between: unchanged for the client); otherwise the payload is the
 * key's value written at lsn (NULL: deleted), or in hash mode its item
 * hash (synclog.kv.item_hash form).
 */
#define LSN_LOOKUP		0
#define LSN_CROSSED		(-1)

typedef struct Cands
{
	int64		doc_id;
	bool		hash_mode;		/* payload: item hash instead of value */
	bool		keys_only;		/* entries put now: lsn keys_lsn, no payload */
	int64		keys_lsn;		/* LSN_LOOKUP or LSN_CROSSED */
	int64		p_end;			/* P's end, for LSN_CROSSED candidates */
	bytea	   *after;			/* only ns || key above this, if set */
	const bool *buckets;		/* only keys of these buckets, if set */
	TupleDesc	desc;
	Tuplesortstate *sort;
	TupleTableSlot *in;
	TupleTableSlot *out;
} Cands;

static void
cands_begin(Cands *c, int64 doc_id, bool hash_mode, bytea *after)
{
	AttrNumber	cols[2] = {1, 2};
	Oid			ops[2];
	Oid			colls[2] = {InvalidOid, InvalidOid};
	bool		nulls_first[2] = {false, false};

	memset(c, 0, sizeof(*c));
	c->doc_id = doc_id;
	c->hash_mode = hash_mode;
	c->after = after;
	c->desc = CreateTemplateTupleDesc(3);
	TupleDescInitEntry(c->desc, 1, "nskey", BYTEAOID, -1, 0);
	TupleDescInitEntry(c->desc, 2, "lsn", INT8OID, -1, 0);
	TupleDescInitEntry(c->desc, 3, "payload", BYTEAOID, -1, 0);
	ops[0] = ByteaLessOperator;
	ops[1] = lookup_type_cache(INT8OID, TYPECACHE_GT_OPR)->gt_opr;
	c->sort = tuplesort_begin_heap(c->desc, 2, cols, ops, colls, nulls_first,
								   work_mem, NULL, TUPLESORT_NONE);
	c->in = MakeSingleTupleTableSlot(c->desc, &TTSOpsVirtual);
	c->out = MakeSingleTupleTableSlot(c->desc, &TTSOpsMinimalTuple);
}

static void
cands_end(Cands *c)
{
	ExecDropSingleTupleTableSlot(c->in);
	ExecDropSingleTupleTableSlot(c->out);
	tuplesort_end(c->sort);
}

/* ns || key as one bytea: its byte order is the (ns, key) order. */
static bytea *
nskey_make(uint8 ns, const uint8 *key, size_t klen)
{
	bytea	   *b = palloc(VARHDRSZ + 1 + klen);

	SET_VARSIZE(b, VARHDRSZ + 1 + klen);
	((uint8 *) VARDATA(b))[0] = ns;
	if (klen > 0)
		memcpy(VARDATA(b) + 1, key, klen);
	return b;
}

/* memcmp order with the shorter first on a tie: bytea's order. */
int
sl_bytes_cmp(const uint8 *a, size_t alen, const uint8 *b, size_t blen)
{
	int			r = memcmp(a, b, Min(alen, blen));

	if (r != 0)
		return r;
	return (alen > blen) - (alen < blen);
}

/*
 * Put one candidate.  val NULL with has_val false: deleted (or, with lsn
 * 0, to be looked up).
 */
static void
cand_put(Cands *c, uint8 ns, const uint8 *key, size_t klen, int64 lsn,
		 const uint8 *val, size_t vlen)
{
	bytea	   *nskey;
	bytea	   *payload = NULL;

	if (c->buckets != NULL && !c->buckets[slc_bucket(ns, key, klen)])
		return;
	nskey = nskey_make(ns, key, klen);
	if (c->after != NULL &&
		sl_bytes_cmp((const uint8 *) VARDATA(nskey), 1 + klen,
				  (const uint8 *) VARDATA_ANY(c->after),
				  VARSIZE_ANY_EXHDR(c->after)) <= 0)
		return;
	if (lsn != 0 && val != NULL)
	{
		if (c->hash_mode)
		{
			uint64		lo,
						hi,
						bytes = (uint64) klen + vlen;
			uint8	   *p;

			payload = palloc(VARHDRSZ + SL_ITEM_HASH_LEN);
			SET_VARSIZE(payload, VARHDRSZ + SL_ITEM_HASH_LEN);
			p = (uint8 *) VARDATA(payload);
			slc_item_hash(ns, key, klen, val, vlen, &lo, &hi);
			for (int i = 0; i < 8; i++)
			{
				p[i] = (uint8) (lo >> (8 * i));
				p[8 + i] = (uint8) (hi >> (8 * i));
				p[16 + i] = (uint8) (bytes >> (8 * i));
			}
		}
		else
		{
			payload = palloc(VARHDRSZ + vlen);
			SET_VARSIZE(payload, VARHDRSZ + vlen);
			if (vlen > 0)
				memcpy(VARDATA(payload), val, vlen);
		}
	}
	ExecClearTuple(c->in);
	c->in->tts_values[0] = PointerGetDatum(nskey);
	c->in->tts_isnull[0] = false;
	c->in->tts_values[1] = Int64GetDatum(lsn);
	c->in->tts_isnull[1] = false;
	c->in->tts_values[2] = PointerGetDatum(payload);
	c->in->tts_isnull[2] = payload == NULL;
	ExecStoreVirtualTuple(c->in);
	tuplesort_puttupleslot(c->sort, c->in);
}

/* sl_change_fn: a data key an entry changed. */
static void
cand_change(void *arg, const uint8 *key, uint32 klen, const uint8 *val,
			uint32 vlen)
{
	void	  **a = (void **) arg;
	Cands	   *c = (Cands *) a[0];
	int64		lsn = *(int64 *) a[1];

	cand_put(c, SLC_NS_DATA, key, klen, c->keys_only ? c->keys_lsn : lsn,
			 c->keys_only ? NULL : val, vlen);
}

/*
 * sl_entry_fn: an entry's client watermark (a retire entry deletes it,
 * PROTOCOL.md section 4) and its changes.
 */
static void
cand_entry(void *arg, int64 lsn, bytea *delta, text *client_id,
		   int64 client_seq)
{
	Cands	   *c = (Cands *) arg;
	void	   *a[2] = {c, &lsn};

	if (client_id != NULL)
	{
		uint8		wm[SLC_WATERMARK_LEN];

		slc_watermark_encode(client_seq, lsn, wm);
		cand_put(c, SLC_NS_CLIENT, (const uint8 *) VARDATA_ANY(client_id),
				 VARSIZE_ANY_EXHDR(client_id), c->keys_only ? c->keys_lsn : lsn,
				 (c->keys_only || client_seq == SLC_RETIRE_SEQ) ? NULL : wm,
				 SLC_WATERMARK_LEN);
	}
	sl_foreach_change(c->doc_id, lsn, delta, cand_change, a);
}

/* The items the entries (lo, hi] wrote; with their values unless keys_only. */
static void
cands_from_entries(Cands *c, int64 lo, int64 hi, bool keys_only)
{
	c->keys_only = keys_only;
	c->keys_lsn = LSN_LOOKUP;
	sl_foreach_entry_ro(c->doc_id, lo, hi, cand_entry, c);
}

/*
 * The keys the entries of the sealed logs between P and T wrote, (p_end,
 * t_base]: what the rotations of those logs folded, so every key whose
 * value differs between P's end and T's base is among them.  Keys only,
 * as LSN_CROSSED candidates.  This reads those logs' entries (what a
 * replay of them would read) but writes nothing at rotation: an index of
 * the state versions by LSN made every rotation's WAL a third larger
 * (BENCHMARKS.md, issue 11).
 */
static void
cands_from_crossed(Cands *c, int64 p_end, int64 t_base)
{
	c->keys_only = true;
	c->keys_lsn = LSN_CROSSED;
	c->p_end = p_end;
	if (t_base > p_end)
		sl_foreach_entry_ro(c->doc_id, p_end, t_base, cand_entry, c);
}

/*
 * The distinct candidates in order, resolved a batch at a time: each
 * key's newest candidate decides it; lsn 0 ones are looked up in the
 * state at base (value, or in hash mode the stored item hash).
 */
typedef struct Resolved
{
	int			n;
	int16		ns[LOOKUP_BATCH];
	bytea	   *key[LOOKUP_BATCH];
	bool		lookup[LOOKUP_BATCH];	/* value from the state at base */
	bool		crossed[LOOKUP_BATCH];	/* an LSN_CROSSED candidate */
	bool		skip[LOOKUP_BATCH];	/* unchanged for the client: leave out */
	Datum		payload[LOOKUP_BATCH];	/* written value / item hash */
	bool		isnull[LOOKUP_BATCH];	/* deleted (or absent at base) */
	/* for a lookup: the base version's payload, valid until the next batch */
	Datum		base[LOOKUP_BATCH];
	bool		base_null[LOOKUP_BATCH];
	bool		base_found[LOOKUP_BATCH];
} Resolved;

typedef void (*resolved_fn) (void *arg, Resolved *r);

/*
 * Look the batch's lsn 0 keys up in the state at base: the newest version
 * at or below base per key, one probe of kv_key_idx each.  The rows stay
 * in SPI_tuptable until the caller frees it.
 */
/*
 * The arguments of a probe of the state at lsn for the batch's keys with
 * want[i]: (doc_id, ns[], key[], lsn); idx maps the probe's ordinality
 * back to the batch.  Returns how many keys; 0 leaves args unset.
 */
static int
probe_args(int64 doc_id, int64 lsn, const Resolved *r, const bool *want,
		   Datum *args, int *idx)
{
	Datum		ns[LOOKUP_BATCH];
	Datum		keys[LOOKUP_BATCH];
	int			m = 0;

	for (int i = 0; i < r->n; i++)
		if (want[i])
		{
			ns[m] = Int16GetDatum(r->ns[i]);
			keys[m] = PointerGetDatum(r->key[i]);
			idx[m++] = i;
		}
	if (m == 0)
		return 0;
	args[0] = Int64GetDatum(doc_id);
	args[1] = PointerGetDatum(construct_array(ns, m, INT2OID, 2, true, TYPALIGN_SHORT));
	args[2] = PointerGetDatum(construct_array(keys, m, BYTEAOID, -1, false, TYPALIGN_INT));
	args[3] = Int64GetDatum(lsn);
	return m;
}

static void
lookup_batch(int64 doc_id, int64 base, bool hash_mode, Resolved *r)
{
	static SPIPlanPtr plan_value;
	static SPIPlanPtr plan_hash;
	Oid			types[4] = {INT8OID, INT2ARRAYOID, BYTEAARRAYOID, INT8OID};
	Datum		args[4];
	int			idx[LOOKUP_BATCH];

	for (int i = 0; i < r->n; i++)
	{
		r->base_found[i] = false;
		r->base_null[i] = true;
	}
	SPI_tuptable = NULL;
	if (probe_args(doc_id, base, r, r->lookup, args, idx) == 0)
		return;
	if (hash_mode)
		sl_exec(&plan_hash,
				"SELECT u.i, o.kind, o.item_hash "
				"FROM unnest($2, $3) WITH ORDINALITY AS u(ns, key, i), LATERAL ("
				"  SELECT w.kind, w.item_hash FROM synclog.kv w "
				"  WHERE w.doc_id = $1 AND w.ns = u.ns AND w.key = u.key AND w.lsn <= $4 "
				"  ORDER BY w.lsn DESC LIMIT 1) o",
				4, types, args, NULL, true, 0);
	else
		sl_exec(&plan_value,
				"SELECT u.i, o.kind, o.value "
				"FROM unnest($2, $3) WITH ORDINALITY AS u(ns, key, i), LATERAL ("
				"  SELECT w.kind, w.value FROM synclog.kv w "
				"  WHERE w.doc_id = $1 AND w.ns = u.ns AND w.key = u.key AND w.lsn <= $4 "
				"  ORDER BY w.lsn DESC LIMIT 1) o",
				4, types, args, NULL, true, 0);
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		bool		isnull;
		int			i = idx[sl_col_int64(row, 1) - 1];

		r->base_found[i] = true;
		if (DatumGetChar(sl_col(row, 2, &isnull)) == 'v')
			r->base[i] = sl_col(row, 3, &r->base_null[i]);
	}
}

/*
 * Of the batch's LSN_CROSSED candidates absent at T's base, mark those
 * absent at P's end too: written and deleted between the two, so
 * unchanged for a client at P (skip).  One probe of kv_key_idx each; the
 * lookup's rows stay in SPI_tuptable.
 */
static void
mark_unchanged(Cands *c, Resolved *r)
{
	static SPIPlanPtr plan;
	Oid			types[4] = {INT8OID, INT2ARRAYOID, BYTEAARRAYOID, INT8OID};
	Datum		args[4];
	int			idx[LOOKUP_BATCH];
	SPITupleTable *kept = SPI_tuptable;

	/* skip: absent at T's base; unmarked below if present at P's end */
	for (int i = 0; i < r->n; i++)
		r->skip[i] = r->crossed[i] && (!r->base_found[i] || r->base_null[i]);
	if (probe_args(c->doc_id, c->p_end, r, r->skip, args, idx) == 0)
		return;
	sl_exec(&plan,
			"SELECT u.i FROM unnest($2, $3) WITH ORDINALITY AS u(ns, key, i), LATERAL ("
			"  SELECT w.kind FROM synclog.kv w "
			"  WHERE w.doc_id = $1 AND w.ns = u.ns AND w.key = u.key AND w.lsn <= $4 "
			"  ORDER BY w.lsn DESC LIMIT 1) o WHERE o.kind = 'v'",
			4, types, args, NULL, true, 0);
	for (uint64 row = 0; row < SPI_processed; row++)
		r->skip[idx[sl_col_int64(row, 1) - 1]] = false;
	SPI_freetuptable(SPI_tuptable);
	SPI_tuptable = kept;
}

/*
 * Read the sorted candidates, resolved a batch at a time, until max_keys
 * of them are kept (0: all; a skipped one does not count), calling fn per
 * batch after the lookups; returns how many were kept.
 */
static int64
cands_resolve(Cands *c, int64 base, int64 max_keys, resolved_fn fn, void *arg)
{
	Resolved   *r = palloc0(sizeof(Resolved));
	MemoryContext batch_cxt = AllocSetContextCreate(CurrentMemoryContext,
													"synclog catch-up batch",
													ALLOCSET_DEFAULT_SIZES);
	uint8	   *prev = palloc(1 + SLC_KEY_MAX);
	size_t		prev_len = 0;
	bool		have_prev = false;
	int64		count = 0;

	tuplesort_performsort(c->sort);
	for (;;)
	{
		/* a batch never holds more than the keys still wanted */
		bool		more = (max_keys == 0 || count + r->n < max_keys) &&
			tuplesort_gettupleslot(c->sort, true, true, c->out, NULL);

		if (more)
		{
			bool		isnull;
			bytea	   *nskey = DatumGetByteaPP(slot_getattr(c->out, 1, &isnull));
			const uint8 *p = (const uint8 *) VARDATA_ANY(nskey);
			size_t		len = VARSIZE_ANY_EXHDR(nskey);
			int64		lsn = DatumGetInt64(slot_getattr(c->out, 2, &isnull));
			Datum		payload = slot_getattr(c->out, 3, &isnull);
			MemoryContext old;

			CHECK_FOR_INTERRUPTS();
			if (have_prev && sl_bytes_cmp(p, len, prev, prev_len) == 0)
				continue;
			memcpy(prev, p, len);
			prev_len = len;
			have_prev = true;
			old = MemoryContextSwitchTo(batch_cxt);
			r->ns[r->n] = p[0];
			r->key[r->n] = palloc(VARHDRSZ + len - 1);
			SET_VARSIZE(r->key[r->n], VARHDRSZ + len - 1);
			memcpy(VARDATA(r->key[r->n]), p + 1, len - 1);
			r->lookup[r->n] = lsn <= LSN_LOOKUP;
			r->crossed[r->n] = lsn == LSN_CROSSED;
			r->isnull[r->n] = isnull;
			r->payload[r->n] = isnull ? (Datum) 0 :
				PointerGetDatum(DatumGetByteaPCopy(payload));
			MemoryContextSwitchTo(old);
			r->n++;
		}
		if (r->n > 0 && (r->n == LOOKUP_BATCH || !more ||
						 (max_keys != 0 && count + r->n == max_keys)))
		{
			lookup_batch(c->doc_id, base, c->hash_mode, r);
			mark_unchanged(c, r);
			for (int i = 0; i < r->n; i++)
				count += !r->skip[i];
			fn(arg, r);
			if (SPI_tuptable != NULL)
				SPI_freetuptable(SPI_tuptable);
			r->n = 0;
			MemoryContextReset(batch_cxt);
			continue;
		}
		if (!more)
			break;
	}
	MemoryContextDelete(batch_cxt);
	return count;
}

/* ------------------------------------------------------------------------
 * Arguments and positions
 * ------------------------------------------------------------------------
 */

/* A client position: a log of the document, an LSN in it, its chain value. */
typedef struct Position
{
	bool		given;			/* false: the empty state */
	SlLog		log;
	int64		lsn;
	int64		end;			/* the log's end, or the head while active */
} Position;

/*
 * The position arguments (log_id, lsn, chain at argno..argno+2): all
 * NULL for the empty state, else checked like synclog.read2: SL002 for a
 * log that is not the document's, SL003 for a collected one, 22023/SL004
 * for an LSN outside it, SL006 for a chain value that differs.
 */
static void
arg_position(FunctionCallInfo fcinfo, int argno, text *doc, const SlDoc *d,
			 Position *pos)
{
	int			nnull = PG_ARGISNULL(argno) + PG_ARGISNULL(argno + 1) +
		PG_ARGISNULL(argno + 2);

	memset(pos, 0, sizeof(*pos));
	if (nnull == 3)
		return;
	if (nnull != 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("log_id, lsn and chain must be given together"),
				 errhint("Pass the client's position, or three NULLs for a client with no state.")));
	pos->given = true;
	pos->lsn = sl_arg_lsn(fcinfo, argno + 1, "lsn");
	sl_find_log(doc, d, sl_arg_log_id(fcinfo, argno), &pos->log, false, true);
	pos->end = pos->log.end_lsn >= 0 ? pos->log.end_lsn : d->head_lsn;
	sl_check_position(&pos->log, pos->end, pos->lsn, "lsn");
	sl_check_chain(doc, d->doc_id, &pos->log, pos->lsn,
				   sl_arg_chain(fcinfo, argno + 2), true);
}

/* The log_bytes of the entry at lsn, 0 at or below base (none there). */
static int64
bytes_at(int64 doc_id, const SlLog *l, int64 lsn)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		args[2] = {Int64GetDatum(doc_id), Int64GetDatum(lsn)};

	if (lsn <= l->base_lsn)
		return 0;
	sl_exec(&plan, "SELECT log_bytes FROM synclog.entry WHERE doc_id = $1 AND lsn = $2",
			2, types, args, NULL, true, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("missing entry in log \"%s\"", l->log_id),
				 errdetail("The log has no entry at LSN " INT64_FORMAT ".", lsn)));
	return sl_col_int64(0, 1);
}

/* The document and its active log, in the caller's snapshot, after the access check. */
static void
find_head(text *doc, SlDoc *d, SlLog *active)
{
	sl_require_doc(doc, false);
	sl_find_doc(doc, d, true);
	sl_find_log(doc, d, cstring_to_text(d->active_log), active, false, true);
}

/* ------------------------------------------------------------------------
 * catch_up_target
 * ------------------------------------------------------------------------
 */

/*
 * The hash being moved to the head (for hash_batch and head_write): one
 * hash, or per_bucket the SLC_BUCKETS range hashes, each item's change
 * going to its bucket's.
 */
typedef struct HeadHash
{
	slc_hash   *h;
	bool		per_bucket;
	int64		doc_id;
	Cands	   *keys;			/* head_write queues the keys' base items here */
} HeadHash;

static slc_hash *
head_target(HeadHash *hh, uint8 ns, const uint8 *key, size_t klen)
{
	return hh->per_bucket ? &hh->h[slc_bucket(ns, key, klen)] : hh->h;
}

/* resolved_fn of the head hash: the base items of keys the log wrote leave. */
static void
hash_batch(void *arg, Resolved *r)
{
	HeadHash   *hh = (HeadHash *) arg;

	for (int i = 0; i < r->n; i++)
	{
		uint64		lo,
					hi,
					bytes;

		if (r->base_found[i] && !r->base_null[i])
		{
			sl_item_hash_parse(DatumGetByteaPP(r->base[i]), hh->doc_id, &lo, &hi, &bytes);
			slc_hash_remove_item(head_target(hh, (uint8) r->ns[i],
											 (const uint8 *) VARDATA(r->key[i]),
											 VARSIZE(r->key[i]) - VARHDRSZ),
								 lo, hi, bytes);
		}
	}
}

/*
 * Calls fn once per item of a performed sort of writes (item hashes,
 * newest first per key) with its newest write: its ns || key, and its
 * item hash's (lo, hi, bytes), or has_item false for a deletion.
 */
typedef void (*last_write_fn) (void *arg, const uint8 *nskey, size_t len,
							   bool has_item, uint64 lo, uint64 hi, uint64 bytes);

static void
foreach_last_write(Cands *writes, last_write_fn fn, void *arg)
{
	uint8	   *prev = palloc(1 + SLC_KEY_MAX);
	size_t		prev_len = 0;
	bool		have_prev = false;

	while (tuplesort_gettupleslot(writes->sort, true, true, writes->out, NULL))
	{
		bool		isnull;
		bytea	   *nskey = DatumGetByteaPP(slot_getattr(writes->out, 1, &isnull));
		const uint8 *p = (const uint8 *) VARDATA_ANY(nskey);
		size_t		len = VARSIZE_ANY_EXHDR(nskey);
		Datum		payload = slot_getattr(writes->out, 3, &isnull);
		uint64		lo = 0,
					hi = 0,
					bytes = 0;

		CHECK_FOR_INTERRUPTS();
		if (have_prev && sl_bytes_cmp(p, len, prev, prev_len) == 0)
			continue;
		memcpy(prev, p, len);
		prev_len = len;
		have_prev = true;
		if (!isnull)
			sl_item_hash_parse(DatumGetByteaPP(payload), writes->doc_id, &lo, &hi, &bytes);
		fn(arg, p, len, !isnull, lo, hi, bytes);
	}
	pfree(prev);
}

/* head_hash's last_write_fn: add the newest item, queue the key's base item */
static void
head_write(void *arg, const uint8 *nskey, size_t len, bool has_item,
		   uint64 lo, uint64 hi, uint64 bytes)
{
	HeadHash   *hh = (HeadHash *) arg;

	if (has_item)
		slc_hash_add_item(head_target(hh, nskey[0], nskey + 1, len - 1), lo, hi, bytes);
	cand_put(hh->keys, nskey[0], nskey + 1, len - 1, 0, NULL, 0);
}

/*
 * Move hh from the state at l's base to the state at head: each key the
 * entries (base, head] wrote moves from its item at base (its stored item
 * hash, so the old value is never read) to its last write.  The writes go
 * through one sort (item hashes only, newest first per key); each key's
 * last write is added, and the key goes into a second sort, whose
 * resolution looks the keys' base items up a batch at a time and takes
 * them out.
 */
static void
head_changes(HeadHash *hh, const SlLog *l, int64 head)
{
	Cands		writes;
	Cands		keys;

	if (head <= l->base_lsn)
		return;
	hh->keys = &keys;
	cands_begin(&writes, hh->doc_id, true, NULL);
	cands_begin(&keys, hh->doc_id, true, NULL);
	cands_from_entries(&writes, l->base_lsn, head, false);
	tuplesort_performsort(writes.sort);
	foreach_last_write(&writes, head_write, hh);
	cands_end(&writes);
	cands_resolve(&keys, l->base_lsn, 0, hash_batch, hh);
	cands_end(&keys);
}

/* The hash of the state at head: the active log's base hash, moved. */
static void
head_hash(int64 doc_id, const SlLog *l, int64 head, slc_hash *h)
{
	HeadHash	hh = {h, false, doc_id, NULL};

	sl_bytea_to_hash(l->snapshot_hash, h);
	head_changes(&hh, l, head);
}

/*
 * The range hashes of the state at lsn inside log l: rh holds those of
 * l's base (range_store.c) and is moved to lsn bucket by bucket, at the
 * cost of the entries (base, lsn] (as catch_up_target's hash).
 */
void
sl_head_range_hashes(int64 doc_id, const SlLog *l, int64 lsn, slc_hash *rh)
{
	HeadHash	hh = {rh, true, doc_id, NULL};

	head_changes(&hh, l, lsn);
}

/*
 * The last writes of the entries (lo, hi] to the keys of some buckets, in
 * (ns, key) order, for the state at a position inside a log (range.c): a
 * sort of the writes, newest first per key, read back one key at a time.
 */
struct SlWrites
{
	Cands		c;
	uint8	   *prev;
	size_t		prev_len;
	bool		have_prev;
};

SlWrites *
sl_writes_begin(int64 doc_id, int64 lo, int64 hi, const bool *buckets,
				int16 after_ns, bytea *after_key)
{
	SlWrites   *w = palloc0(sizeof(SlWrites));
	bytea	   *after = NULL;

	if (after_key != NULL)
		after = nskey_make((uint8) after_ns, (const uint8 *) VARDATA_ANY(after_key),
						   VARSIZE_ANY_EXHDR(after_key));
	cands_begin(&w->c, doc_id, false, after);
	w->c.buckets = buckets;
	w->prev = palloc(1 + SLC_KEY_MAX);
	if (hi > lo)
		cands_from_entries(&w->c, lo, hi, false);
	tuplesort_performsort(w->c.sort);
	return w;
}

/*
 * The next key's last write: *nskey its ns || key, *value its value or
 * NULL for a deletion (both palloc'd in the caller's context).  false at
 * the end.
 */
bool
sl_writes_next(SlWrites *w, bytea **nskey, bytea **value)
{
	while (tuplesort_gettupleslot(w->c.sort, true, true, w->c.out, NULL))
	{
		bool		isnull;
		bytea	   *k = DatumGetByteaPP(slot_getattr(w->c.out, 1, &isnull));
		const uint8 *p = (const uint8 *) VARDATA_ANY(k);
		size_t		len = VARSIZE_ANY_EXHDR(k);
		Datum		payload;

		CHECK_FOR_INTERRUPTS();
		if (w->have_prev && sl_bytes_cmp(p, len, w->prev, w->prev_len) == 0)
			continue;
		memcpy(w->prev, p, len);
		w->prev_len = len;
		w->have_prev = true;
		*nskey = DatumGetByteaPCopy(PointerGetDatum(k));
		payload = slot_getattr(w->c.out, 3, &isnull);
		*value = isnull ? NULL : DatumGetByteaPCopy(payload);
		return true;
	}
	return false;
}

void
sl_writes_end(SlWrites *w)
{
	cands_end(&w->c);
	pfree(w->prev);
	pfree(w);
}

/*
 * The key and value bytes synclog.catch_up returns from a position in the
 * active log (LSN lo) to hi: every item the entries (lo, hi] wrote, once,
 * with its last value (a deletion counts its key).  The writes go through
 * one sort of item hashes, whose byte counts are the items' key and value
 * bytes.
 */
/* same_log_bytes's last_write_fn: an item's key and value bytes, a deletion's key */
static void
count_write(void *arg, const uint8 *nskey, size_t len, bool has_item,
			uint64 lo, uint64 hi, uint64 bytes)
{
	*(int64 *) arg += has_item ? (int64) bytes : (int64) len - 1;
}

static int64
same_log_bytes(int64 doc_id, int64 lo, int64 hi)
{
	Cands		writes;
	int64		total = 0;

	if (hi <= lo)
		return 0;
	cands_begin(&writes, doc_id, true, NULL);
	cands_from_entries(&writes, lo, hi, false);
	tuplesort_performsort(writes.sort);
	foreach_last_write(&writes, count_write, &total);
	cands_end(&writes);
	return total;
}

/*
 * synclog.catch_up_target(doc text)
 *   returns (log_id text, lsn bigint, chain bytea, snapshot_hash bytea)
 *
 * The head of the document now, where a catch-up ends: the active log,
 * its newest LSN (its base while empty), the chain value there and the
 * hash of the state there (the log's base hash plus its entries'
 * changes).  The newest entry a snapshot sees always ends a group.  Runs
 * in the caller's snapshot; its cost follows the active log's entries.
 *
 * Takes AccessShareLock on synclog.doc, synclog.entry, synclog.log and
 * synclog.kv, and on synclog.doc_grant when the caller is a role whose
 * confinement this backend has not cached yet; no row locks.
 */
Datum
synclog_catch_up_target(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	SlDoc		d;
	SlLog		l;
	slc_hash	h;
	uint8		chain[SLC_CHAIN_LEN];
	HeapTuple	tup;
	MemoryContext caller = CurrentMemoryContext;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	sl_spi_begin();
	find_head(doc, &d, &l);
	head_hash(d.doc_id, &l, d.head_lsn, &h);
	memcpy(chain, sl_chain_at(&l, d.doc_id, d.head_lsn, true), SLC_CHAIN_LEN);
	{
		MemoryContext old = MemoryContextSwitchTo(caller);

		values[0] = CStringGetTextDatum(l.log_id);
		values[1] = Int64GetDatum(d.head_lsn);
		values[2] = PointerGetDatum(cstring_to_text_with_len((const char *) chain, SLC_CHAIN_LEN));
		values[3] = PointerGetDatum(sl_hash_to_bytea(&h));
		tup = heap_form_tuple(BlessTupleDesc(desc), values, nulls);
		MemoryContextSwitchTo(old);
	}
	sl_spi_end();
	PG_RETURN_DATUM(HeapTupleGetDatum(tup));
}

/* ------------------------------------------------------------------------
 * catch_up
 * ------------------------------------------------------------------------
 */

typedef struct Emit
{
	ReturnSetInfo *rsinfo;
} Emit;

/* resolved_fn of catch_up: one row per key, its value at the target. */
static void
emit_batch(void *arg, Resolved *r)
{
	Emit	   *e = (Emit *) arg;

	for (int i = 0; i < r->n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (r->skip[i])
			continue;
		values[0] = Int16GetDatum(r->ns[i]);
		values[1] = PointerGetDatum(r->key[i]);
		if (r->lookup[i])
		{
			values[2] = r->base[i];
			nulls[2] = !r->base_found[i] || r->base_null[i];
		}
		else
		{
			values[2] = r->payload[i];
			nulls[2] = r->isnull[i];
		}
		tuplestore_putvalues(e->rsinfo->setResult, e->rsinfo->setDesc, values, nulls);
	}
}

/*
 * From the empty state: every item of the target state, in (ns, key)
 * order after after: the state at T's base (a cursor over kv_key_idx)
 * merged with the sorted writes of T's entries in (T.base, t], which win
 * on a tie; deleted items are left out.
 */
static void
from_empty(ReturnSetInfo *rsinfo, int64 doc_id, const SlLog *t_log, int64 t,
		   int16 after_ns, bytea *after_key, int32 max_rows)
{
	static SPIPlanPtr plan;
	Oid			types[4] = {INT8OID, INT8OID, INT2OID, BYTEAOID};
	Datum		args[4];
	Cands		c;
	Portal		portal;
	SPITupleTable *batch = NULL;
	uint64		nbatch = 0,
				bi = 0;
	bool		a_valid = false,
				b_done = false;
	int32		sent = 0;
	bytea	   *none = palloc(VARHDRSZ);
	bytea	   *after = NULL;
	uint8	   *prev = palloc(1 + SLC_KEY_MAX);
	size_t		prev_len = 0;
	bool		have_prev = false;
	/* the current A candidate */
	uint8	   *a_key = palloc(1 + SLC_KEY_MAX);
	size_t		a_len = 0;
	bytea	   *a_val = NULL;

	SET_VARSIZE(none, VARHDRSZ);
	if (after_key != NULL)
		after = nskey_make((uint8) after_ns, (const uint8 *) VARDATA_ANY(after_key),
						   VARSIZE_ANY_EXHDR(after_key));
	cands_begin(&c, doc_id, false, after);
	if (t > t_log->base_lsn)
		cands_from_entries(&c, t_log->base_lsn, t, false);
	tuplesort_performsort(c.sort);

	args[0] = Int64GetDatum(doc_id);
	args[1] = Int64GetDatum(t_log->base_lsn);
	args[2] = Int16GetDatum(after_key != NULL ? after_ns : 0);
	args[3] = PointerGetDatum(after_key != NULL ? after_key : none);
	portal = sl_cursor(&plan,
					   "SELECT ns, key, value FROM ("
					   "  SELECT DISTINCT ON (ns, key) ns, key, kind, value FROM synclog.kv "
					   "  WHERE doc_id = $1 AND lsn <= $2 AND (ns, key) > ($3, $4) "
					   "  ORDER BY ns, key, lsn DESC) v WHERE kind <> 'd'",
					   4, types, args, NULL, true);
	while (sent < max_rows)
	{
		int			cmp;
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		/* next distinct A candidate */
		while (!a_valid)
		{
			bytea	   *nskey;
			Datum		payload;

			if (!tuplesort_gettupleslot(c.sort, true, true, c.out, NULL))
				break;
			nskey = DatumGetByteaPP(slot_getattr(c.out, 1, &isnull));
			if (have_prev && sl_bytes_cmp((const uint8 *) VARDATA_ANY(nskey),
									   VARSIZE_ANY_EXHDR(nskey), prev, prev_len) == 0)
				continue;
			prev_len = VARSIZE_ANY_EXHDR(nskey);
			memcpy(prev, VARDATA_ANY(nskey), prev_len);
			have_prev = true;
			memcpy(a_key, prev, prev_len);
			a_len = prev_len;
			payload = slot_getattr(c.out, 3, &isnull);
			if (a_val != NULL)
				pfree(a_val);
			a_val = isnull ? NULL : DatumGetByteaPCopy(payload);
			a_valid = true;
		}
		/* next B row */
		if (!b_done && bi >= nbatch)
		{
			if (batch != NULL)
				SPI_freetuptable(batch);
			batch = NULL;
			nbatch = sl_fetch(portal, &batch);
			bi = 0;
			if (nbatch == 0)
				b_done = true;
		}
		if (!a_valid && b_done)
			break;
		if (!a_valid)
			cmp = 1;
		else if (b_done)
			cmp = -1;
		else
		{
			int16		bns = DatumGetInt16(SPI_getbinval(batch->vals[bi], batch->tupdesc, 1, &isnull));
			bytea	   *bkey = DatumGetByteaPP(SPI_getbinval(batch->vals[bi], batch->tupdesc, 2, &isnull));

			cmp = (int) a_key[0] - (int) bns;
			if (cmp == 0)
				cmp = sl_bytes_cmp(a_key + 1, a_len - 1, (const uint8 *) VARDATA_ANY(bkey),
								VARSIZE_ANY_EXHDR(bkey));
		}
		if (cmp <= 0)
		{
			/* T's entries wrote it: their last write decides */
			if (a_val != NULL)
			{
				Datum		values[3];
				bool		nulls[3] = {false, false, false};
				bytea	   *key = palloc(VARHDRSZ + a_len - 1);

				SET_VARSIZE(key, VARHDRSZ + a_len - 1);
				memcpy(VARDATA(key), a_key + 1, a_len - 1);
				values[0] = Int16GetDatum(a_key[0]);
				values[1] = PointerGetDatum(key);
				values[2] = PointerGetDatum(a_val);
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
				sent++;
				pfree(key);
			}
			a_valid = false;
			if (cmp == 0)
				bi++;
		}
		else
		{
			Datum		values[3];
			bool		nulls[3];

			for (int k = 0; k < 3; k++)
				values[k] = SPI_getbinval(batch->vals[bi], batch->tupdesc, k + 1, &nulls[k]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			sent++;
			bi++;
		}
	}
	if (batch != NULL)
		SPI_freetuptable(batch);
	SPI_cursor_close(portal);
	cands_end(&c);
}

/*
 * A position to bring a state to (what): it must lie in log tl (from its
 * base to its end, or to the head while active) and end a group, as the
 * position synclog.catch_up_target returns does; 22023 otherwise.
 */
void
sl_check_target(const SlDoc *d, const SlLog *tl, int64 t, const char *what)
{
	int64		t_end = tl->end_lsn >= 0 ? tl->end_lsn : d->head_lsn;

	if (t < tl->base_lsn || t > t_end)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is outside log \"%s\"", what, tl->log_id),
				 errdetail("The log covers LSNs " INT64_FORMAT " to " INT64_FORMAT "; %s is " INT64_FORMAT ".",
						   tl->base_lsn, t_end, what, t),
				 errhint("Use the position synclog.catch_up_target() returns.")));
	if (t < t_end)
	{
		static SPIPlanPtr plan;
		Oid			types[2] = {INT8OID, INT8OID};
		Datum		args[2] = {Int64GetDatum(d->doc_id), Int64GetDatum(t + 1)};

		sl_exec(&plan, "SELECT 1 FROM synclog.entry WHERE doc_id = $1 AND lsn = $2 "
				"AND group_lsn IS NOT NULL",
				2, types, args, NULL, true, 1);
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s " INT64_FORMAT " is inside a group", what, t),
					 errdetail("The entry after it in log \"%s\" belongs to the same group (PROTOCOL.md section 3a).",
							   tl->log_id),
					 errhint("Use the position synclog.catch_up_target() returns.")));
	}
}

/*
 * synclog.catch_up(doc text, log_id text, lsn bigint, chain bytea,
 *                  target_log text, target_lsn bigint, after_ns smallint,
 *                  after_key bytea, max_rows integer)
 *   returns setof (ns smallint, key bytea, value bytea)
 *
 * For a client at position (log_id, lsn, chain), every item that may
 * differ between there and the target (target_log, target_lsn; normally
 * what synclog.catch_up_target returned) with its value at the target,
 * NULL when it is absent there; ordered by (ns, key), at most max_rows,
 * after (after_ns, after_key) when given (both or neither).  The result
 * may include items that did not change.  With the position all NULL,
 * every item of the target state (no NULL values).  The page is complete
 * when it has fewer than max_rows rows.  Errors: as synclog.read2 for the
 * position (SL002, SL003, 22023, SL004, SL006) and for the target log
 * (SL002 for a log that is not the document's, SL003 collected); 22023 for
 * a target_lsn outside the target log or inside a group, a target before
 * the position, max_rows below 1 or an incomplete or bad after_*.  Runs in
 * the caller's snapshot; each page reads the candidates again (decoding
 * the entries of P after the position, of the logs in between, and of T
 * up to the target), sorting them
 * with work_mem and spilling beyond.
 *
 * Takes AccessShareLock on synclog.doc, synclog.entry, synclog.log and
 * synclog.kv, and on synclog.doc_grant when the
 * caller is a role whose confinement this backend has not cached yet; no
 * row locks.
 */
Datum
synclog_catch_up(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *target_log = sl_arg_log_id(fcinfo, 4);
	int64		t = sl_arg_lsn(fcinfo, 5, "target_lsn");
	int32		max_rows = sl_arg_positive_int(fcinfo, 8, "max_rows");
	int16		after_ns = 0;
	bytea	   *after_key = NULL;
	SlDoc		d;
	SlLog		tl;
	Position	pos;

	if (PG_ARGISNULL(6) != PG_ARGISNULL(7))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("after_ns and after_key must be given together"),
				 errhint("Pass the last row's ns and key to read the next page, or neither to start.")));
	if (!PG_ARGISNULL(6))
	{
		after_ns = PG_GETARG_INT16(6);
		after_key = PG_GETARG_BYTEA_PP(7);
		if (after_ns != SLC_NS_DATA && after_ns != SLC_NS_CLIENT)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("after_ns must be 1 (data) or 2 (client watermarks)"),
					 errdetail("The value given was %d.", after_ns)));
		if (VARSIZE_ANY_EXHDR(after_key) > SLC_KEY_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("after_key is too long"),
					 errdetail("Keys are at most %d bytes; this one is %d bytes.",
							   SLC_KEY_MAX, (int) VARSIZE_ANY_EXHDR(after_key))));
	}

	InitMaterializedSRF(fcinfo, 0);
	sl_spi_begin();
	sl_require_doc(doc, false);
	sl_find_doc(doc, &d, true);
	arg_position(fcinfo, 1, doc, &d, &pos);
	sl_find_log(doc, &d, target_log, &tl, false, true);
	sl_check_target(&d, &tl, t, "target_lsn");
	if (pos.given && t < pos.lsn)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("target is before the position"),
				 errdetail("The position is at LSN " INT64_FORMAT " of log \"%s\"; the target is at LSN " INT64_FORMAT " of log \"%s\".",
						   pos.lsn, pos.log.log_id, t, tl.log_id)));

	if (!pos.given)
		from_empty(rsinfo, d.doc_id, &tl, t, after_ns, after_key, max_rows);
	else if (t > pos.lsn)
	{
		Cands		c;
		Emit		e = {rsinfo};
		bytea	   *after = NULL;

		if (after_key != NULL)
			after = nskey_make((uint8) after_ns, (const uint8 *) VARDATA_ANY(after_key),
							   VARSIZE_ANY_EXHDR(after_key));
		cands_begin(&c, d.doc_id, false, after);
		if (tl.generation == pos.log.generation)
			cands_from_entries(&c, pos.lsn, t, false);
		else
		{
			cands_from_entries(&c, pos.lsn, pos.end, true);
			cands_from_crossed(&c, pos.end, tl.base_lsn);
			cands_from_entries(&c, tl.base_lsn, t, false);
		}
		cands_resolve(&c, tl.base_lsn, max_rows, emit_batch, &e);
		cands_end(&c);
	}
	sl_spi_end();
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * sync_cost
 * ------------------------------------------------------------------------
 */

/*
 * synclog.sync_cost(doc text, log_id text, lsn bigint, chain bytea)
 *   returns (replay_bytes bigint, catch_up_bytes bigint, snapshot_bytes bigint,
 *            head_log text, head_lsn bigint)
 *
 * What each way from a position (checked as synclog.read2 does; all NULL
 * for a client with no state) to the head costs, in bytes (PROTOCOL.md
 * section 6a):
 *  replay_bytes   - the version 1 delta bytes of the entries after the
 *                   position up to the head, across the logs in between
 *                   (NULL without a position);
 *  catch_up_bytes - an upper bound of the key and value bytes synclog.catch_up
 *                   returns: the snapshot's bytes at the active log's base,
 *                   plus the active log's delta bytes, plus 16 bytes and the
 *                   client id per entry with a client in the active log and
 *                   in the position's log after it, plus that log's delta
 *                   bytes after the position and the key and value bytes
 *                   of the state at its end (a bound of the keys the logs
 *                   in between deleted); when the
 *                   position is in the active log, exactly what catch_up
 *                   returns (same_log_bytes: a pass over the entries after
 *                   the position, as a replay reads them); from
 *                   the empty state exactly the key and value bytes of the
 *                   head state (its hash's byte count, computed as
 *                   synclog.catch_up_target does, so this case costs a
 *                   pass over the active log's deltas);
 *  snapshot_bytes - the key and value bytes of the snapshot at the active
 *                   log's base plus the active log's delta bytes: what a
 *                   download and a replay of the active log move.
 * head_log and head_lsn: the head they were computed for.  The work
 * follows the entries after the position in its log and in the active log
 * (their rows, not their deltas).
 *
 * Takes the locks of synclog.catch_up.
 */
Datum
synclog_sync_cost(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan_sealed;
	static SPIPlanPtr plan_clients;
	text	   *doc = sl_arg_doc(fcinfo, 0);
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	SlDoc		d;
	SlLog		al;
	Position	pos;
	slc_hash	base;
	int64		replay = 0,
				bound,
				wm_bytes,
				snapshot;
	HeapTuple	tup;
	MemoryContext caller = CurrentMemoryContext;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	sl_spi_begin();
	find_head(doc, &d, &al);
	arg_position(fcinfo, 1, doc, &d, &pos);
	sl_bytea_to_hash(al.snapshot_hash, &base);
	snapshot = (int64) base.bytes + d.active_bytes;

	/* watermark bytes of the entries after the position in its log and of the active log */
	{
		Oid			types[5] = {INT8OID, INT8OID, INT8OID, INT8OID, INT8OID};
		Datum		args[5];
		bool		same = pos.given && strcmp(pos.log.log_id, al.log_id) == 0;

		args[0] = Int64GetDatum(d.doc_id);
		args[1] = Int64GetDatum(same ? pos.lsn : al.base_lsn);
		args[2] = Int64GetDatum(d.head_lsn);
		args[3] = Int64GetDatum(pos.given && !same ? pos.lsn : 0);
		args[4] = Int64GetDatum(pos.given && !same ? pos.end : 0);
		sl_exec(&plan_clients,
				"SELECT coalesce(sum(16 + octet_length(client_id)), 0)::bigint "
				"FROM synclog.entry WHERE doc_id = $1 AND client_id IS NOT NULL "
				"  AND ((lsn > $2 AND lsn <= $3) OR (lsn > $4 AND lsn <= $5))",
				5, types, args, NULL, true, 1);
		wm_bytes = sl_col_int64(0, 1);
	}
	bound = (int64) base.bytes + d.active_bytes + wm_bytes;
	if (!pos.given)
	{
		slc_hash	head;

		/* from the empty state a catch-up returns the head state's items */
		head_hash(d.doc_id, &al, d.head_lsn, &head);
		bound = (int64) head.bytes;
	}
	else
	{
		Oid			types[3] = {INT8OID, INT4OID, INT8OID};
		Datum		args[3];
		int64		tail;

		args[0] = Int64GetDatum(d.doc_id);
		args[1] = Int32GetDatum(pos.log.generation);
		/* the sealed logs from the position's on: their last entries' byte counts */
		sl_exec(&plan_sealed,
				"SELECT coalesce(sum(e.log_bytes), 0)::bigint FROM synclog.log l "
				"JOIN synclog.entry e ON e.doc_id = l.doc_id AND e.lsn = l.end_lsn "
				"WHERE l.doc_id = $1 AND l.generation >= $2 AND l.end_lsn IS NOT NULL",
				2, types, args, NULL, true, 1);
		/* read the sum before bytes_at runs a query of its own */
		replay = sl_col_int64(0, 1) + d.active_bytes;
		tail = bytes_at(d.doc_id, &pos.log, pos.lsn);
		replay -= tail;
		if (strcmp(pos.log.log_id, al.log_id) == 0)
			bound = same_log_bytes(d.doc_id, pos.lsn, d.head_lsn);
		else
		{
			int64		p_tail = bytes_at(d.doc_id, &pos.log, pos.end) - tail;
			slc_hash	p_end;

			/*
			 * A key the logs in between deleted is absent at the active
			 * base and was present at the position's log's end (catch_up
			 * leaves out those absent at both): its key is among the
			 * bytes of the state there.
			 */
			sl_bytea_to_hash(pos.log.end_hash, &p_end);
			bound += p_tail + (int64) p_end.bytes;
		}
	}
	{
		MemoryContext old = MemoryContextSwitchTo(caller);

		values[0] = Int64GetDatum(replay);
		nulls[0] = !pos.given;
		values[1] = Int64GetDatum(bound);
		values[2] = Int64GetDatum(snapshot);
		values[3] = CStringGetTextDatum(al.log_id);
		values[4] = Int64GetDatum(d.head_lsn);
		tup = heap_form_tuple(BlessTupleDesc(desc), values, nulls);
		MemoryContextSwitchTo(old);
	}
	sl_spi_end();
	PG_RETURN_DATUM(HeapTupleGetDatum(tup));
}
