/*
 * synclog_core.c
 *
 * Implementation of synclog_core.h: the delta codec, the snapshot hash and
 * the in-memory state map.  The same object is linked into the PostgreSQL
 * extension and into client libraries, so its results are the protocol:
 * any change to what bytes are produced or hashed is a protocol change and
 * belongs in PROTOCOL.md first.
 *
 * Must never: include PostgreSQL headers (clients build without them), keep
 * global mutable state (it runs in many backends and client threads), call
 * exit()/abort() or read past a buffer on bad input (deltas arrive from the
 * network), or leave an in-memory state half-changed when malloc fails.
 */
#include <stdlib.h>
#include <string.h>

/*
 * The streaming XXH3 state is only declared under XXH_STATIC_LINKING_ONLY.
 * We need it on the stack: slc_item_hash() returns void, so it has no way
 * to report a failed XXH3_createState().
 */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "synclog_core.h"

/* The status phrase below spells the limit out; keep the two in step. */
#if SLC_KEY_MAX != 1024
#error "update the SLC_ERR_KEY_TOO_LONG message"
#endif

/*
 * Items up to this many hashed bytes are hashed from a stack copy in one
 * call; larger ones (only long values) go through the streaming API.  Both
 * give the same digest; the copy is just cheaper for the common small item.
 */
#define ITEM_ONESHOT_MAX	512

/* Initial number of slots of a state map; must be a power of two. */
#define STATE_INITIAL_SLOTS	16

/* ---------------------------------------------------------------------
 * Little-endian helpers: the wire format is fixed, whatever the host is.
 * ---------------------------------------------------------------------
 */
