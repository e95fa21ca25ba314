/*
 * fuzz_hash.c
 *
 * libFuzzer target for the snapshot hash of src/core: slc_hash_parse on
 * arbitrary bytes, and the hash algebra on items cut from the input.
 *
 *  - slc_hash_parse accepts exactly 33 bytes starting with algorithm 1,
 *    and then re-serializes to the same bytes; anything else is
 *    SLC_ERR_HASH_FORMAT.
 *  - The rest of the input is cut into items (u8 ns, u16le klen, u16le
 *    vlen, then the bytes, lengths clipped to what is left).  Each item's
 *    slc_item_hash equals XXH3_128bits of ns || u32le(klen) || key || value
 *    computed here in one piece (so the core's one-shot/streaming split at
 *    512 bytes is checked against a single call); adding all items and
 *    removing them again, in another order, returns the parsed hash;
 *    combining is commutative; slc_hash_replace equals remove + add;
 *    slc_hash_add_item / slc_hash_remove_item with the item's hash and
 *    klen + vlen equal slc_hash_add / slc_hash_remove.
 *  - The first 16 bytes round-trip through the watermark codec.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "synclog_core.h"

#define MAX_ITEMS	64

#define ASSERT(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_hash: invariant broken at %s:%d: %s\n", \
					__FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

typedef struct
{
	uint8_t		ns;
	const uint8_t *key;
	size_t		klen;
	const uint8_t *val;
	size_t		vlen;
} item;

static void
item_hash_direct(const item *it, uint64_t *lo, uint64_t *hi)
{
	size_t		len = 5 + it->klen + it->vlen;
	uint8_t    *buf = malloc(len);
	XXH128_hash_t d;

	ASSERT(buf != NULL);
	buf[0] = it->ns;
	buf[1] = (uint8_t) it->klen;
	buf[2] = (uint8_t) (it->klen >> 8);
	buf[3] = (uint8_t) (it->klen >> 16);
	buf[4] = (uint8_t) (it->klen >> 24);
	if (it->klen > 0)
		memcpy(buf + 5, it->key, it->klen);
	if (it->vlen > 0)
		memcpy(buf + 5 + it->klen, it->val, it->vlen);
	d = XXH3_128bits(buf, len);
	free(buf);
	*lo = d.low64;
	*hi = d.high64;
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t    *exact = malloc(size > 0 ? size : 1);
	slc_hash	base;
	slc_hash	h;
	slc_hash	other;
	slc_hash	ab;
	slc_hash	ba;
	slc_status	st;
	item		items[MAX_ITEMS];
	size_t		n = 0;
	size_t		pos;
	size_t		i;

	ASSERT(exact != NULL);
	if (size > 0)
		memcpy(exact, data, size);

	/* parse: exact length and algorithm, and a faithful round trip */
	slc_hash_init(&base);
	st = slc_hash_parse(exact, size, &base);
	if (size == SLC_HASH_LEN && exact[0] == SLC_HASH_ALGO_XXH3SUM)
	{
		uint8_t		ser[SLC_HASH_LEN];

		ASSERT(st == SLC_OK);
		slc_hash_serialize(&base, ser);
		ASSERT(memcmp(ser, exact, SLC_HASH_LEN) == 0);
	}
	else
	{
		ASSERT(st == SLC_ERR_HASH_FORMAT);
		slc_hash_init(&base);
	}
	/* the first 33 bytes of a longer input, on their own */
	if (size > SLC_HASH_LEN)
		ASSERT(slc_hash_parse(exact, SLC_HASH_LEN, &other) ==
			   (exact[0] == SLC_HASH_ALGO_XXH3SUM ? SLC_OK : SLC_ERR_HASH_FORMAT));

	/* watermarks: any 16 bytes decode and encode back */
	if (size >= SLC_WATERMARK_LEN)
	{
		int64_t		seq;
		int64_t		lsn;
		uint8_t		wm[SLC_WATERMARK_LEN];

		slc_watermark_decode(exact, &seq, &lsn);
		slc_watermark_encode(seq, lsn, wm);
		ASSERT(memcmp(wm, exact, SLC_WATERMARK_LEN) == 0);
	}

	/* cut items from the input */
	pos = 0;
	while (n < MAX_ITEMS && size - pos >= 5)
	{
		item	   *it = &items[n++];
		size_t		klen = (size_t) exact[pos + 1] | ((size_t) exact[pos + 2] << 8);
		size_t		vlen = (size_t) exact[pos + 3] | ((size_t) exact[pos + 4] << 8);

		it->ns = exact[pos];
		pos += 5;
		if (klen > size - pos)
			klen = size - pos;
		it->key = exact + pos;
		it->klen = klen;
		pos += klen;
		if (vlen > size - pos)
			vlen = size - pos;
		it->val = exact + pos;
		it->vlen = vlen;
		pos += vlen;
	}

	/* item hash against one direct XXH3 call */
	for (i = 0; i < n; i++)
	{
		uint64_t	lo1,
					hi1,
					lo2,
					hi2;

		slc_item_hash(items[i].ns, items[i].key, items[i].klen,
					  items[i].val, items[i].vlen, &lo1, &hi1);
		item_hash_direct(&items[i], &lo2, &hi2);
		ASSERT(lo1 == lo2 && hi1 == hi2);
	}

	/* add all, remove all in reverse: back to base */
	h = base;
	for (i = 0; i < n; i++)
		slc_hash_add(&h, items[i].ns, items[i].key, items[i].klen,
					 items[i].val, items[i].vlen);
	ASSERT(h.count == base.count + n);
	/* the sum of the items, separately, combines to the same */
	slc_hash_init(&other);
	for (i = n; i > 0; i--)
		slc_hash_add(&other, items[i - 1].ns, items[i - 1].key,
					 items[i - 1].klen, items[i - 1].val, items[i - 1].vlen);
	ab = base;
	slc_hash_combine(&ab, &other);
	ba = other;
	slc_hash_combine(&ba, &base);
	ASSERT(slc_hash_equal(&ab, &h));
	ASSERT(slc_hash_equal(&ba, &h));
	for (i = n; i > 0; i--)
		slc_hash_remove(&h, items[i - 1].ns, items[i - 1].key,
						items[i - 1].klen, items[i - 1].val, items[i - 1].vlen);
	ASSERT(slc_hash_equal(&h, &base));

	/* the same with item hashes computed up front */
	h = base;
	for (i = 0; i < n; i++)
	{
		uint64_t	lo,
					hi;
		slc_hash	ref = h;

		slc_item_hash(items[i].ns, items[i].key, items[i].klen,
					  items[i].val, items[i].vlen, &lo, &hi);
		slc_hash_add(&ref, items[i].ns, items[i].key, items[i].klen,
					 items[i].val, items[i].vlen);
		slc_hash_add_item(&h, lo, hi, (uint64_t) items[i].klen + items[i].vlen);
		ASSERT(slc_hash_equal(&h, &ref));
	}
	for (i = 0; i < n; i++)
	{
		uint64_t	lo,
					hi;
		slc_hash	ref = h;

		slc_item_hash(items[i].ns, items[i].key, items[i].klen,
					  items[i].val, items[i].vlen, &lo, &hi);
		slc_hash_remove(&ref, items[i].ns, items[i].key, items[i].klen,
						items[i].val, items[i].vlen);
		slc_hash_remove_item(&h, lo, hi, (uint64_t) items[i].klen + items[i].vlen);
		ASSERT(slc_hash_equal(&h, &ref));
	}
	ASSERT(slc_hash_equal(&h, &base));

	/* replace(old -> new) is remove(old) + add(new), in all four cases */
	for (i = 0; i + 1 < n; i++)
	{
		const item *a = &items[i];
		const item *b = &items[i + 1];
		slc_hash	r = base;
		slc_hash	m = base;

		/* key of a, value moves from a's value to b's */
		slc_hash_replace(&r, a->ns, a->key, a->klen, a->val, a->vlen,
						 b->val, b->vlen);
		slc_hash_remove(&m, a->ns, a->key, a->klen, a->val, a->vlen);
		slc_hash_add(&m, a->ns, a->key, a->klen, b->val, b->vlen);
		ASSERT(slc_hash_equal(&r, &m));

		r = base;
		m = base;
		slc_hash_replace(&r, a->ns, a->key, a->klen, NULL, 0, b->val, b->vlen);
		slc_hash_add(&m, a->ns, a->key, a->klen, b->val, b->vlen);
		ASSERT(slc_hash_equal(&r, &m));

		r = base;
		slc_hash_replace(&r, a->ns, a->key, a->klen, a->val, a->vlen, NULL, 0);
		slc_hash_add(&r, a->ns, a->key, a->klen, a->val, a->vlen);
		ASSERT(slc_hash_equal(&r, &base));

		r = base;
		slc_hash_replace(&r, a->ns, a->key, a->klen, NULL, 0, NULL, 0);
		ASSERT(slc_hash_equal(&r, &base));
	}

	free(exact);
	return 0;
}
