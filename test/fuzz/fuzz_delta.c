/*
 * fuzz_delta.c
 *
 * libFuzzer target for the delta decoder and the state fold of src/core.
 *
 * Input: one or more candidate deltas separated by FUZZ_SEP ("|SLC|"); a
 * file with no separator is a single delta, so any encoded delta is a seed
 * as it is.  Each chunk becomes one log entry (LSN = its position, a client
 * id and seq derived from its bytes) and goes through:
 *
 *  - an independent reference parser written from PROTOCOL.md section 10,
 *    which slc_delta_validate and the reader loop (slc_delta_reader_init /
 *    slc_delta_next) must agree with on status, error offset and every
 *    change (pointers included); errors are sticky, the end is stable;
 *  - the max_changes limit (n passes, n - 1 gives SLC_ERR_TOO_MANY);
 *  - slc_delta_reader_room: the announced count capped by the bytes after
 *    the header (8 per change), shrinking with every change read, so the
 *    reader never returns more changes than it promised room for;
 *  - slc_delta_find_duplicate on the decoded changes, forwards and
 *    reversed, against a hash-set and (for small n) a pairwise check;
 *  - re-encoding: a delta that validates re-encodes to the same bytes;
 *  - slc_state_apply_entry: rejected entries change nothing; accepted ones
 *    move the hash exactly as slc_hash_replace of each key's old value
 *    predicts, slc_state_rehash equals the running hash, lookups return
 *    what the delta wrote;
 *  - rotations (the state's items copied into a fresh state) at points
 *    chosen by the input, and at the end the compaction's newest-first
 *    fold of the entries since the last rotation, applied with
 *    slc_hash_replace on top of that snapshot's hash, and again as
 *    compact.c does it (slc_hash_remove_item / slc_hash_add_item with item
 *    hashes), which must both equal the forward fold.
 *
 * Any broken invariant aborts (libFuzzer reports it as a crash and saves
 * the input).  Build and run through test/fuzz/Makefile.
 */
#define _GNU_SOURCE				/* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "synclog_core.h"

#define FUZZ_SEP		"|SLC|"
#define FUZZ_SEP_LEN	5
/* More entries than this in one input are ignored (keeps runs short). */
#define MAX_ENTRIES		64