static uint32_t
get_u32le(const uint8_t *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) |
		((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

static void
put_u32le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

static uint64_t
get_u64le(const uint8_t *p)
{
	return (uint64_t) get_u32le(p) | ((uint64_t) get_u32le(p + 4) << 32);
}

static void
put_u64le(uint8_t *p, uint64_t v)
{
	put_u32le(p, (uint32_t) v);
	put_u32le(p + 4, (uint32_t) (v >> 32));
}

/*
 * memcpy/memcmp with a NULL pointer are undefined even for length 0, and
 * callers legitimately pass (NULL, 0) for empty keys and values.
 */
static void
copy_bytes(uint8_t *dst, const uint8_t *src, size_t len)
{
	if (len > 0)
		memcpy(dst, src, len);
}

static int
same_bytes(const uint8_t *a, const uint8_t *b, size_t len)
{
	return len == 0 || memcmp(a, b, len) == 0;
}

const char *
slc_status_message(slc_status st)
{
	switch (st)
	{
		case SLC_OK:
			return "no error";
		case SLC_ERR_EMPTY:
			return "delta is empty";
		case SLC_ERR_VERSION:
			return "unrecognized delta version";
		case SLC_ERR_TRUNCATED:
			return "delta ends inside a header or length field";
		case SLC_ERR_LENGTH:
			return "a key or value runs past the end of the delta";
		case SLC_ERR_KEY_TOO_LONG:
			return "key longer than 1024 bytes";
		case SLC_ERR_VALUE_TOO_LONG:
			return "value too long";
		case SLC_ERR_TRAILING:
			return "trailing bytes after the last change";
		case SLC_ERR_DUPLICATE_KEY:
			return "duplicate key";
		case SLC_ERR_TOO_MANY:
			return "too many changes";
		case SLC_ERR_HASH_FORMAT:
			return "malformed snapshot hash";
		case SLC_ERR_NOMEM:
			return "out of memory";
		case SLC_ERR_CODEC:
			return "unsupported compression codec";
		case SLC_ERR_RAW_LEN:
			return "uncompressed length out of range";
		case SLC_ERR_COMPRESSED:
			return "compressed data is corrupt or does not match its length";
	}
	/* a value outside the enum, e.g. from a newer peer */
	return "unrecognized status";
}

/* ---------------------------------------------------------------------
 * Delta codec
 * ---------------------------------------------------------------------
 */
slc_status
slc_delta_reader_init(slc_delta_reader *r, const uint8_t *buf, size_t len,
					  uint32_t max_changes)
{
	/*
	 * Until the header is known good, leave the reader with nothing
	 * announced and the cursor at 0, so a caller that ignores the error
	 * and calls slc_delta_next() anyway gets an error, not a change.
	 */
	r->buf = buf;
	r->len = len;
	r->pos = 0;
	r->count = 0;
	r->done = 0;

	if (len == 0)
		return SLC_ERR_EMPTY;
	if (buf[0] != SLC_DELTA_VERSION)
		return SLC_ERR_VERSION;
	if (len < SLC_DELTA_HEADER_LEN)
		return SLC_ERR_TRUNCATED;
	if (get_u32le(buf + 1) > max_changes)
		return SLC_ERR_TOO_MANY;

	r->count = get_u32le(buf + 1);
	r->pos = SLC_DELTA_HEADER_LEN;
	return SLC_OK;
}

/* See synclog_core.h: the announced changes left, capped by the bytes left. */
uint32_t
slc_delta_reader_room(const slc_delta_reader *r)
{
	/* pos <= len and done <= count always hold */
	size_t		fit = (r->len - r->pos) / SLC_CHANGE_MIN_LEN;
	uint32_t	left = r->count - r->done;

	return fit < left ? (uint32_t) fit : left;
}

/*
 * On error the reader does not move, *out is not touched and *err_offset
 * is the offset of the length field at fault (for TRAILING: of the first
 * surplus byte).  *out is also untouched when *has_more comes back 0, so a
 * caller may pass a pointer one past its array of count changes.
 */
slc_status
slc_delta_next(slc_delta_reader *r, slc_change *out, int *has_more,
			   size_t *err_offset)
{
	size_t		pos = r->pos;
	size_t		len = r->len;
	size_t		field;			/* offset of the field being checked */
	uint32_t	klen;
	uint32_t	vlen;
	const uint8_t *key;
	const uint8_t *val;
	slc_status	st;

	*has_more = 0;

	if (r->done >= r->count)
	{
		if (pos < len)
		{
			field = pos;
			st = SLC_ERR_TRAILING;
			goto fail;
		}
		return SLC_OK;
	}

	/* pos <= len always holds, so len - pos cannot wrap */
	field = pos;
	if (len - pos < 4)
	{
		st = SLC_ERR_TRUNCATED;
		goto fail;
	}
	klen = get_u32le(r->buf + pos);
	pos += 4;

	/*
	 * The limit is checked before the bounds: a 4 GB length in a short
	 * buffer is first of all an oversized key, and reporting it that way
	 * does not depend on how much of the delta happened to arrive.
	 */
	if (klen > SLC_KEY_MAX)
	{
		st = SLC_ERR_KEY_TOO_LONG;
		goto fail;
	}
	if (len - pos < klen)
	{
		st = SLC_ERR_LENGTH;
		goto fail;
	}
	key = r->buf + pos;
	pos += klen;

	field = pos;
	if (len - pos < 4)
	{
		st = SLC_ERR_TRUNCATED;
		goto fail;
	}
	vlen = get_u32le(r->buf + pos);
	pos += 4;

	if (vlen == SLC_DELETE_MARK)
		val = NULL;
	else
	{
		if (vlen > SLC_VALUE_MAX)
		{
			st = SLC_ERR_VALUE_TOO_LONG;
			goto fail;
		}
		if (len - pos < vlen)
		{
			st = SLC_ERR_LENGTH;
			goto fail;
		}
		/* points into the buffer even when vlen is 0: NULL means deleted */
		val = r->buf + pos;
		pos += vlen;
	}

	out->key = key;
	out->klen = klen;
	out->val = val;
	out->vlen = val ? vlen : 0;
	out->is_delete = (val == NULL);
	r->pos = pos;
	r->done++;
	*has_more = 1;
	return SLC_OK;

fail:
	if (err_offset)
		*err_offset = field;
	return st;
}

slc_status
slc_delta_validate(const uint8_t *buf, size_t len, uint32_t max_changes,
				   uint32_t *n_changes, size_t *err_offset)
{
	slc_delta_reader r;
	slc_change	c;
	slc_status	st;
	int			more = 1;

	st = slc_delta_reader_init(&r, buf, len, max_changes);
	if (st != SLC_OK)
	{
		/* EMPTY and VERSION are about byte 0; the rest about the count */
		if (err_offset)
			*err_offset = (st == SLC_ERR_EMPTY || st == SLC_ERR_VERSION) ? 0 : 1;
		return st;
	}
	while (more)
	{
		st = slc_delta_next(&r, &c, &more, err_offset);
		if (st != SLC_OK)
			return st;
	}
	if (n_changes)
		*n_changes = r.count;
	return SLC_OK;
}

/*
 * Order on change indexes: (klen, key bytes), ties broken by index so the
 * order is total and the result does not depend on the sort's stability.
 */
static int
change_index_cmp(const slc_change *changes, uint32_t a, uint32_t b)
{
	const slc_change *ca = &changes[a];
	const slc_change *cb = &changes[b];
	int			c;

	if (ca->klen != cb->klen)
		return ca->klen < cb->klen ? -1 : 1;
	if (ca->klen > 0)
	{
		c = memcmp(ca->key, cb->key, ca->klen);
		if (c != 0)
			return c;
	}
	if (a != b)
		return a < b ? -1 : 1;
	return 0;
}

/*
 * Restore the max-heap property below idx in idx[0..n).  Iterative, and
 * written so child indexes never overflow even for n near UINT32_MAX.
 */
static void
sift_down(const slc_change *changes, uint32_t *idx, uint32_t root, uint32_t n)
{
	uint32_t	child;
	uint32_t	tmp;

	while (n >= 2 && root <= (n - 2) / 2)
	{
		child = 2 * root + 1;
		if (child + 1 < n &&
			change_index_cmp(changes, idx[child], idx[child + 1]) < 0)
			child++;
		if (change_index_cmp(changes, idx[root], idx[child]) >= 0)
			return;
		tmp = idx[root];
		idx[root] = idx[child];
		idx[child] = tmp;
		root = child;
	}
}

/* Heap sort: O(n log n) worst case, no recursion, no extra memory. */
static void
sort_change_indexes(const slc_change *changes, uint32_t *idx, uint32_t n)
{
	uint32_t	i;
	uint32_t	end;
	uint32_t	tmp;

	if (n < 2)
		return;
	for (i = n / 2; i > 0; i--)
		sift_down(changes, idx, i - 1, n);
	for (end = n - 1; end > 0; end--)
	{
		tmp = idx[0];
		idx[0] = idx[end];
		idx[end] = tmp;
		sift_down(changes, idx, 0, end);
	}
}

slc_status
slc_delta_find_duplicate(const slc_change *changes, uint32_t n,
						 uint32_t *scratch, uint32_t *dup_index)
{
	uint32_t	i;

	if (n < 2)
		return SLC_OK;
	for (i = 0; i < n; i++)
		scratch[i] = i;
	sort_change_indexes(changes, scratch, n);

	/* equal keys are now adjacent, in increasing index order */
	for (i = 1; i < n; i++)
	{
		const slc_change *a = &changes[scratch[i - 1]];
		const slc_change *b = &changes[scratch[i]];

		if (a->klen == b->klen && same_bytes(a->key, b->key, a->klen))
		{
			if (dup_index)
				*dup_index = scratch[i];
			return SLC_ERR_DUPLICATE_KEY;
		}
	}
	return SLC_OK;
}

/* Saturates at SIZE_MAX so an impossible size fails the caller's malloc. */
size_t
slc_delta_encoded_size(const slc_change *changes, uint32_t n)
{
	size_t		size = SLC_DELTA_HEADER_LEN;
	size_t		one;
	uint32_t	i;

	for (i = 0; i < n; i++)
	{
		one = (size_t) 8 + changes[i].klen;
		if (one < changes[i].klen)
			return SIZE_MAX;
		if (!changes[i].is_delete)
		{
			if (SIZE_MAX - one < changes[i].vlen)
				return SIZE_MAX;
			one += changes[i].vlen;
		}
		if (SIZE_MAX - size < one)
			return SIZE_MAX;
		size += one;
	}
	return size;
}

size_t
slc_delta_encode(const slc_change *changes, uint32_t n, uint8_t *out)
{
	size_t		pos = 0;
	uint32_t	i;

	out[pos++] = SLC_DELTA_VERSION;
	put_u32le(out + pos, n);
	pos += 4;
	for (i = 0; i < n; i++)
	{
		const slc_change *c = &changes[i];

		put_u32le(out + pos, c->klen);
		pos += 4;
		copy_bytes(out + pos, c->key, c->klen);
		pos += c->klen;
		if (c->is_delete)
		{
			put_u32le(out + pos, SLC_DELETE_MARK);
			pos += 4;
		}
		else
		{
			put_u32le(out + pos, c->vlen);
			pos += 4;
			copy_bytes(out + pos, c->val, c->vlen);
			pos += c->vlen;
		}
	}
	return pos;
}

/* ---------------------------------------------------------------------
 * Snapshot hash
 * ---------------------------------------------------------------------
 */
void
slc_hash_init(slc_hash *h)
{
	h->sum_lo = 0;
	h->sum_hi = 0;
	h->count = 0;
	h->bytes = 0;
}

/*
 * The bucket of an item: the top SLC_BUCKET_BITS bits of an XXH3-64 over
 * the same prefix as the item hash (ns, key length) and the key, so a
 * bucket never depends on the value.  Keys are at most SLC_KEY_MAX bytes
 * on the wire; a longer one is hashed through the streaming API all the
 * same, so the function is total.
 */
uint32_t
slc_bucket(uint8_t ns, const uint8_t *key, size_t klen)
{
	uint8_t		buf[5 + SLC_KEY_MAX];
	uint64_t	h;

	buf[0] = ns;
	put_u32le(buf + 1, (uint32_t) klen);
	if (klen <= SLC_KEY_MAX)
	{
		if (klen > 0)
			memcpy(buf + 5, key, klen);
		h = XXH3_64bits(buf, 5 + klen);
	}
	else
	{
		XXH3_state_t st;

		XXH3_64bits_reset(&st);
		XXH3_64bits_update(&st, buf, 5);
		XXH3_64bits_update(&st, key, klen);
		h = XXH3_64bits_digest(&st);
	}
	return (uint32_t) (h >> (64 - SLC_BUCKET_BITS));
}

/*
 * klen goes on the wire as u32; protocol keys are at most SLC_KEY_MAX, so
 * the cast only matters for a caller hashing a >4 GB key, which the format
 * cannot express anyway.
 */
void
slc_item_hash(uint8_t ns, const uint8_t *key, size_t klen,
			  const uint8_t *val, size_t vlen,
			  uint64_t *lo, uint64_t *hi)
{
	uint8_t		head[5];
	XXH128_hash_t d;

	head[0] = ns;
	put_u32le(head + 1, (uint32_t) klen);

	if (klen <= ITEM_ONESHOT_MAX - sizeof(head) &&
		vlen <= ITEM_ONESHOT_MAX - sizeof(head) - klen)
	{
		uint8_t		buf[ITEM_ONESHOT_MAX];

		memcpy(buf, head, sizeof(head));
		copy_bytes(buf + sizeof(head), key, klen);
		copy_bytes(buf + sizeof(head) + klen, val, vlen);
		d = XXH3_128bits(buf, sizeof(head) + klen + vlen);
	}
	else
	{
		XXH3_state_t st;

		/* with the default secret and a stack state these cannot fail */
		(void) XXH3_128bits_reset(&st);
		(void) XXH3_128bits_update(&st, head, sizeof(head));
		if (klen > 0)
			(void) XXH3_128bits_update(&st, key, klen);
		if (vlen > 0)
			(void) XXH3_128bits_update(&st, val, vlen);
		d = XXH3_128bits_digest(&st);
	}
	*lo = d.low64;
	*hi = d.high64;
}

/* sum += (hi:lo) modulo 2^128, carrying from the low half into the high. */
static void
hash_add128(slc_hash *h, uint64_t lo, uint64_t hi)
{
	h->sum_lo += lo;
	h->sum_hi += hi + (h->sum_lo < lo);
}

/* sum -= (hi:lo) modulo 2^128, borrowing from the high half. */
static void
hash_sub128(slc_hash *h, uint64_t lo, uint64_t hi)
{
	uint64_t	borrow = (h->sum_lo < lo);

	h->sum_lo -= lo;
	h->sum_hi -= hi + borrow;
}

void
slc_hash_add(slc_hash *h, uint8_t ns, const uint8_t *key, size_t klen,
			 const uint8_t *val, size_t vlen)
{
	uint64_t	lo;
	uint64_t	hi;

	slc_item_hash(ns, key, klen, val, vlen, &lo, &hi);
	hash_add128(h, lo, hi);
	h->count++;
	h->bytes += (uint64_t) klen + (uint64_t) vlen;
}

void
slc_hash_remove(slc_hash *h, uint8_t ns, const uint8_t *key, size_t klen,
				const uint8_t *val, size_t vlen)
{
	uint64_t	lo;
	uint64_t	hi;

	slc_item_hash(ns, key, klen, val, vlen, &lo, &hi);
	hash_sub128(h, lo, hi);
	h->count--;
	h->bytes -= (uint64_t) klen + (uint64_t) vlen;
}

void
slc_hash_add_item(slc_hash *h, uint64_t lo, uint64_t hi, uint64_t item_bytes)
{
	hash_add128(h, lo, hi);
	h->count++;
	h->bytes += item_bytes;
}

void
slc_hash_remove_item(slc_hash *h, uint64_t lo, uint64_t hi, uint64_t item_bytes)
{
	hash_sub128(h, lo, hi);
	h->count--;
	h->bytes -= item_bytes;
}

void
slc_hash_replace(slc_hash *h, uint8_t ns, const uint8_t *key, size_t klen,
				 const uint8_t *old_val, size_t old_vlen,
				 const uint8_t *new_val, size_t new_vlen)
{
	/* rewriting a key with its current value is common; skip two hashes */
	if (old_val != NULL && new_val != NULL && old_vlen == new_vlen &&
		same_bytes(old_val, new_val, old_vlen))
		return;
	if (old_val != NULL)
		slc_hash_remove(h, ns, key, klen, old_val, old_vlen);
	if (new_val != NULL)
		slc_hash_add(h, ns, key, klen, new_val, new_vlen);
}

void
slc_hash_combine(slc_hash *h, const slc_hash *other)
{
	hash_add128(h, other->sum_lo, other->sum_hi);
	h->count += other->count;
	h->bytes += other->bytes;
}

void
slc_hash_serialize(const slc_hash *h, uint8_t out[SLC_HASH_LEN])
{
	out[0] = SLC_HASH_ALGO_XXH3SUM;
	put_u64le(out + 1, h->sum_lo);
	put_u64le(out + 9, h->sum_hi);
	put_u64le(out + 17, h->count);
	put_u64le(out + 25, h->bytes);
}

slc_status
slc_hash_parse(const uint8_t *buf, size_t len, slc_hash *out)
{
	if (len != SLC_HASH_LEN || buf[0] != SLC_HASH_ALGO_XXH3SUM)
		return SLC_ERR_HASH_FORMAT;
	out->sum_lo = get_u64le(buf + 1);
	out->sum_hi = get_u64le(buf + 9);
	out->count = get_u64le(buf + 17);
	out->bytes = get_u64le(buf + 25);
	return SLC_OK;
}

int
slc_hash_equal(const slc_hash *a, const slc_hash *b)
{
	return a->sum_lo == b->sum_lo && a->sum_hi == b->sum_hi &&
		a->count == b->count && a->bytes == b->bytes;
}

/* Unsigned <-> signed by value: right shifts and casts of negatives are
 * implementation-defined in C99, two's complement on the wire is not. */
void
slc_watermark_encode(int64_t seq, int64_t lsn, uint8_t out[SLC_WATERMARK_LEN])
{
	put_u64le(out, (uint64_t) seq);
	put_u64le(out + 8, (uint64_t) lsn);
}

/* Two's complement reading of a u64, without implementation-defined casts. */
static int64_t
u64_to_i64(uint64_t u)
{
	if (u <= (uint64_t) INT64_MAX)
		return (int64_t) u;
	/* u = 2^64 - m with 1 <= m <= 2^63; ~u = m - 1 fits in int64 */
	return -(int64_t) (~u) - 1;
}

void
slc_watermark_decode(const uint8_t in[SLC_WATERMARK_LEN],
					 int64_t *seq, int64_t *lsn)
{
	*seq = u64_to_i64(get_u64le(in));
	*lsn = u64_to_i64(get_u64le(in + 8));
}

/* ---------------------------------------------------------------------
 * In-memory state: open addressing with linear probing and backward-shift
 * deletion (no tombstones, so lookups stay short after heavy churn).  Each
 * item is one malloc block holding key and value; replacing a value swaps
 * in a new block, which is what lets apply_entry allocate everything before
 * it changes anything.
 * ---------------------------------------------------------------------
 */
typedef struct slc_item
{
	size_t		klen;
	size_t		vlen;
	uint8_t		ns;
	uint8_t		data[];			/* key bytes, then value bytes */
} slc_item;

typedef struct slc_slot
{
	uint64_t	hash;			/* key hash, kept to skip most compares */
	slc_item   *item;			/* NULL: empty slot */
} slc_slot;

struct slc_state
{
	slc_slot   *slots;
	size_t		mask;			/* slot count - 1; slot count is 2^k */
	size_t		count;
	slc_hash	hash;
};

/* Seeding with the namespace keeps equal keys of different ns apart. */
static uint64_t
key_hash(uint8_t ns, const uint8_t *key, size_t klen)
{
	return XXH3_64bits_withSeed(key, klen, ns);
}

/* One malloc'd item holding copies of key and value; NULL on overflow or OOM. */
static slc_item *
item_new(uint8_t ns, const uint8_t *key, size_t klen,
		 const uint8_t *val, size_t vlen)
{
	slc_item   *it;

	if (klen > SIZE_MAX - sizeof(slc_item) ||
		vlen > SIZE_MAX - sizeof(slc_item) - klen)
		return NULL;
	it = malloc(sizeof(slc_item) + klen + vlen);
	if (it == NULL)
		return NULL;
	it->klen = klen;
	it->vlen = vlen;
	it->ns = ns;
	copy_bytes(it->data, key, klen);
	copy_bytes(it->data + klen, val, vlen);
	return it;
}

/* Whether the item is (ns, key). */
static int
item_matches(const slc_item *it, uint8_t ns, const uint8_t *key, size_t klen)
{
	return it->ns == ns && it->klen == klen && same_bytes(it->data, key, klen);
}

/*
 * Slot holding (ns, key), or the empty slot where it would go.  Terminates
 * because the load factor is kept below 1.
 */
static size_t
state_find(const slc_state *s, uint64_t h, uint8_t ns, const uint8_t *key,
		   size_t klen, int *found)
{
	size_t		i = (size_t) h & s->mask;

	for (;;)
	{
		const slc_slot *slot = &s->slots[i];

		if (slot->item == NULL)
		{
			*found = 0;
			return i;
		}
		if (slot->hash == h && item_matches(slot->item, ns, key, klen))
		{
			*found = 1;
			return i;
		}
		i = (i + 1) & s->mask;
	}
}

/*
 * Make room for `extra` more items at a load factor of at most 3/4.  On
 * failure nothing has changed.
 */
static slc_status
state_reserve(slc_state *s, size_t extra)
{
	size_t		cap = s->mask + 1;
	size_t		need;
	size_t		newcap;
	size_t		newmask;
	slc_slot   *slots;
	size_t		i;

	if (extra > SIZE_MAX - s->count)
		return SLC_ERR_NOMEM;
	need = s->count + extra;
	if (need <= cap - cap / 4)
		return SLC_OK;

	newcap = cap;
	while (need > newcap - newcap / 4)
	{
		if (newcap > SIZE_MAX / 2 / sizeof(slc_slot))
			return SLC_ERR_NOMEM;
		newcap *= 2;
	}
	slots = calloc(newcap, sizeof(slc_slot));
	if (slots == NULL)
		return SLC_ERR_NOMEM;

	newmask = newcap - 1;
	for (i = 0; i < cap; i++)
	{
		size_t		j;

		if (s->slots[i].item == NULL)
			continue;
		j = (size_t) s->slots[i].hash & newmask;
		while (slots[j].item != NULL)
			j = (j + 1) & newmask;
		slots[j] = s->slots[i];
	}
	free(s->slots);
	s->slots = slots;
	s->mask = newmask;
	return SLC_OK;
}

/*
 * Put an item whose key hash is h into the map, taking ownership of it.
 * The caller has reserved room, so this cannot fail.
 */
static void
state_install(slc_state *s, slc_item *it, uint64_t h)
{
	int			found;
	size_t		i = state_find(s, h, it->ns, it->data, it->klen, &found);

	if (found)
	{
		slc_item   *old = s->slots[i].item;

		slc_hash_replace(&s->hash, it->ns, it->data, it->klen,
						 old->data + old->klen, old->vlen,
						 it->data + it->klen, it->vlen);
		free(old);
		s->slots[i].item = it;
	}
	else
	{
		s->slots[i].hash = h;
		s->slots[i].item = it;
		s->count++;
		slc_hash_add(&s->hash, it->ns, it->data, it->klen,
					 it->data + it->klen, it->vlen);
	}
}

/* Delete (ns, key) if present.  Never allocates. */
static void
state_delete(slc_state *s, uint8_t ns, const uint8_t *key, size_t klen)
{
	int			found;
	size_t		i = state_find(s, key_hash(ns, key, klen), ns, key, klen, &found);
	size_t		j;
	slc_item   *old;

	if (!found)
		return;
	old = s->slots[i].item;
	slc_hash_remove(&s->hash, ns, old->data, old->klen,
					old->data + old->klen, old->vlen);
	free(old);
	s->count--;

	/*
	 * Backward shift: pull later members of the probe run into the hole
	 * unless their home slot lies cyclically in (hole, j], where moving
	 * them would put them before their home.
	 */
	j = i;
	for (;;)
	{
		size_t		home;

		j = (j + 1) & s->mask;
		if (s->slots[j].item == NULL)
			break;
		home = (size_t) s->slots[j].hash & s->mask;
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		s->slots[i] = s->slots[j];
		i = j;
	}
	s->slots[i].item = NULL;
	s->slots[i].hash = 0;
}

slc_state *
slc_state_new(void)
{
	slc_state  *s = malloc(sizeof(slc_state));

	if (s == NULL)
		return NULL;
	s->slots = calloc(STATE_INITIAL_SLOTS, sizeof(slc_slot));
	if (s->slots == NULL)
	{
		free(s);
		return NULL;
	}
	s->mask = STATE_INITIAL_SLOTS - 1;
	s->count = 0;
	slc_hash_init(&s->hash);
	return s;
}

void
slc_state_free(slc_state *s)
{
	size_t		i;

	if (s == NULL)
		return;
	for (i = 0; i <= s->mask; i++)
		free(s->slots[i].item);
	free(s->slots);
	free(s);
}

slc_status
slc_state_put(slc_state *s, uint8_t ns, const uint8_t *key, size_t klen,
			  const uint8_t *val, size_t vlen)
{
	uint64_t	h;
	slc_item   *it;
	int			found;
	slc_status	st;

	if (val == NULL)
	{
		state_delete(s, ns, key, klen);
		return SLC_OK;
	}
	h = key_hash(ns, key, klen);
	it = item_new(ns, key, klen, val, vlen);
	if (it == NULL)
		return SLC_ERR_NOMEM;
	(void) state_find(s, h, ns, key, klen, &found);
	if (!found)
	{
		st = state_reserve(s, 1);
		if (st != SLC_OK)
		{
			free(it);
			return st;
		}
	}
	state_install(s, it, h);
	return SLC_OK;
}

slc_status
slc_state_apply_entry(slc_state *s, const uint8_t *delta, size_t delta_len,
					  int64_t lsn, const char *client_id,
					  size_t client_id_len, int64_t client_seq)
{
	slc_status	st;
	uint32_t	n;
	uint32_t	i;
	size_t		nfresh;
	size_t		nsets = 0;
	slc_change *changes = NULL;
	uint32_t   *scratch = NULL;
	slc_item  **fresh = NULL;	/* new item per set change, then watermark */
	slc_delta_reader r;
	int			more;

	st = slc_delta_validate(delta, delta_len, UINT32_MAX, &n, NULL);
	if (st != SLC_OK)
		return st;

	/*
	 * A valid delta spends at least SLC_CHANGE_MIN_LEN bytes per change, so
	 * n + 1 cannot wrap a size_t; calloc checks the multiplications.
	 */
	nfresh = (size_t) n + 1;
	changes = calloc(nfresh, sizeof(slc_change));
	fresh = calloc(nfresh, sizeof(slc_item *));
	if (changes == NULL || fresh == NULL)
	{
		st = SLC_ERR_NOMEM;
		goto done;
	}
	(void) slc_delta_reader_init(&r, delta, delta_len, UINT32_MAX);
	for (i = 0; i < n; i++)
	{
		st = slc_delta_next(&r, &changes[i], &more, NULL);
		if (st != SLC_OK || !more)
		{
			/* validated above, so this is unreachable */
			st = (st != SLC_OK) ? st : SLC_ERR_TRUNCATED;
			goto done;
		}
	}

	if (n >= 2)
	{
		scratch = malloc(sizeof(uint32_t) * (size_t) n);
		if (scratch == NULL)
		{
			st = SLC_ERR_NOMEM;
			goto done;
		}
		st = slc_delta_find_duplicate(changes, n, scratch, NULL);
		free(scratch);
		scratch = NULL;
		if (st != SLC_OK)
			goto done;
	}

	/* everything that can fail happens before the first change */
	for (i = 0; i < n; i++)
	{
		if (changes[i].is_delete)
			continue;
		fresh[i] = item_new(SLC_NS_DATA, changes[i].key, changes[i].klen,
							changes[i].val, changes[i].vlen);
		if (fresh[i] == NULL)
		{
			st = SLC_ERR_NOMEM;
			goto done;
		}
		nsets++;
	}
	if (client_id != NULL && client_seq != SLC_RETIRE_SEQ)
	{
		uint8_t		wm[SLC_WATERMARK_LEN];

		slc_watermark_encode(client_seq, lsn, wm);
		fresh[n] = item_new(SLC_NS_CLIENT, (const uint8_t *) client_id,
							client_id_len, wm, SLC_WATERMARK_LEN);
		if (fresh[n] == NULL)
		{
			st = SLC_ERR_NOMEM;
			goto done;
		}
		nsets++;
	}
	st = state_reserve(s, nsets);
	if (st != SLC_OK)
		goto done;

	for (i = 0; i < n; i++)
	{
		if (changes[i].is_delete)
			state_delete(s, SLC_NS_DATA, changes[i].key, changes[i].klen);
		else
		{
			slc_item   *it = fresh[i];

			fresh[i] = NULL;
			state_install(s, it, key_hash(it->ns, it->data, it->klen));
		}
	}
	if (fresh[n] != NULL)
	{
		slc_item   *it = fresh[n];

		fresh[n] = NULL;
		state_install(s, it, key_hash(it->ns, it->data, it->klen));
	}
	else if (client_id != NULL)
	{
		/* a retire entry: the watermark goes (deleting never allocates) */
		state_delete(s, SLC_NS_CLIENT, (const uint8_t *) client_id,
					 client_id_len);
	}
	st = SLC_OK;

done:
	if (fresh != NULL)
	{
		size_t		k;

		for (k = 0; k < nfresh; k++)
			free(fresh[k]);
		free(fresh);
	}
	free(scratch);
	free(changes);
	return st;
}

int
slc_state_get(const slc_state *s, uint8_t ns, const uint8_t *key,
			  size_t klen, const uint8_t **val, size_t *vlen)
{
	int			found;
	size_t		i = state_find(s, key_hash(ns, key, klen), ns, key, klen, &found);
	const slc_item *it;

	if (!found)
		return 0;
	it = s->slots[i].item;
	if (val)
		*val = it->data + it->klen;
	if (vlen)
		*vlen = it->vlen;
	return 1;
}

const slc_hash *
slc_state_hash(const slc_state *s)
{
	return &s->hash;
}

size_t
slc_state_count(const slc_state *s)
{
	return s->count;
}

void
slc_state_rehash(const slc_state *s, slc_hash *out)
{
	size_t		i;

	slc_hash_init(out);
	for (i = 0; i <= s->mask; i++)
	{
		const slc_item *it = s->slots[i].item;

		if (it != NULL)
			slc_hash_add(out, it->ns, it->data, it->klen,
						 it->data + it->klen, it->vlen);
	}
}

/* The callback must not change the state it is visiting. */
int
slc_state_foreach(const slc_state *s, slc_state_visit_fn fn, void *arg)
{
	size_t		i;
	int			rc;

	for (i = 0; i <= s->mask; i++)
	{
		const slc_item *it = s->slots[i].item;

		if (it == NULL)
			continue;
		rc = fn(arg, it->ns, it->data, it->klen, it->data + it->klen, it->vlen);
		if (rc != 0)
			return rc;
	}
	return 0;
}