#define FAIL(...) \
	do { \
		fprintf(stderr, "fuzz_delta: invariant broken at %s:%d: ", \
				__FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		abort(); \
	} while (0)

#define ASSERT(cond) \
	do { \
		if (!(cond)) \
			FAIL("%s", #cond); \
	} while (0)

static void *
xcalloc(size_t n, size_t size)
{
	void	   *p = calloc(n > 0 ? n : 1, size > 0 ? size : 1);

	if (p == NULL)
		FAIL("out of memory in the harness");
	return p;
}

static uint32_t
rd_u32le(const uint8_t *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) |
		((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

static int
bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* ---------------------------------------------------------------------
 * Reference parser, from the text of PROTOCOL.md section 10 and the error
 * offsets documented in synclog_core.h, sharing no code with the core.
 * ---------------------------------------------------------------------
 */
typedef struct
{
	slc_status	st;
	size_t		off;			/* error offset when st != SLC_OK */
	uint32_t	count;			/* announced count (0 if header bad) */
	uint32_t	n;				/* changes parsed before stopping */
	slc_change *ch;				/* room for len / 8 + 1 */
} ref_result;

static void
ref_parse(const uint8_t *buf, size_t len, uint32_t max_changes, ref_result *r)
{
	size_t		pos;
	uint32_t	i;

	r->st = SLC_OK;
	r->off = 0;
	r->count = 0;
	r->n = 0;
	if (len == 0)
	{
		r->st = SLC_ERR_EMPTY;
		return;
	}
	if (buf[0] != 1)
	{
		r->st = SLC_ERR_VERSION;
		return;
	}
	if (len < 5)
	{
		r->st = SLC_ERR_TRUNCATED;
		r->off = 1;
		return;
	}
	if (rd_u32le(buf + 1) > max_changes)
	{
		r->st = SLC_ERR_TOO_MANY;
		r->off = 1;
		return;
	}
	r->count = rd_u32le(buf + 1);
	pos = 5;
	for (i = 0; i < r->count; i++)
	{
		uint32_t	klen;
		uint32_t	vlen;
		size_t		kpos;

		if (pos + 4 > len)
		{
			r->st = SLC_ERR_TRUNCATED;
			r->off = pos;
			return;
		}
		klen = rd_u32le(buf + pos);
		if (klen > 1024)
		{
			r->st = SLC_ERR_KEY_TOO_LONG;
			r->off = pos;
			return;
		}
		if (pos + 4 + (size_t) klen > len)
		{
			r->st = SLC_ERR_LENGTH;
			r->off = pos;
			return;
		}
		kpos = pos + 4;
		pos = kpos + klen;
		if (pos + 4 > len)
		{
			r->st = SLC_ERR_TRUNCATED;
			r->off = pos;
			return;
		}
		vlen = rd_u32le(buf + pos);
		r->ch[i].key = buf + kpos;
		r->ch[i].klen = klen;
		if (vlen == 0xFFFFFFFFu)
		{
			r->ch[i].val = NULL;
			r->ch[i].vlen = 0;
			r->ch[i].is_delete = 1;
			pos += 4;
		}
		else if (vlen > 0x3FFFFFFFu)
		{
			r->st = SLC_ERR_VALUE_TOO_LONG;
			r->off = pos;
			return;
		}
		else if (pos + 4 + (size_t) vlen > len)
		{
			r->st = SLC_ERR_LENGTH;
			r->off = pos;
			return;
		}
		else
		{
			r->ch[i].val = buf + pos + 4;
			r->ch[i].vlen = vlen;
			r->ch[i].is_delete = 0;
			pos += 4 + (size_t) vlen;
		}
		r->n = i + 1;
	}
	if (pos != len)
	{
		r->st = SLC_ERR_TRAILING;
		r->off = pos;
	}
}

static int
change_eq(const slc_change *a, const slc_change *b)
{
	return a->key == b->key && a->klen == b->klen && a->val == b->val &&
		a->vlen == b->vlen && (a->is_delete != 0) == (b->is_delete != 0);
}

/* ---------------------------------------------------------------------
 * Decoder checks on one chunk.  Returns the reference result (the caller
 * owns ref->ch) and whether the chunk's keys are unique.
 * ---------------------------------------------------------------------
 */
static void
check_validate(const uint8_t *buf, size_t len, const ref_result *ref)
{
	uint32_t	n = 0xDEADBEEF;
	size_t		off = (size_t) -1;
	slc_status	st;

	st = slc_delta_validate(buf, len, UINT32_MAX, &n, &off);
	if (st != ref->st)
		FAIL("validate: status %d, reference %d", (int) st, (int) ref->st);
	if (st == SLC_OK)
	{
		if (n != ref->count)
			FAIL("validate: n %u, reference %u", n, ref->count);
	}
	else
	{
		if (off != ref->off)
			FAIL("validate: offset %zu, reference %zu (status %d)",
				 off, ref->off, (int) st);
		ASSERT(off <= len);
	}
	/* the out-parameters are optional */
	ASSERT(slc_delta_validate(buf, len, UINT32_MAX, NULL, NULL) == st);

	/* the count limit: exactly n passes, n - 1 is too many */
	if (ref->st != SLC_ERR_EMPTY && ref->st != SLC_ERR_VERSION &&
		ref->st != SLC_ERR_TRUNCATED)
	{
		ASSERT(slc_delta_validate(buf, len, ref->count, NULL, NULL) == ref->st);
		if (ref->count > 0)
		{
			off = (size_t) -1;
			ASSERT(slc_delta_validate(buf, len, ref->count - 1, NULL, &off) ==
				   SLC_ERR_TOO_MANY);
			ASSERT(off == 1);
		}
	}
}

static void
check_reader(const uint8_t *buf, size_t len, const ref_result *ref)
{
	slc_delta_reader r;
	slc_change	c;
	slc_change	canary;
	int			more = 7;
	size_t		off;
	uint32_t	got = 0;
	uint32_t	room;
	slc_status	st;

	st = slc_delta_reader_init(&r, buf, len, UINT32_MAX);
	if (st != SLC_OK)
	{
		/* only header problems are reported by init */
		ASSERT(st == ref->st);
		ASSERT(slc_delta_reader_room(&r) == 0);
		ASSERT(st == SLC_ERR_EMPTY || st == SLC_ERR_VERSION ||
			   st == SLC_ERR_TRUNCATED);
		/* a caller ignoring the error gets no change */
		memset(&canary, 0xA5, sizeof(canary));
		c = canary;
		st = slc_delta_next(&r, &c, &more, NULL);
		ASSERT(more == 0);
		ASSERT(memcmp(&c, &canary, sizeof(c)) == 0);
		ASSERT(len == 0 ? st == SLC_OK : st != SLC_OK);
		return;
	}
	ASSERT(r.count == ref->count);
	/*
	 * The room, which callers size their arrays by, is the announced count
	 * capped by the bytes after the header; every change read takes at
	 * least one unit of it, so no change can land beyond it.
	 */
	{
		size_t		fit = (len - 5) / 8;

		room = slc_delta_reader_room(&r);
		ASSERT(room == (fit < ref->count ? (uint32_t) fit : ref->count));
	}

	for (;;)
	{
		size_t		pos_before = r.pos;
		uint32_t	done_before = r.done;
		uint32_t	room_before = slc_delta_reader_room(&r);

		memset(&canary, 0x5A, sizeof(canary));
		c = canary;
		off = (size_t) -1;
		more = 7;
		st = slc_delta_next(&r, &c, &more, &off);
		if (st != SLC_OK)
		{
			int			k;

			if (st != ref->st || off != ref->off || got != ref->n)
				FAIL("reader: status %d at %zu after %u changes, reference %d at %zu after %u",
					 (int) st, off, got, (int) ref->st, ref->off, ref->n);
			ASSERT(more == 0);
			ASSERT(memcmp(&c, &canary, sizeof(c)) == 0);
			ASSERT(r.pos == pos_before && r.done == done_before);
			ASSERT(slc_delta_reader_room(&r) == room_before);
			/* sticky: the same error again, nothing moves */
			for (k = 0; k < 2; k++)
			{
				off = (size_t) -1;
				ASSERT(slc_delta_next(&r, &c, &more, &off) == st);
				ASSERT(off == ref->off && more == 0);
				ASSERT(r.pos == pos_before && r.done == done_before);
			}
			ASSERT(memcmp(&c, &canary, sizeof(c)) == 0);
			return;
		}
		if (!more)
			break;
		ASSERT(more == 1);
		ASSERT(got < ref->n);
		if (!change_eq(&c, &ref->ch[got]))
			FAIL("reader: change %u differs from the reference", got);
		/* every pointer lies inside the buffer */
		ASSERT(c.klen <= SLC_KEY_MAX);
		ASSERT(c.klen == 0 || (c.key >= buf && c.key + c.klen <= buf + len));
		ASSERT(c.is_delete ? (c.val == NULL && c.vlen == 0) :
			   (c.val != NULL && c.val >= buf && c.val + c.vlen <= buf + len));
		ASSERT(r.pos > pos_before && r.pos <= len);
		ASSERT(got < room);
		ASSERT(slc_delta_reader_room(&r) < room_before);
		got++;
	}
	ASSERT(memcmp(&c, &canary, sizeof(c)) == 0);
	if (ref->st != SLC_OK || got != ref->count)
		FAIL("reader ended cleanly after %u changes, reference status %d",
			 got, (int) ref->st);
	/* the end is stable */
	more = 7;
	ASSERT(slc_delta_next(&r, &c, &more, NULL) == SLC_OK && more == 0);
	ASSERT(r.pos == len && r.done == r.count);
}

static int
set_visit_noop(void *arg, uint8_t ns, const uint8_t *key, size_t klen,
			   const uint8_t *val, size_t vlen)
{
	(void) arg;
	(void) ns;
	(void) key;
	(void) klen;
	(void) val;
	(void) vlen;
	return 0;
}

/* Unique keys?  Checked with the state map as a set (no sorting involved). */
static int
keys_unique_by_set(const slc_change *ch, uint32_t n)
{
	slc_state  *set = slc_state_new();
	uint32_t	i;
	int			unique = 1;

	if (set == NULL)
		FAIL("out of memory in the harness");
	for (i = 0; i < n && unique; i++)
	{
		if (slc_state_get(set, SLC_NS_DATA, ch[i].key, ch[i].klen, NULL, NULL))
			unique = 0;
		else if (slc_state_put(set, SLC_NS_DATA, ch[i].key, ch[i].klen,
							   (const uint8_t *) "", 0) != SLC_OK)
			FAIL("out of memory in the harness");
	}
	ASSERT(slc_state_foreach(set, set_visit_noop, NULL) == 0);
	/* deleting every key again empties the set (backward-shift deletion) */
	for (i = 0; i < n; i++)
		ASSERT(slc_state_put(set, SLC_NS_DATA, ch[i].key, ch[i].klen,
							 NULL, 0) == SLC_OK);
	ASSERT(slc_state_count(set) == 0);
	{
		slc_hash	empty;

		slc_hash_init(&empty);
		ASSERT(slc_hash_equal(slc_state_hash(set), &empty));
	}
	slc_state_free(set);
	return unique;
}

static int
keys_unique_pairwise(const slc_change *ch, uint32_t n)
{
	uint32_t	i;
	uint32_t	j;

	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (bytes_eq(ch[i].key, ch[i].klen, ch[j].key, ch[j].klen))
				return 0;
	return 1;
}

static void
check_dup_index(const slc_change *ch, uint32_t n, uint32_t dup)
{
	uint32_t	j;

	ASSERT(dup < n);
	for (j = 0; j < n; j++)
		if (j != dup && bytes_eq(ch[j].key, ch[j].klen, ch[dup].key, ch[dup].klen))
			return;
	FAIL("dup_index %u has no twin", dup);
}

static int
check_duplicates(const slc_change *ch, uint32_t n)
{
	uint32_t   *scratch = xcalloc(n, sizeof(uint32_t));
	slc_change *rev = xcalloc(n, sizeof(slc_change));
	slc_change *copy = xcalloc(n, sizeof(slc_change));
	uint32_t	dup = UINT32_MAX;
	uint32_t	i;
	int			unique = keys_unique_by_set(ch, n);
	slc_status	st;

	if (n <= 64)
		ASSERT(keys_unique_pairwise(ch, n) == unique);

	if (n > 0)
		memcpy(copy, ch, sizeof(slc_change) * n);
	st = slc_delta_find_duplicate(ch, n, scratch, &dup);
	ASSERT(st == (unique ? SLC_OK : SLC_ERR_DUPLICATE_KEY));
	if (!unique)
		check_dup_index(ch, n, dup);
	/* the changes are not reordered */
	ASSERT(n == 0 || memcmp(copy, ch, sizeof(slc_change) * n) == 0);

	/* order does not matter, and dup_index is optional */
	for (i = 0; i < n; i++)
		rev[i] = ch[n - 1 - i];
	dup = UINT32_MAX;
	st = slc_delta_find_duplicate(rev, n, scratch, &dup);
	ASSERT(st == (unique ? SLC_OK : SLC_ERR_DUPLICATE_KEY));
	if (!unique)
		check_dup_index(rev, n, dup);
	ASSERT(slc_delta_find_duplicate(ch, n, scratch, NULL) == st);

	free(copy);
	free(rev);
	free(scratch);
	return unique;
}

static void
check_reencode(const uint8_t *buf, size_t len, const slc_change *ch, uint32_t n)
{
	size_t		size = slc_delta_encoded_size(ch, n);
	uint8_t    *out;

	if (size != len)
		FAIL("encoded_size %zu, input %zu", size, len);
	/* exact length: ASan catches a write past what encoded_size promised */
	out = xcalloc(size, 1);
	ASSERT(slc_delta_encode(ch, n, out) == len);
	if (memcmp(out, buf, len) != 0)
		FAIL("re-encoding differs from the input");
	free(out);
}

/* ---------------------------------------------------------------------
 * State checks
 * ---------------------------------------------------------------------
 */
static int
copy_visit(void *arg, uint8_t ns, const uint8_t *key, size_t klen,
		   const uint8_t *val, size_t vlen)
{
	if (slc_state_put((slc_state *) arg, ns, key, klen, val, vlen) != SLC_OK)
		FAIL("out of memory in the harness");
	return 0;
}

/* A rotation: the state's items (the snapshot) in a fresh state. */
static slc_state *
state_copy(const slc_state *s)
{
	slc_state  *c = slc_state_new();

	if (c == NULL)
		FAIL("out of memory in the harness");
	ASSERT(slc_state_foreach(s, copy_visit, c) == 0);
	return c;
}

typedef struct
{
	size_t		n;
	uint64_t	bytes;
} count_acc;

static int
count_visit(void *arg, uint8_t ns, const uint8_t *key, size_t klen,
			const uint8_t *val, size_t vlen)
{
	count_acc  *acc = arg;

	(void) key;
	(void) val;
	ASSERT(ns == SLC_NS_DATA || ns == SLC_NS_CLIENT);
	ASSERT(klen <= SLC_KEY_MAX);
	acc->n++;
	acc->bytes += (uint64_t) klen + vlen;
	return 0;
}

static void
check_state(const slc_state *s)
{
	slc_hash	h;
	count_acc	acc = {0, 0};
	uint8_t		ser[SLC_HASH_LEN];
	slc_hash	back;

	slc_state_rehash(s, &h);
	if (!slc_hash_equal(&h, slc_state_hash(s)))
		FAIL("running hash differs from slc_state_rehash");
	ASSERT(h.count == slc_state_count(s));
	ASSERT(slc_state_foreach(s, count_visit, &acc) == 0);
	ASSERT(acc.n == slc_state_count(s));
	ASSERT(acc.bytes == h.bytes);
	slc_hash_serialize(&h, ser);
	ASSERT(slc_hash_parse(ser, sizeof(ser), &back) == SLC_OK);
	ASSERT(slc_hash_equal(&back, &h));
}

/*
 * Move *h from the key's current value in s to new_val (NULL: deleted)
 * with slc_hash_replace; and *hs, if given, the way compact.c does it:
 * slc_hash_remove_item / slc_hash_add_item with item hashes.
 */
static void
expect_replace2(slc_hash *h, slc_hash *hs, const slc_state *s, uint8_t ns,
				const uint8_t *key, size_t klen,
				const uint8_t *new_val, size_t new_vlen)
{
	const uint8_t *old = NULL;
	size_t		old_len = 0;
	uint64_t	lo;
	uint64_t	hi;

	if (!slc_state_get(s, ns, key, klen, &old, &old_len))
		old = NULL;
	slc_hash_replace(h, ns, key, klen, old, old_len, new_val, new_vlen);
	if (hs == NULL)
		return;
	if (old != NULL)
	{
		slc_item_hash(ns, key, klen, old, old_len, &lo, &hi);
		slc_hash_remove_item(hs, lo, hi, (uint64_t) klen + old_len);
	}
	if (new_val != NULL)
	{
		slc_item_hash(ns, key, klen, new_val, new_vlen, &lo, &hi);
		slc_hash_add_item(hs, lo, hi, (uint64_t) klen + new_vlen);
	}
}

static void
expect_replace(slc_hash *h, const slc_state *s, uint8_t ns,
			   const uint8_t *key, size_t klen,
			   const uint8_t *new_val, size_t new_vlen)
{
	expect_replace2(h, NULL, s, ns, key, klen, new_val, new_vlen);
}

typedef struct
{
	const uint8_t *delta;
	size_t		len;
	int64_t		lsn;
	const char *client;			/* NULL: none */
	size_t		client_len;
	int64_t		seq;
} entry;

static const char *const clients[] = {"c1", "c2", "", "client-with-a-longer-id"};

static void
check_apply(slc_state *s, const entry *e, const ref_result *ref, int unique,
			int *accepted)
{
	slc_hash	before = *slc_state_hash(s);
	size_t		count_before = slc_state_count(s);
	slc_hash	expect = before;
	slc_status	want;
	slc_status	st;
	uint32_t	i;
	uint8_t		wm[SLC_WATERMARK_LEN];

	if (ref->st != SLC_OK)
		want = ref->st;
	else if (!unique)
		want = SLC_ERR_DUPLICATE_KEY;
	else
		want = SLC_OK;

	if (want == SLC_OK)
	{
		/* keys are unique, so each change moves its own key once */
		for (i = 0; i < ref->count; i++)
			expect_replace(&expect, s, SLC_NS_DATA, ref->ch[i].key,
						   ref->ch[i].klen,
						   ref->ch[i].is_delete ? NULL : ref->ch[i].val,
						   ref->ch[i].vlen);
		if (e->client != NULL)
		{
			/* a retire entry removes the watermark */
			slc_watermark_encode(e->seq, e->lsn, wm);
			expect_replace(&expect, s, SLC_NS_CLIENT,
						   (const uint8_t *) e->client, e->client_len,
						   e->seq == SLC_RETIRE_SEQ ? NULL : wm, sizeof(wm));
		}
	}

	st = slc_state_apply_entry(s, e->delta, e->len, e->lsn, e->client,
							   e->client_len, e->seq);
	if (st != want)
		FAIL("apply_entry: status %d, expected %d", (int) st, (int) want);
	ASSERT(slc_status_message(st) != NULL && slc_status_message(st)[0] != '\0');
	if (st != SLC_OK)
	{
		if (!slc_hash_equal(slc_state_hash(s), &before) ||
			slc_state_count(s) != count_before)
			FAIL("a rejected entry changed the state");
		*accepted = 0;
		check_state(s);
		return;
	}
	*accepted = 1;
	if (!slc_hash_equal(slc_state_hash(s), &expect))
		FAIL("apply_entry: hash differs from the slc_hash_replace prediction");
	check_state(s);

	/* what the delta wrote is what a lookup returns */
	for (i = 0; i < ref->count; i++)
	{
		const uint8_t *v = NULL;
		size_t		vlen = 0;
		int			present = slc_state_get(s, SLC_NS_DATA, ref->ch[i].key,
											ref->ch[i].klen, &v, &vlen);

		if (ref->ch[i].is_delete)
			ASSERT(!present);
		else
			ASSERT(present && bytes_eq(v, vlen, ref->ch[i].val, ref->ch[i].vlen));
	}
	if (e->client != NULL)
	{
		const uint8_t *v = NULL;
		size_t		vlen = 0;
		int64_t		seq;
		int64_t		lsn;

		if (e->seq == SLC_RETIRE_SEQ)
		{
			ASSERT(!slc_state_get(s, SLC_NS_CLIENT, (const uint8_t *) e->client,
								  e->client_len, &v, &vlen));
			return;
		}
		ASSERT(slc_state_get(s, SLC_NS_CLIENT, (const uint8_t *) e->client,
							 e->client_len, &v, &vlen));
		ASSERT(vlen == SLC_WATERMARK_LEN);
		slc_watermark_decode(v, &seq, &lsn);
		ASSERT(seq == e->seq && lsn == e->lsn);
	}
}

/*
 * The compaction's fold: walk entries[from..to) newest first; the first
 * sighting of a (ns, key) is its final value, and moves the snapshot's hash
 * from the key's value in the snapshot to that value.
 */
static void
fold_newest_first(const slc_state *snap, const entry *entries, size_t from,
				  size_t to, slc_hash *h, slc_hash *hs)
{
	slc_state  *seen = slc_state_new();
	size_t		i;

	if (seen == NULL)
		FAIL("out of memory in the harness");
	*h = *slc_state_hash(snap);
	*hs = *h;
	for (i = to; i > from; i--)
	{
		const entry *e = &entries[i - 1];
		slc_delta_reader r;
		slc_change	c;
		int			more;

		if (e->client != NULL &&
			!slc_state_get(seen, SLC_NS_CLIENT, (const uint8_t *) e->client,
						   e->client_len, NULL, NULL))
		{
			uint8_t		wm[SLC_WATERMARK_LEN];

			if (slc_state_put(seen, SLC_NS_CLIENT, (const uint8_t *) e->client,
							  e->client_len, (const uint8_t *) "", 0) != SLC_OK)
				FAIL("out of memory in the harness");
			slc_watermark_encode(e->seq, e->lsn, wm);
			expect_replace2(h, hs, snap, SLC_NS_CLIENT,
							(const uint8_t *) e->client, e->client_len,
							e->seq == SLC_RETIRE_SEQ ? NULL : wm, sizeof(wm));
		}
		ASSERT(slc_delta_reader_init(&r, e->delta, e->len, UINT32_MAX) == SLC_OK);
		for (;;)
		{
			ASSERT(slc_delta_next(&r, &c, &more, NULL) == SLC_OK);
			if (!more)
				break;
			if (slc_state_get(seen, SLC_NS_DATA, c.key, c.klen, NULL, NULL))
				continue;
			if (slc_state_put(seen, SLC_NS_DATA, c.key, c.klen,
							  (const uint8_t *) "", 0) != SLC_OK)
				FAIL("out of memory in the harness");
			expect_replace2(h, hs, snap, SLC_NS_DATA, c.key, c.klen,
							c.is_delete ? NULL : c.val, c.vlen);
		}
	}
	slc_state_free(seen);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	entry	   *entries = xcalloc(MAX_ENTRIES, sizeof(entry));
	size_t		n_entries = 0;	/* accepted entries (the log) */
	size_t		log_base = 0;	/* first entry after the last rotation */
	slc_state  *s = slc_state_new();
	slc_state  *snap = slc_state_new();	/* state at log_base */
	size_t		start = 0;
	int64_t		lsn = 0;
	int			chunks = 0;

	if (s == NULL || snap == NULL)
		FAIL("out of memory in the harness");

	while (start <= size && chunks < MAX_ENTRIES)
	{
		const uint8_t *chunk = data + start;
		size_t		len = size - start;
		const uint8_t *sep = NULL;
		uint8_t    *exact;
		ref_result	ref;
		uint64_t	mix;
		entry		e;
		int			unique = 1;
		int			accepted = 0;

		if (len >= FUZZ_SEP_LEN)
			sep = memmem(chunk, len, FUZZ_SEP, FUZZ_SEP_LEN);
		if (sep != NULL)
			len = (size_t) (sep - chunk);
		chunks++;

		/* an exact-length copy, so any overread is caught by ASan */
		exact = malloc(len > 0 ? len : 1);
		if (exact == NULL)
			FAIL("out of memory in the harness");
		if (len > 0)
			memcpy(exact, chunk, len);

		ref.ch = xcalloc(len / 8 + 1, sizeof(slc_change));
		ref_parse(exact, len, UINT32_MAX, &ref);
		/* (NULL, 0) is a legitimate empty buffer */
		check_validate(len > 0 ? exact : NULL, len, &ref);
		check_reader(exact, len, &ref);
		if (ref.st == SLC_OK)
		{
			unique = check_duplicates(ref.ch, ref.count);
			check_reencode(exact, len, ref.ch, ref.count);
		}

		/* entry metadata from the bytes: varied, but reproducible */
		mix = XXH3_64bits(exact, len);
		lsn += 1 + (int64_t) (mix & 0xF);
		e.delta = exact;
		e.len = len;
		e.lsn = lsn;
		e.client = NULL;
		e.client_len = 0;
		e.seq = 0;
		if ((mix >> 4) % 5 != 0)
		{
			e.client = clients[(mix >> 8) % 4];
			e.client_len = strlen(e.client);
			/* any int64, extremes and retire entries included */
			switch ((mix >> 12) % 5)
			{
				case 4:
					e.seq = SLC_RETIRE_SEQ;
					break;
				case 0:
					e.seq = (int64_t) (mix >> 20) - (INT64_C(1) << 40);
					break;
				case 1:
					e.seq = INT64_MIN;
					break;
				case 2:
					e.seq = INT64_MAX;
					break;
				default:
					e.seq = (int64_t) (mix % 1000);
			}
		}

		check_apply(s, &e, &ref, unique, &accepted);
		free(ref.ch);
		if (accepted)
			entries[n_entries++] = e;
		else
			free(exact);

		/* sometimes rotate: continue on a copy of the items */
		if (accepted && (mix >> 16) % 4 == 0)
		{
			slc_state  *copy = state_copy(s);

			if (!slc_hash_equal(slc_state_hash(copy), slc_state_hash(s)) ||
				slc_state_count(copy) != slc_state_count(s))
				FAIL("rotation changed the hash");
			check_state(copy);
			slc_state_free(s);
			s = copy;
			slc_state_free(snap);
			snap = state_copy(s);
			log_base = n_entries;
		}

		if (sep == NULL)
			break;
		start += len + FUZZ_SEP_LEN;
	}

	/* compaction since the last rotation, and from the empty state */
	{
		slc_hash	folded;
		slc_hash	folded_items;
		slc_state  *empty = slc_state_new();

		if (empty == NULL)
			FAIL("out of memory in the harness");
		fold_newest_first(snap, entries, log_base, n_entries, &folded,
						  &folded_items);
		if (!slc_hash_equal(&folded, slc_state_hash(s)))
			FAIL("newest-first fold since the last rotation differs from the forward fold");
		if (!slc_hash_equal(&folded_items, slc_state_hash(s)))
			FAIL("newest-first fold with item hashes differs from the forward fold");
		fold_newest_first(empty, entries, 0, n_entries, &folded, &folded_items);
		if (!slc_hash_equal(&folded, slc_state_hash(s)) ||
			!slc_hash_equal(&folded_items, slc_state_hash(s)))
			FAIL("newest-first fold of the whole log differs from the forward fold");
		slc_state_free(empty);
	}

	while (n_entries > 0)
		free((void *) entries[--n_entries].delta);
	free(entries);
	slc_state_free(s);
	slc_state_free(snap);
	return 0;
}
