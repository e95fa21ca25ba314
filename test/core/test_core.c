/*
 * test_core.c
 *
 * Self-contained tests of src/core (no framework, no PostgreSQL): codec
 * errors with their exact offsets, duplicate detection, the hash algebra,
 * the in-memory state, a randomized equivalence test, and the pinned
 * protocol vectors.  Prints one line per test and a closing
 * "core: N passed, M failed"; exits non-zero when anything failed.
 *
 * Inputs under test are malloc'd at their exact length wherever a read past
 * the end is conceivable, so the sanitizer/valgrind builds catch overreads.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "synclog_core.h"
#include "vectors_def.h"

static int	test_failures;		/* failed checks in the current test */

#define CHECK(cond) \
	do { \
		if (!(cond)) \
			check_failed(__FILE__, __LINE__, #cond); \
	} while (0)

#define CHECK_EQ_U64(a, b) \
	do { \
		uint64_t	a_ = (uint64_t) (a); \
		uint64_t	b_ = (uint64_t) (b); \
		if (a_ != b_) \
		{ \
			check_failed(__FILE__, __LINE__, #a " == " #b); \
			fprintf(stderr, "      got %llu, want %llu\n", \
					(unsigned long long) a_, (unsigned long long) b_); \
		} \
	} while (0)

static void
check_failed(const char *file, int line, const char *what)
{
	fprintf(stderr, "    %s:%d: check failed: %s\n", file, line, what);
	test_failures++;
}

/* Fail the test and give up on it: for allocations the test relies on. */
#define REQUIRE(cond) \
	do { \
		if (!(cond)) \
		{ \
			check_failed(__FILE__, __LINE__, #cond); \
			return; \
		} \
	} while (0)

/*
 * Failing allocator.  The Makefile links with -Wl,--wrap=malloc,--wrap=calloc
 * so that every allocation in this binary, the core's included, comes
 * through here.  alloc_budget >= 0 lets that many allocations succeed and
 * fails the next one, once: code that carries on after a failure then
 * finds memory again, which is what would expose a half-applied change.
 * The core may keep no globals; its tests may.
 */
static long alloc_budget = -1;

void	   *__real_malloc(size_t size);
void	   *__real_calloc(size_t n, size_t size);
void	   *__wrap_malloc(size_t size);
void	   *__wrap_calloc(size_t n, size_t size);

void *
__wrap_malloc(size_t size)
{
	if (alloc_budget == 0)
	{
		alloc_budget = -1;
		return NULL;
	}
	if (alloc_budget > 0)
		alloc_budget--;
	return __real_malloc(size);
}

void *
__wrap_calloc(size_t n, size_t size)
{
	if (alloc_budget == 0)
	{
		alloc_budget = -1;
		return NULL;
	}
	if (alloc_budget > 0)
		alloc_budget--;
	return __real_calloc(n, size);
}

/* ---------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------
 */

/* xorshift64*: deterministic across platforms, unlike rand(). */
static uint64_t
rng_next(uint64_t *st)
{
	uint64_t	x = *st;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*st = x;
	return x * UINT64_C(2685821657736338717);
}

static uint32_t
rng_below(uint64_t *st, uint32_t n)
{
	return (uint32_t) (rng_next(st) % n);
}

/* Copy into an exact-length heap block (NULL-safe for len 0). */
static uint8_t *
dup_exact(const uint8_t *src, size_t len)
{
	uint8_t    *p = malloc(len > 0 ? len : 1);

	if (p != NULL && len > 0)
		memcpy(p, src, len);
	return p;
}

static uint8_t *
hex_decode(const char *hex, size_t *len)
{
	size_t		n = strlen(hex) / 2;
	uint8_t    *out = malloc(n > 0 ? n : 1);
	size_t		i;

	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++)
	{
		unsigned int b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
		{
			free(out);
			return NULL;
		}
		out[i] = (uint8_t) b;
	}
	*len = n;
	return out;
}

/* Validate hex-given bytes (held at exact length) and report the result. */
static slc_status
validate_hex(const char *hex, uint32_t max_changes, uint32_t *n,
			 size_t *off)
{
	size_t		len = 0;
	uint8_t    *buf = hex_decode(hex, &len);
	slc_status	st;

	if (buf == NULL)
		return SLC_ERR_NOMEM;
	*off = (size_t) -1;
	st = slc_delta_validate(buf, len, max_changes, n, off);
	free(buf);
	return st;
}

static slc_change
set_change(const char *key, const char *val)
{
	slc_change	c;

	memset(&c, 0, sizeof(c));
	c.key = (const uint8_t *) key;
	c.klen = (uint32_t) strlen(key);
	c.val = (const uint8_t *) val;
	c.vlen = (uint32_t) strlen(val);
	return c;
}

static slc_change
del_change(const char *key)
{
	slc_change	c;

	memset(&c, 0, sizeof(c));
	c.key = (const uint8_t *) key;
	c.klen = (uint32_t) strlen(key);
	c.is_delete = 1;
	return c;
}

/* Encode into an exact-length heap block. */
static uint8_t *
encode(const slc_change *c, uint32_t n, size_t *len)
{
	size_t		size = slc_delta_encoded_size(c, n);
	uint8_t    *buf = malloc(size);

	if (buf == NULL)
		return NULL;
	*len = slc_delta_encode(c, n, buf);
	return buf;
}

static int
copy_visit(void *arg, uint8_t ns, const uint8_t *key, size_t klen,
		   const uint8_t *val, size_t vlen)
{
	return slc_state_put((slc_state *) arg, ns, key, klen, val, vlen) != SLC_OK;
}

/* A new state holding the same items: what a snapshot/rotation does. */
static slc_state *
state_copy(const slc_state *s)
{
	slc_state  *c = slc_state_new();

	if (c != NULL && slc_state_foreach(s, copy_visit, c) != 0)
	{
		slc_state_free(c);
		return NULL;
	}
	return c;
}

static int
state_consistent(const slc_state *s)
{
	slc_hash	h;

	slc_state_rehash(s, &h);
	return slc_hash_equal(&h, slc_state_hash(s)) &&
		h.count == slc_state_count(s);
}

static void
hash_hex(const slc_hash *h, char *hex)
{
	uint8_t		ser[SLC_HASH_LEN];

	slc_hash_serialize(h, ser);
	vec_to_hex(ser, sizeof(ser), hex);
}

/* ---------------------------------------------------------------------
 * Delta codec
 * ---------------------------------------------------------------------
 */
static void
test_delta_roundtrip(void)
{
	char		big[SLC_KEY_MAX + 1];
	slc_change	in[5];
	slc_change	out[5];
	slc_delta_reader r;
	uint8_t    *buf;
	size_t		len = 0;
	size_t		off = 0;
	uint32_t	n = 0;
	int			more = 1;
	int			i;

	memset(big, 'k', SLC_KEY_MAX);
	big[SLC_KEY_MAX] = '\0';
	in[0] = set_change("alpha", "one");
	in[1] = del_change("beta");
	in[2] = set_change("", "value of the empty key");
	in[3] = set_change("empty value", "");
	in[4] = set_change(big, "max-length key");

	buf = encode(in, 5, &len);
	REQUIRE(buf != NULL);
	CHECK_EQ_U64(len, slc_delta_encoded_size(in, 5));
	CHECK(slc_delta_validate(buf, len, 5, &n, &off) == SLC_OK);
	CHECK_EQ_U64(n, 5);
	CHECK(slc_delta_validate(buf, len, 4, &n, &off) == SLC_ERR_TOO_MANY);

	CHECK(slc_delta_reader_init(&r, buf, len, UINT32_MAX) == SLC_OK);
	CHECK_EQ_U64(r.count, 5);
	for (i = 0; i < 5; i++)
	{
		CHECK(slc_delta_next(&r, &out[i], &more, &off) == SLC_OK);
		CHECK(more == 1);
		CHECK_EQ_U64(out[i].klen, in[i].klen);
		CHECK(out[i].klen == 0 || memcmp(out[i].key, in[i].key, in[i].klen) == 0);
		CHECK(out[i].is_delete == in[i].is_delete);
		if (in[i].is_delete)
		{
			CHECK(out[i].val == NULL);
			CHECK_EQ_U64(out[i].vlen, 0);
		}
		else
		{
			/* present values, even empty ones, never come back as NULL */
			CHECK(out[i].val != NULL);
			CHECK_EQ_U64(out[i].vlen, in[i].vlen);
			CHECK(in[i].vlen == 0 || memcmp(out[i].val, in[i].val, in[i].vlen) == 0);
		}
		CHECK(out[i].key != NULL);
	}
	CHECK(slc_delta_next(&r, &out[0], &more, &off) == SLC_OK);
	CHECK(more == 0);
	/* asking again after the end is harmless */
	CHECK(slc_delta_next(&r, &out[0], &more, &off) == SLC_OK);
	CHECK(more == 0);
	free(buf);
}

/*
 * A caller may size its array to the announced count and still pass the
 * slot after the last one for the final call (src/delta_sql.c does this):
 * the end-of-delta call must not write *out.
 */
static void
test_delta_end_does_not_write(void)
{
	slc_change	in = set_change("k", "v");
	slc_change	out[2];
	slc_delta_reader r;
	uint8_t    *buf;
	size_t		len = 0;
	size_t		off = 12345;
	int			more = 1;

	buf = encode(&in, 1, &len);
	REQUIRE(buf != NULL);
	memset(out, 0x5A, sizeof(out));
	CHECK(slc_delta_reader_init(&r, buf, len, UINT32_MAX) == SLC_OK);
	CHECK(slc_delta_next(&r, &out[0], &more, &off) == SLC_OK && more == 1);
	CHECK(slc_delta_next(&r, &out[1], &more, &off) == SLC_OK && more == 0);
	CHECK(((uint8_t *) &out[1])[0] == 0x5A &&
		  ((uint8_t *) &out[1])[sizeof(slc_change) - 1] == 0x5A);
	CHECK_EQ_U64(off, 12345);
	free(buf);
}

static void
test_delta_empty(void)
{
	uint8_t    *buf;
	size_t		len = 0;
	size_t		off = 99;
	uint32_t	n = 99;
	slc_delta_reader r;
	slc_change	c;
	int			more = 1;

	buf = encode(NULL, 0, &len);
	REQUIRE(buf != NULL);
	CHECK_EQ_U64(len, SLC_DELTA_HEADER_LEN);
	CHECK(slc_delta_validate(buf, len, 0, &n, &off) == SLC_OK);
	CHECK_EQ_U64(n, 0);
	CHECK(slc_delta_reader_init(&r, buf, len, 0) == SLC_OK);
	CHECK(slc_delta_next(&r, &c, &more, &off) == SLC_OK && more == 0);
	free(buf);
}

/* Every status the decoder can give, with the offset of the bad field. */
static void
test_delta_errors(void)
{
	static const struct
	{
		const char *hex;
		uint32_t	max;
		slc_status	st;
		size_t		off;
	}			cases[] =
	{
		/* header */
		{"", UINT32_MAX, SLC_ERR_EMPTY, 0},
		{"02", UINT32_MAX, SLC_ERR_VERSION, 0},
		{"0000000000", UINT32_MAX, SLC_ERR_VERSION, 0},
		{"ff00000000", UINT32_MAX, SLC_ERR_VERSION, 0},
		{"01", UINT32_MAX, SLC_ERR_TRUNCATED, 1},
		{"01000000", UINT32_MAX, SLC_ERR_TRUNCATED, 1},
		{"0103000000", 2, SLC_ERR_TOO_MANY, 1},
		{"01ffffffff", UINT32_MAX - 1, SLC_ERR_TOO_MANY, 1},
		{"0101000000", 0, SLC_ERR_TOO_MANY, 1},
		/* a huge count is only a problem once the changes run out */
		{"01ffffffff", UINT32_MAX, SLC_ERR_TRUNCATED, 5},
		/* first change: key length field */
		{"0101000000", UINT32_MAX, SLC_ERR_TRUNCATED, 5},
		{"0101000000020000", UINT32_MAX, SLC_ERR_TRUNCATED, 5},
		{"010100000005000000", UINT32_MAX, SLC_ERR_LENGTH, 5},
		{"0101000000050000006162", UINT32_MAX, SLC_ERR_LENGTH, 5},
		{"010100000001040000", UINT32_MAX, SLC_ERR_KEY_TOO_LONG, 5},
		{"0101000000ffffffff", UINT32_MAX, SLC_ERR_KEY_TOO_LONG, 5},
		/* first change: value length field (after key "a") */
		{"01010000000100000061", UINT32_MAX, SLC_ERR_TRUNCATED, 10},
		{"010100000001000000610100", UINT32_MAX, SLC_ERR_TRUNCATED, 10},
		{"0101000000010000006105000000", UINT32_MAX, SLC_ERR_LENGTH, 10},
		{"01010000000100000061050000007879", UINT32_MAX, SLC_ERR_LENGTH, 10},
		{"0101000000010000006100000040", UINT32_MAX, SLC_ERR_VALUE_TOO_LONG, 10},
		{"01010000000100000061feffffff", UINT32_MAX, SLC_ERR_VALUE_TOO_LONG, 10},
		/* trailing bytes */
		{"010000000000", UINT32_MAX, SLC_ERR_TRAILING, 5},
		{"01010000000100000061ffffffff00", UINT32_MAX, SLC_ERR_TRAILING, 14},
		{"0101000000010000006101000000627a7a", UINT32_MAX, SLC_ERR_TRAILING, 15},
		/* second change, after ("a", "b") which ends at 15 */
		{"01020000000100000061010000006202", UINT32_MAX, SLC_ERR_TRUNCATED, 15},
		{"010200000001000000610100000062030000006263", UINT32_MAX, SLC_ERR_LENGTH, 15},
		{"0102000000010000006101000000620100000063", UINT32_MAX, SLC_ERR_TRUNCATED, 20},
		{"01020000000100000061010000006201000000630300000078", UINT32_MAX, SLC_ERR_LENGTH, 20},
		{"010200000001000000610100000062", UINT32_MAX, SLC_ERR_TRUNCATED, 15},
	};
	size_t		i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		size_t		off;
		uint32_t	n;
		slc_status	st = validate_hex(cases[i].hex, cases[i].max, &n, &off);

		if (st != cases[i].st || off != cases[i].off)
		{
			fprintf(stderr, "    case %zu (%s): got %d (%s) at %zu, want %d (%s) at %zu\n",
					i, cases[i].hex, (int) st, slc_status_message(st), off,
					(int) cases[i].st, slc_status_message(cases[i].st),
					cases[i].off);
			test_failures++;
		}
	}
}

/* Limits are inclusive: exactly SLC_KEY_MAX is fine, one more is not. */
static void
test_delta_limits(void)
{
	size_t		len = SLC_DELTA_HEADER_LEN + 4 + SLC_KEY_MAX + 1 + 4;
	uint8_t    *buf = calloc(1, len);
	size_t		off = 0;
	uint32_t	n = 0;

	REQUIRE(buf != NULL);
	buf[0] = 1;
	buf[1] = 1;
	/* klen = 1024, then vlen = 0 */
	buf[5] = 0x00;
	buf[6] = 0x04;
	CHECK(slc_delta_validate(buf, len - 1, UINT32_MAX, &n, &off) == SLC_OK);
	CHECK_EQ_U64(n, 1);
	/* klen = 1025 */
	buf[5] = 0x01;
	CHECK(slc_delta_validate(buf, len, UINT32_MAX, &n, &off) == SLC_ERR_KEY_TOO_LONG);
	CHECK_EQ_U64(off, 5);
	free(buf);

	/* vlen = SLC_VALUE_MAX passes the limit and fails only on length */
	CHECK(validate_hex("010100000000000000ffffff3f", UINT32_MAX, &n, &off) == SLC_ERR_LENGTH);
	CHECK_EQ_U64(off, 9);
	CHECK(validate_hex("010100000000000000ffffffff", UINT32_MAX, &n, &off) == SLC_OK);
}

/* On error the reader stays put: asking again gives the same answer. */
static void
test_delta_error_is_sticky(void)
{
	size_t		len = 0;
	uint8_t    *buf = hex_decode("01020000000100000061ffffffff0100000062", &len);
	slc_delta_reader r;
	slc_change	c;
	int			more;
	size_t		off = 0;

	REQUIRE(buf != NULL);
	CHECK(slc_delta_reader_init(&r, buf, len, UINT32_MAX) == SLC_OK);
	CHECK(slc_delta_next(&r, &c, &more, &off) == SLC_OK && more == 1);
	CHECK(c.is_delete && c.val == NULL && c.vlen == 0);
	CHECK(slc_delta_next(&r, &c, &more, &off) == SLC_ERR_TRUNCATED);
	CHECK(more == 0);
	CHECK_EQ_U64(off, 19);
	CHECK(slc_delta_next(&r, &c, &more, NULL) == SLC_ERR_TRUNCATED);
	CHECK_EQ_U64(r.done, 1);
	free(buf);
}

/*
 * Read a delta into an array of exactly slc_delta_reader_room() changes,
 * malloc'd at that size (as the extension's decode_delta does): the
 * sanitizer and valgrind builds fail if the reader returns more changes
 * than the room promised.  Also checks that the room never grows and
 * shrinks with every change read.  Returns the status of the last read and
 * the changes read in *got.
 */
static slc_status
read_into_room(const uint8_t *buf, size_t len, uint32_t *room, uint32_t *got)
{
	slc_delta_reader r;
	slc_change *slots;
	slc_status	st;
	int			more = 1;
	size_t		off = 0;

	*got = 0;
	*room = 0;
	st = slc_delta_reader_init(&r, buf, len, UINT32_MAX);
	if (st != SLC_OK)
	{
		CHECK(slc_delta_reader_room(&r) == 0);
		return st;
	}
	*room = slc_delta_reader_room(&r);
	CHECK(*room <= r.count);
	CHECK(*room <= (len - SLC_DELTA_HEADER_LEN) / SLC_CHANGE_MIN_LEN);
	/* one slot even for no room: slc_delta_next never writes past the last change */
	slots = malloc(sizeof(slc_change) * (*room > 0 ? *room : 1));
	if (slots == NULL)
		return SLC_ERR_NOMEM;
	for (;;)
	{
		uint32_t	before = slc_delta_reader_room(&r);

		st = slc_delta_next(&r, &slots[*got < *room ? *got : 0], &more, &off);
		if (st != SLC_OK || !more)
			break;
		CHECK(*got < *room);
		CHECK(slc_delta_reader_room(&r) < before);
		(*got)++;
	}
	free(slots);
	return st;
}

/*
 * A huge announced count costs nothing: the room is bounded by the bytes
 * of the delta (issue 14: a 5-byte delta announcing 10 million changes
 * made decode_delta allocate 300 MB before finding it truncated), and the
 * error is the one the changes themselves give, as before.
 */
static void
test_delta_room(void)
{
	static const struct
	{
		const char *hex;
		uint32_t	room;		/* right after init */
		uint32_t	got;		/* changes read before the end or an error */
		slc_status	st;
		size_t		off;
	}			cases[] =
	{
		/* 10 million changes announced, none there */
		{"0180969800", 0, 0, SLC_ERR_TRUNCATED, 5},
		{"01ffffffff", 0, 0, SLC_ERR_TRUNCATED, 5},
		/* 10 million announced, one smallest change (empty key, deleted) there */
		{"018096980000000000ffffffff", 1, 1, SLC_ERR_TRUNCATED, 13},
		/* four billion announced, two empty-key empty-value changes, 3 bytes more */
		{"01ffffffff00000000000000000000000000000000000000", 2, 2, SLC_ERR_TRUNCATED, 21},
		/* 7 bytes cannot hold a change: the value length is cut */
		{"0102000000000000000000ff", 0, 0, SLC_ERR_TRUNCATED, 9},
		/* the count bounds the room when the bytes would allow more */
		{"010100000000000000000000000000000000000000", 1, 1, SLC_ERR_TRAILING, 13},
		/* exactly the announced changes: ("a", "b"), ("c", delete) */
		{"0102000000010000006101000000620100000063ffffffff", 2, 2, SLC_OK, 0},
		/* no changes */
		{"0100000000", 0, 0, SLC_OK, 0},
	};
	size_t		i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		size_t		len = 0;
		uint8_t    *buf = hex_decode(cases[i].hex, &len);
		uint32_t	room;
		uint32_t	got;
		uint32_t	n;
		size_t		off = 0;
		slc_status	st;

		REQUIRE(buf != NULL);
		st = read_into_room(buf, len, &room, &got);
		if (room != cases[i].room || got != cases[i].got || st != cases[i].st)
		{
			fprintf(stderr, "    case %zu (%s): room %u, read %u, %s; want room %u, read %u, %s\n",
					i, cases[i].hex, room, got, slc_status_message(st),
					cases[i].room, cases[i].got, slc_status_message(cases[i].st));
			test_failures++;
		}
		/* validation reports the same error at the same offset */
		CHECK(slc_delta_validate(buf, len, UINT32_MAX, &n, &off) == cases[i].st);
		if (cases[i].st != SLC_OK)
			CHECK_EQ_U64(off, cases[i].off);
		free(buf);
	}
}

/*
 * Every prefix of a valid delta is rejected, and random corruptions never
 * crash or read outside the (exact-length) buffer.
 */
static void
test_delta_fuzz(void)
{
	slc_change	in[4];
	uint8_t    *buf;
	size_t		len = 0;
	size_t		cut;
	uint64_t	rng = UINT64_C(0x9E3779B97F4A7C15);
	int			round;

	in[0] = set_change("k1", "v1");
	in[1] = del_change("k2");
	in[2] = set_change("", "");
	in[3] = set_change("key-four", "a somewhat longer value");
	buf = encode(in, 4, &len);
	REQUIRE(buf != NULL);

	for (cut = 0; cut < len; cut++)
	{
		uint8_t    *p = dup_exact(buf, cut);
		uint32_t	n;
		size_t		off = 0;
		slc_status	st;

		REQUIRE(p != NULL);
		st = slc_delta_validate(cut > 0 ? p : NULL, cut, UINT32_MAX, &n, &off);
		CHECK(st != SLC_OK);
		CHECK(st == SLC_ERR_EMPTY || st == SLC_ERR_TRUNCATED || st == SLC_ERR_LENGTH);
		CHECK(off <= cut);
		free(p);
	}

	for (round = 0; round < 20000; round++)
	{
		size_t		plen = rng_below(&rng, 2) ? len : rng_below(&rng, (uint32_t) len + 8) + 1;
		uint8_t    *p = malloc(plen);
		size_t		k;
		uint32_t	n;
		size_t		off = 0;
		slc_status	st;
		int			flips = 1 + (int) rng_below(&rng, 4);

		REQUIRE(p != NULL);
		for (k = 0; k < plen; k++)
			p[k] = k < len ? buf[k] : (uint8_t) rng_next(&rng);
		while (flips-- > 0)
			p[rng_below(&rng, (uint32_t) plen)] = (uint8_t) rng_next(&rng);
		st = slc_delta_validate(p, plen, UINT32_MAX, &n, &off);
		if (st != SLC_OK)
			CHECK(off <= plen);
		else
		{
			/* whatever parsed must re-encode to the same bytes */
			slc_change *cs = calloc((size_t) n + 1, sizeof(slc_change));
			slc_delta_reader r;
			int			more = 1;
			uint32_t	i = 0;
			uint8_t    *re;
			size_t		relen = 0;

			REQUIRE(cs != NULL);
			CHECK(slc_delta_reader_init(&r, p, plen, UINT32_MAX) == SLC_OK);
			while (i <= n && slc_delta_next(&r, &cs[i], &more, NULL) == SLC_OK && more)
				i++;
			CHECK(i == n);
			re = encode(cs, n, &relen);
			CHECK(re != NULL && relen == plen && memcmp(re, p, plen) == 0);
			free(re);
			free(cs);
		}
		free(p);
	}
	free(buf);
}

static void
test_status_messages(void)
{
	int			a;
	int			b;

	for (a = SLC_OK; a <= SLC_ERR_NOMEM; a++)
	{
		const char *m = slc_status_message((slc_status) a);

		CHECK(m != NULL && m[0] != '\0');
		for (b = SLC_OK; b < a; b++)
			CHECK(strcmp(m, slc_status_message((slc_status) b)) != 0);
	}
	CHECK(strcmp(slc_status_message(SLC_ERR_EMPTY), "delta is empty") == 0);
	CHECK(strcmp(slc_status_message(SLC_ERR_KEY_TOO_LONG), "key longer than 1024 bytes") == 0);
	CHECK(strcmp(slc_status_message(SLC_ERR_NOMEM), "out of memory") == 0);
	CHECK(slc_status_message((slc_status) 999) != NULL);
}

/* ---------------------------------------------------------------------
 * Duplicates
 * ---------------------------------------------------------------------
 */
static void
test_duplicates(void)
{
	slc_change	c[6];
	uint32_t	scratch[6];
	uint32_t	dup = 777;
	slc_change	before[6];

	/* n = 0 and n = 1 need no scratch */
	CHECK(slc_delta_find_duplicate(NULL, 0, NULL, &dup) == SLC_OK);
	c[0] = set_change("", "x");
	CHECK(slc_delta_find_duplicate(c, 1, NULL, &dup) == SLC_OK);

	/* prefixes of each other and the empty key are all distinct */
	c[0] = set_change("ab", "1");
	c[1] = set_change("a", "2");
	c[2] = set_change("", "3");
	c[3] = del_change("abc");
	c[4] = set_change("b", "4");
	c[5] = set_change("ba", "5");
	memcpy(before, c, sizeof(c));
	dup = 777;
	CHECK(slc_delta_find_duplicate(c, 6, scratch, &dup) == SLC_OK);
	CHECK_EQ_U64(dup, 777);
	CHECK(memcmp(before, c, sizeof(c)) == 0);

	/* two empty keys */
	c[4] = del_change("");
	CHECK(slc_delta_find_duplicate(c, 6, scratch, &dup) == SLC_ERR_DUPLICATE_KEY);
	CHECK_EQ_U64(dup, 4);

	/* same key once set and once deleted is still a duplicate */
	c[4] = set_change("b", "4");
	c[1] = del_change("ba");
	CHECK(slc_delta_find_duplicate(c, 6, scratch, &dup) == SLC_ERR_DUPLICATE_KEY);
	CHECK_EQ_U64(dup, 5);

	/* the later occurrence is reported, whatever the first index is */
	c[1] = set_change("a", "2");
	c[5] = set_change("ab", "again");
	CHECK(slc_delta_find_duplicate(c, 6, scratch, &dup) == SLC_ERR_DUPLICATE_KEY);
	CHECK_EQ_U64(dup, 5);
}

static void
test_duplicates_large(void)
{
	enum
	{
		N = 5000
	};
	slc_change *c = calloc(N, sizeof(slc_change));
	uint32_t   *scratch = calloc(N, sizeof(uint32_t));
	uint8_t    *keys = calloc(N, 4);
	uint64_t	rng = 42;
	uint32_t	dup = 0;
	uint32_t	i;
	uint32_t	a;
	uint32_t	b;

	REQUIRE(c != NULL && scratch != NULL && keys != NULL);
	/* distinct keys of mixed lengths 1..4, in shuffled order */
	for (i = 0; i < N; i++)
	{
		uint32_t	v = i * 2654435761u;

		keys[4 * i] = (uint8_t) (i >> 8);
		keys[4 * i + 1] = (uint8_t) i;
		keys[4 * i + 2] = (uint8_t) (v >> 24);
		keys[4 * i + 3] = (uint8_t) (v >> 16);
		c[i].key = keys + 4 * i;
		c[i].klen = 2 + (i % 3);
		c[i].is_delete = 1;
	}
	CHECK(slc_delta_find_duplicate(c, N, scratch, &dup) == SLC_OK);

	for (i = 0; i < 20; i++)
	{
		a = rng_below(&rng, N);
		b = rng_below(&rng, N);
		if (a == b)
			continue;
		{
			slc_change	saved = c[b];

			c[b] = c[a];
			CHECK(slc_delta_find_duplicate(c, N, scratch, &dup) == SLC_ERR_DUPLICATE_KEY);
			CHECK_EQ_U64(dup, a > b ? a : b);
			c[b] = saved;
		}
	}
	free(c);
	free(scratch);
	free(keys);
}

/* ---------------------------------------------------------------------
 * Hash
 * ---------------------------------------------------------------------
 */

/* The item hash is XXH3-128 of exactly ns || u32le(klen) || key || value. */
static void
test_item_hash_bytes(void)
{
	static const uint8_t bytes[] = {0x01, 0x01, 0x00, 0x00, 0x00, 0x01,
	'h', 'e', 'l', 'l', 'o'};
	static const uint8_t key[] = {0x01};
	XXH128_hash_t d = XXH3_128bits(bytes, sizeof(bytes));
	uint64_t	lo;
	uint64_t	hi;
	uint8_t    *big;
	size_t		biglen = 5 + 3 + 100000;

	slc_item_hash(SLC_NS_DATA, key, 1, (const uint8_t *) "hello", 5, &lo, &hi);
	CHECK(lo == d.low64 && hi == d.high64);
	CHECK_EQ_U64(hi, UINT64_C(0x2ddf6d250fc665a3));
	CHECK_EQ_U64(lo, UINT64_C(0xc8616e1931202836));

	/* the namespace byte is hashed */
	slc_item_hash(SLC_NS_CLIENT, key, 1, (const uint8_t *) "hello", 5, &lo, &hi);
	CHECK(lo != d.low64 || hi != d.high64);

	/* a long value takes the streaming path; same definition */
	big = malloc(biglen);
	REQUIRE(big != NULL);
	big[0] = SLC_NS_DATA;
	big[1] = 3;
	big[2] = big[3] = big[4] = 0;
	memcpy(big + 5, "key", 3);
	memset(big + 8, 0x77, biglen - 8);
	d = XXH3_128bits(big, biglen);
	slc_item_hash(SLC_NS_DATA, big + 5, 3, big + 8, biglen - 8, &lo, &hi);
	CHECK(lo == d.low64 && hi == d.high64);

	/* and empty key and value hash the 5-byte prefix alone (NULL is fine) */
	d = XXH3_128bits("\x01\x00\x00\x00\x00", 5);
	slc_item_hash(SLC_NS_DATA, NULL, 0, NULL, 0, &lo, &hi);
	CHECK(lo == d.low64 && hi == d.high64);

	/* boundary sizes around the one-shot/streaming switch agree too */
	{
		size_t		vlen;

		for (vlen = 480; vlen < 560; vlen++)
		{
			big[0] = SLC_NS_DATA;
			big[1] = 3;
			big[2] = big[3] = big[4] = 0;
			d = XXH3_128bits(big, 8 + vlen);
			slc_item_hash(SLC_NS_DATA, big + 5, 3, big + 8, vlen, &lo, &hi);
			CHECK(lo == d.low64 && hi == d.high64);
		}
	}
	free(big);
}

static void
test_hash_order_independent(void)
{
	static const char *keys[] = {"a", "b", "", "ccc", "dd", "e"};
	static const char *vals[] = {"1", "", "three", "4", "five", "6"};
	enum
	{
		K = 6
	};
	slc_hash	ref;
	uint64_t	rng = 7;
	int			round;
	int			i;

	slc_hash_init(&ref);
	for (i = 0; i < K; i++)
		slc_hash_add(&ref, SLC_NS_DATA, (const uint8_t *) keys[i], strlen(keys[i]),
					 (const uint8_t *) vals[i], strlen(vals[i]));
	CHECK_EQ_U64(ref.count, K);
	CHECK_EQ_U64(ref.bytes, 1 + 1 + 1 + 0 + 0 + 5 + 3 + 1 + 2 + 4 + 1 + 1);

	for (round = 0; round < 50; round++)
	{
		int			perm[K];
		slc_state  *s = slc_state_new();

		REQUIRE(s != NULL);
		for (i = 0; i < K; i++)
			perm[i] = i;
		for (i = K - 1; i > 0; i--)
		{
			int			j = (int) rng_below(&rng, (uint32_t) i + 1);
			int			t = perm[i];

			perm[i] = perm[j];
			perm[j] = t;
		}
		for (i = 0; i < K; i++)
			CHECK(slc_state_put(s, SLC_NS_DATA, (const uint8_t *) keys[perm[i]],
								strlen(keys[perm[i]]),
								(const uint8_t *) vals[perm[i]],
								strlen(vals[perm[i]])) == SLC_OK);
		CHECK(slc_hash_equal(slc_state_hash(s), &ref));
		slc_state_free(s);
	}
}

static void
test_hash_value_moves(void)
{
	slc_hash	a;
	slc_hash	b;

	slc_hash_init(&a);
	slc_hash_add(&a, SLC_NS_DATA, (const uint8_t *) "a", 1, (const uint8_t *) "x", 1);
	slc_hash_add(&a, SLC_NS_DATA, (const uint8_t *) "b", 1, (const uint8_t *) "y", 1);
	slc_hash_init(&b);
	slc_hash_add(&b, SLC_NS_DATA, (const uint8_t *) "a", 1, (const uint8_t *) "y", 1);
	slc_hash_add(&b, SLC_NS_DATA, (const uint8_t *) "b", 1, (const uint8_t *) "x", 1);
	CHECK(a.count == b.count && a.bytes == b.bytes);
	CHECK(!slc_hash_equal(&a, &b));

	/* the klen prefix keeps ("ab","c") and ("a","bc") apart */
	slc_hash_init(&a);
	slc_hash_add(&a, SLC_NS_DATA, (const uint8_t *) "ab", 2, (const uint8_t *) "c", 1);
	slc_hash_init(&b);
	slc_hash_add(&b, SLC_NS_DATA, (const uint8_t *) "a", 1, (const uint8_t *) "bc", 2);
	CHECK(!slc_hash_equal(&a, &b));

	/* same key and value in the two namespaces differ */
	slc_hash_init(&a);
	slc_hash_add(&a, SLC_NS_DATA, (const uint8_t *) "k", 1, (const uint8_t *) "v", 1);
	slc_hash_init(&b);
	slc_hash_add(&b, SLC_NS_CLIENT, (const uint8_t *) "k", 1, (const uint8_t *) "v", 1);
	CHECK(!slc_hash_equal(&a, &b));
}

static void
test_hash_add_remove(void)
{
	slc_hash	h;
	slc_hash	empty;
	slc_hash	one;
	int			i;

	slc_hash_init(&empty);
	slc_hash_init(&h);
	for (i = 0; i < 100; i++)
	{
		uint8_t		k = (uint8_t) i;

		slc_hash_add(&h, SLC_NS_DATA, &k, 1, (const uint8_t *) "value", (size_t) (i % 6));
	}
	CHECK_EQ_U64(h.count, 100);
	for (i = 99; i >= 0; i -= 2)
	{
		uint8_t		k = (uint8_t) i;

		slc_hash_remove(&h, SLC_NS_DATA, &k, 1, (const uint8_t *) "value", (size_t) (i % 6));
	}
	for (i = 0; i < 100; i += 2)
	{
		uint8_t		k = (uint8_t) i;

		slc_hash_remove(&h, SLC_NS_DATA, &k, 1, (const uint8_t *) "value", (size_t) (i % 6));
	}
	CHECK(slc_hash_equal(&h, &empty));

	/* replace covers insert, update, delete and the no-op */
	slc_hash_init(&h);
	slc_hash_replace(&h, SLC_NS_DATA, (const uint8_t *) "k", 1, NULL, 0, (const uint8_t *) "v1", 2);
	slc_hash_init(&one);
	slc_hash_add(&one, SLC_NS_DATA, (const uint8_t *) "k", 1, (const uint8_t *) "v1", 2);
	CHECK(slc_hash_equal(&h, &one));
	slc_hash_replace(&h, SLC_NS_DATA, (const uint8_t *) "k", 1, (const uint8_t *) "v1", 2,
					 (const uint8_t *) "v1", 2);
	CHECK(slc_hash_equal(&h, &one));
	slc_hash_replace(&h, SLC_NS_DATA, (const uint8_t *) "k", 1, (const uint8_t *) "v1", 2,
					 (const uint8_t *) "v22", 3);
	slc_hash_init(&one);
	slc_hash_add(&one, SLC_NS_DATA, (const uint8_t *) "k", 1, (const uint8_t *) "v22", 3);
	CHECK(slc_hash_equal(&h, &one));
	slc_hash_replace(&h, SLC_NS_DATA, (const uint8_t *) "k", 1, (const uint8_t *) "v22", 3, NULL, 0);
	CHECK(slc_hash_equal(&h, &empty));
	slc_hash_replace(&h, SLC_NS_DATA, (const uint8_t *) "k", 1, NULL, 0, NULL, 0);
	CHECK(slc_hash_equal(&h, &empty));

	/* an empty value is present: it counts, unlike a deletion */
	slc_hash_replace(&h, SLC_NS_DATA, (const uint8_t *) "k", 1, NULL, 0, (const uint8_t *) "", 0);
	CHECK_EQ_U64(h.count, 1);
	CHECK_EQ_U64(h.bytes, 1);
}

static void
test_hash_carry_borrow(void)
{
	slc_hash	h;
	slc_hash	o;
	uint64_t	lo;
	uint64_t	hi;

	/* combine: low word wraps into the high word */
	slc_hash_init(&h);
	h.sum_lo = UINT64_MAX;
	h.sum_hi = 5;
	slc_hash_init(&o);
	o.sum_lo = 1;
	o.count = 2;
	o.bytes = 3;
	slc_hash_combine(&h, &o);
	CHECK_EQ_U64(h.sum_lo, 0);
	CHECK_EQ_U64(h.sum_hi, 6);
	CHECK_EQ_U64(h.count, 2);
	CHECK_EQ_U64(h.bytes, 3);

	/* the whole 128-bit sum wraps mod 2^128 */
	h.sum_lo = UINT64_MAX;
	h.sum_hi = UINT64_MAX;
	o.sum_lo = 2;
	o.sum_hi = 0;
	slc_hash_combine(&h, &o);
	CHECK_EQ_U64(h.sum_lo, 1);
	CHECK_EQ_U64(h.sum_hi, 0);

	/* add: set sum_lo so that adding the item's lo carries exactly */
	slc_item_hash(SLC_NS_DATA, (const uint8_t *) "k", 1, (const uint8_t *) "v", 1, &lo, &hi);
	REQUIRE(lo != 0);
	slc_hash_init(&h);
	h.sum_lo = (uint64_t) 0 - lo;	/* 2^64 - lo */
	h.sum_hi = 10;
	slc_hash_add(&h, SLC_NS_DATA, (const uint8_t *) "k", 1, (const uint8_t *) "v", 1);
	CHECK_EQ_U64(h.sum_lo, 0);
	CHECK_EQ_U64(h.sum_hi, 10 + hi + 1);
	/* remove borrows back */
	slc_hash_remove(&h, SLC_NS_DATA, (const uint8_t *) "k", 1, (const uint8_t *) "v", 1);
	CHECK_EQ_U64(h.sum_lo, (uint64_t) 0 - lo);
	CHECK_EQ_U64(h.sum_hi, 10);
	CHECK_EQ_U64(h.count, 0);
	CHECK_EQ_U64(h.bytes, 0);

	/* no carry when the low word does not wrap */
	slc_hash_init(&h);
	slc_hash_add(&h, SLC_NS_DATA, (const uint8_t *) "k", 1, (const uint8_t *) "v", 1);
	CHECK(h.sum_lo == lo && h.sum_hi == hi);

	/* removing from empty gives the two's complement of the item hash */
	slc_hash_init(&h);
	slc_hash_remove(&h, SLC_NS_DATA, (const uint8_t *) "k", 1, (const uint8_t *) "v", 1);
	CHECK_EQ_U64(h.sum_lo, (uint64_t) 0 - lo);
	CHECK_EQ_U64(h.sum_hi, (uint64_t) 0 - hi - 1);
	CHECK_EQ_U64(h.count, UINT64_MAX);
	slc_hash_add(&h, SLC_NS_DATA, (const uint8_t *) "k", 1, (const uint8_t *) "v", 1);
	slc_hash_init(&o);
	CHECK(slc_hash_equal(&h, &o));
}

static void
test_hash_combine_union(void)
{
	slc_state  *a = slc_state_new();
	slc_state  *b = slc_state_new();
	slc_state  *u = slc_state_new();
	slc_hash	h;
	int			i;

	REQUIRE(a != NULL && b != NULL && u != NULL);
	for (i = 0; i < 300; i++)
	{
		uint8_t		k[2] = {(uint8_t) i, (uint8_t) (i >> 8)};

		CHECK(slc_state_put(i % 3 ? a : b, SLC_NS_DATA, k, 2, k, 1) == SLC_OK);
		CHECK(slc_state_put(u, SLC_NS_DATA, k, 2, k, 1) == SLC_OK);
	}
	h = *slc_state_hash(a);
	slc_hash_combine(&h, slc_state_hash(b));
	CHECK(slc_hash_equal(&h, slc_state_hash(u)));
	slc_state_free(a);
	slc_state_free(b);
	slc_state_free(u);
}

static void
test_hash_serialize(void)
{
	slc_hash	h;
	slc_hash	p;
	slc_hash	keep;
	uint8_t		ser[SLC_HASH_LEN];
	uint8_t    *buf;
	char		hex[2 * SLC_HASH_LEN + 1];

	h.sum_lo = UINT64_C(0x0807060504030201);
	h.sum_hi = UINT64_C(0x100f0e0d0c0b0a09);
	h.count = UINT64_C(0x1817161514131211);
	h.bytes = UINT64_C(0x201f1e1d1c1b1a19);
	slc_hash_serialize(&h, ser);
	vec_to_hex(ser, sizeof(ser), hex);
	CHECK(strcmp(hex, "01"
				 "0102030405060708" "090a0b0c0d0e0f10"
				 "1112131415161718" "191a1b1c1d1e1f20") == 0);

	buf = dup_exact(ser, SLC_HASH_LEN);
	REQUIRE(buf != NULL);
	CHECK(slc_hash_parse(buf, SLC_HASH_LEN, &p) == SLC_OK);
	CHECK(slc_hash_equal(&h, &p));
	free(buf);

	/* wrong lengths and algorithms; the output is left alone */
	slc_hash_init(&keep);
	keep.count = 42;
	p = keep;
	buf = dup_exact(ser, SLC_HASH_LEN - 1);
	REQUIRE(buf != NULL);
	CHECK(slc_hash_parse(buf, SLC_HASH_LEN - 1, &p) == SLC_ERR_HASH_FORMAT);
	free(buf);
	CHECK(slc_hash_parse(ser, 0, &p) == SLC_ERR_HASH_FORMAT);
	{
		uint8_t		longer[SLC_HASH_LEN + 1];

		memcpy(longer, ser, SLC_HASH_LEN);
		longer[SLC_HASH_LEN] = 0;
		CHECK(slc_hash_parse(longer, sizeof(longer), &p) == SLC_ERR_HASH_FORMAT);
	}
	ser[0] = 0;
	CHECK(slc_hash_parse(ser, SLC_HASH_LEN, &p) == SLC_ERR_HASH_FORMAT);
	ser[0] = 2;
	CHECK(slc_hash_parse(ser, SLC_HASH_LEN, &p) == SLC_ERR_HASH_FORMAT);
	CHECK(slc_hash_equal(&p, &keep));
}

static void
test_watermark(void)
{
	static const int64_t samples[] = {
		0, 1, -1, 7, 3, INT64_MAX, INT64_MIN, INT64_MIN + 1, -256,
		INT64_C(0x0102030405060708)
	};
	uint8_t		wm[SLC_WATERMARK_LEN];
	char		hex[2 * SLC_WATERMARK_LEN + 1];
	int64_t		seq;
	int64_t		lsn;
	size_t		i;
	size_t		j;

	slc_watermark_encode(7, 3, wm);
	vec_to_hex(wm, sizeof(wm), hex);
	CHECK(strcmp(hex, "07000000000000000300000000000000") == 0);
	slc_watermark_encode(-1, INT64_MIN, wm);
	vec_to_hex(wm, sizeof(wm), hex);
	CHECK(strcmp(hex, "ffffffffffffffff0000000000000080") == 0);
	slc_watermark_encode(-256, INT64_MAX, wm);
	vec_to_hex(wm, sizeof(wm), hex);
	CHECK(strcmp(hex, "00ffffffffffffffffffffffffffff7f") == 0);

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		for (j = 0; j < sizeof(samples) / sizeof(samples[0]); j++)
		{
			slc_watermark_encode(samples[i], samples[j], wm);
			slc_watermark_decode(wm, &seq, &lsn);
			CHECK(seq == samples[i] && lsn == samples[j]);
		}
}

/* ---------------------------------------------------------------------
 * State
 * ---------------------------------------------------------------------
 */
static void
test_state_basic(void)
{
	slc_state  *s = slc_state_new();
	const uint8_t *v = NULL;
	size_t		vlen = 99;
	slc_hash	empty;

	REQUIRE(s != NULL);
	slc_hash_init(&empty);
	CHECK(slc_hash_equal(slc_state_hash(s), &empty));
	CHECK_EQ_U64(slc_state_count(s), 0);
	CHECK(!slc_state_get(s, SLC_NS_DATA, (const uint8_t *) "k", 1, &v, &vlen));

	CHECK(slc_state_put(s, SLC_NS_DATA, (const uint8_t *) "k", 1, (const uint8_t *) "v1", 2) == SLC_OK);
	CHECK(slc_state_get(s, SLC_NS_DATA, (const uint8_t *) "k", 1, &v, &vlen));
	CHECK(vlen == 2 && memcmp(v, "v1", 2) == 0);
	CHECK(!slc_state_get(s, SLC_NS_CLIENT, (const uint8_t *) "k", 1, &v, &vlen));

	/* overwrite */
	CHECK(slc_state_put(s, SLC_NS_DATA, (const uint8_t *) "k", 1, (const uint8_t *) "longer", 6) == SLC_OK);
	CHECK(slc_state_get(s, SLC_NS_DATA, (const uint8_t *) "k", 1, &v, &vlen));
	CHECK(vlen == 6 && memcmp(v, "longer", 6) == 0);
	CHECK_EQ_U64(slc_state_count(s), 1);

	/* same key in the other namespace is another item */
	CHECK(slc_state_put(s, SLC_NS_CLIENT, (const uint8_t *) "k", 1, (const uint8_t *) "c", 1) == SLC_OK);
	CHECK_EQ_U64(slc_state_count(s), 2);

	/* empty key and empty value are present, not absent */
	CHECK(slc_state_put(s, SLC_NS_DATA, NULL, 0, (const uint8_t *) "", 0) == SLC_OK);
	v = NULL;
	CHECK(slc_state_get(s, SLC_NS_DATA, (const uint8_t *) "", 0, &v, &vlen));
	CHECK(v != NULL && vlen == 0);
	CHECK_EQ_U64(slc_state_count(s), 3);
	CHECK(state_consistent(s));

	/* deletes, including of something absent */
	CHECK(slc_state_put(s, SLC_NS_DATA, (const uint8_t *) "nope", 4, NULL, 0) == SLC_OK);
	CHECK_EQ_U64(slc_state_count(s), 3);
	CHECK(slc_state_put(s, SLC_NS_DATA, (const uint8_t *) "k", 1, NULL, 0) == SLC_OK);
	CHECK(!slc_state_get(s, SLC_NS_DATA, (const uint8_t *) "k", 1, &v, &vlen));
	CHECK(slc_state_get(s, SLC_NS_CLIENT, (const uint8_t *) "k", 1, &v, &vlen));
	CHECK(slc_state_put(s, SLC_NS_CLIENT, (const uint8_t *) "k", 1, NULL, 0) == SLC_OK);
	CHECK(slc_state_put(s, SLC_NS_DATA, NULL, 0, NULL, 0) == SLC_OK);
	CHECK_EQ_U64(slc_state_count(s), 0);
	CHECK(slc_hash_equal(slc_state_hash(s), &empty));
	CHECK(state_consistent(s));

	/* get tolerates NULL outputs */
	CHECK(slc_state_put(s, SLC_NS_DATA, (const uint8_t *) "x", 1, (const uint8_t *) "y", 1) == SLC_OK);
	CHECK(slc_state_get(s, SLC_NS_DATA, (const uint8_t *) "x", 1, NULL, NULL));
	slc_state_free(s);
	slc_state_free(NULL);
}

static int
count_visit(void *arg, uint8_t ns, const uint8_t *key, size_t klen,
			const uint8_t *val, size_t vlen)
{
	(void) ns;
	(void) key;
	(void) klen;
	(void) val;
	(void) vlen;
	return ++*(size_t *) arg == 5 ? 77 : 0;
}

/* Growth, heavy churn with backward-shift deletion, and foreach. */
static void
test_state_many(void)
{
	enum
	{
		N = 200000
	};
	slc_state  *s = slc_state_new();
	uint32_t	i;
	int			bad = 0;
	size_t		visited = 0;

	REQUIRE(s != NULL);
	for (i = 0; i < N; i++)
	{
		uint8_t		k[4] = {(uint8_t) i, (uint8_t) (i >> 8), (uint8_t) (i >> 16), 0};

		if (slc_state_put(s, SLC_NS_DATA, k, 3, k, i % 5) != SLC_OK)
			bad++;
	}
	CHECK(bad == 0);
	CHECK_EQ_U64(slc_state_count(s), N);
	CHECK(state_consistent(s));

	/* delete every other key, then check every key's presence */
	for (i = 0; i < N; i += 2)
	{
		uint8_t		k[3] = {(uint8_t) i, (uint8_t) (i >> 8), (uint8_t) (i >> 16)};

		CHECK(slc_state_put(s, SLC_NS_DATA, k, 3, NULL, 0) == SLC_OK);
	}
	CHECK_EQ_U64(slc_state_count(s), N / 2);
	for (i = 0; i < N; i++)
	{
		uint8_t		k[4] = {(uint8_t) i, (uint8_t) (i >> 8), (uint8_t) (i >> 16), 0};
		const uint8_t *v;
		size_t		vlen;
		int			got = slc_state_get(s, SLC_NS_DATA, k, 3, &v, &vlen);

		if (got != (int) (i % 2) || (got && (vlen != i % 5 || (vlen && memcmp(v, k, vlen) != 0))))
			bad++;
	}
	CHECK(bad == 0);
	CHECK(state_consistent(s));

	CHECK(slc_state_foreach(s, count_visit, &visited) == 77);
	CHECK_EQ_U64(visited, 5);

	/* delete the rest: back to the empty hash */
	for (i = 1; i < N; i += 2)
	{
		uint8_t		k[3] = {(uint8_t) i, (uint8_t) (i >> 8), (uint8_t) (i >> 16)};

		CHECK(slc_state_put(s, SLC_NS_DATA, k, 3, NULL, 0) == SLC_OK);
	}
	{
		slc_hash	empty;

		slc_hash_init(&empty);
		CHECK(slc_hash_equal(slc_state_hash(s), &empty));
		CHECK_EQ_U64(slc_state_count(s), 0);
	}
	slc_state_free(s);
}

static void
test_apply_entry(void)
{
	slc_state  *s = slc_state_new();
	slc_change	c[3];
	uint8_t    *d;
	size_t		len = 0;
	const uint8_t *v;
	size_t		vlen;
	int64_t		seq;
	int64_t		lsn;

	REQUIRE(s != NULL);
	c[0] = set_change("a", "1");
	c[1] = set_change("b", "2");
	c[2] = del_change("zz");
	d = encode(c, 3, &len);
	REQUIRE(d != NULL);
	CHECK(slc_state_apply_entry(s, d, len, 100, "client-a", 8, 5) == SLC_OK);
	free(d);
	CHECK_EQ_U64(slc_state_count(s), 3);
	CHECK(slc_state_get(s, SLC_NS_CLIENT, (const uint8_t *) "client-a", 8, &v, &vlen));
	REQUIRE(vlen == SLC_WATERMARK_LEN);
	slc_watermark_decode(v, &seq, &lsn);
	CHECK(seq == 5 && lsn == 100);
	CHECK(state_consistent(s));

	/* no client: no watermark; delete + overwrite */
	c[0] = del_change("a");
	c[1] = set_change("b", "22");
	d = encode(c, 2, &len);
	REQUIRE(d != NULL);
	CHECK(slc_state_apply_entry(s, d, len, 101, NULL, 0, 0) == SLC_OK);
	free(d);
	CHECK(!slc_state_get(s, SLC_NS_DATA, (const uint8_t *) "a", 1, &v, &vlen));
	CHECK(slc_state_get(s, SLC_NS_DATA, (const uint8_t *) "b", 1, &v, &vlen));
	CHECK(vlen == 2 && memcmp(v, "22", 2) == 0);
	CHECK(slc_state_get(s, SLC_NS_CLIENT, (const uint8_t *) "client-a", 8, &v, &vlen));
	slc_watermark_decode(v, &seq, &lsn);
	CHECK(seq == 5 && lsn == 100);

	/* empty delta with a client moves only the watermark */
	d = encode(NULL, 0, &len);
	REQUIRE(d != NULL);
	CHECK(slc_state_apply_entry(s, d, len, 102, "client-a", 8, -3) == SLC_OK);
	free(d);
	CHECK(slc_state_get(s, SLC_NS_CLIENT, (const uint8_t *) "client-a", 8, &v, &vlen));
	slc_watermark_decode(v, &seq, &lsn);
	CHECK(seq == -3 && lsn == 102);
	CHECK_EQ_U64(slc_state_count(s), 2);
	CHECK(state_consistent(s));

	/* the same through slc_hash alone */
	{
		slc_hash	h;
		uint8_t		wm[SLC_WATERMARK_LEN];

		slc_hash_init(&h);
		slc_hash_add(&h, SLC_NS_DATA, (const uint8_t *) "b", 1, (const uint8_t *) "22", 2);
		slc_watermark_encode(-3, 102, wm);
		slc_hash_add(&h, SLC_NS_CLIENT, (const uint8_t *) "client-a", 8, wm, sizeof(wm));
		CHECK(slc_hash_equal(&h, slc_state_hash(s)));
	}
	slc_state_free(s);
}

/*
 * Retire entries (client_seq SLC_RETIRE_SEQ): the watermark goes, whatever
 * it was; retiring a client without one changes nothing; the changes of
 * the entry still apply; and the client id starts over afterwards.
 */
static void
test_apply_retire(void)
{
	slc_state  *s = slc_state_new();
	slc_change	c[2];
	uint8_t    *d;
	uint8_t    *empty;
	size_t		len = 0;
	size_t		elen = 0;
	slc_hash	before;
	const uint8_t *v;
	size_t		vlen;
	int64_t		seq;
	int64_t		lsn;

	REQUIRE(s != NULL);
	empty = encode(NULL, 0, &elen);
	REQUIRE(empty != NULL);
	c[0] = set_change("a", "1");
	d = encode(c, 1, &len);
	REQUIRE(d != NULL);
	CHECK(slc_state_apply_entry(s, d, len, 1, "client-a", 8, 5) == SLC_OK);
	CHECK(slc_state_apply_entry(s, d, len, 2, "client-b", 8, 9) == SLC_OK);
	free(d);
	CHECK_EQ_U64(slc_state_count(s), 3);

	/* retiring client-a leaves the data and client-b alone */
	CHECK(slc_state_apply_entry(s, empty, elen, 3, "client-a", 8,
								SLC_RETIRE_SEQ) == SLC_OK);
	CHECK(!slc_state_get(s, SLC_NS_CLIENT, (const uint8_t *) "client-a", 8, &v, &vlen));
	CHECK(slc_state_get(s, SLC_NS_CLIENT, (const uint8_t *) "client-b", 8, &v, &vlen));
	CHECK(slc_state_get(s, SLC_NS_DATA, (const uint8_t *) "a", 1, &v, &vlen));
	CHECK_EQ_U64(slc_state_count(s), 2);
	CHECK(state_consistent(s));

	/* a second retire, or one of an unknown client, changes nothing */
	before = *slc_state_hash(s);
	CHECK(slc_state_apply_entry(s, empty, elen, 4, "client-a", 8,
								SLC_RETIRE_SEQ) == SLC_OK);
	CHECK(slc_state_apply_entry(s, empty, elen, 5, "nobody", 6,
								SLC_RETIRE_SEQ) == SLC_OK);
	CHECK(slc_hash_equal(&before, slc_state_hash(s)));

	/* the fold rule looks at client_seq only: changes of the entry apply */
	c[0] = del_change("a");
	c[1] = set_change("b", "2");
	d = encode(c, 2, &len);
	REQUIRE(d != NULL);
	CHECK(slc_state_apply_entry(s, d, len, 6, "client-b", 8,
								SLC_RETIRE_SEQ) == SLC_OK);
	free(d);
	CHECK(!slc_state_get(s, SLC_NS_DATA, (const uint8_t *) "a", 1, &v, &vlen));
	CHECK(slc_state_get(s, SLC_NS_DATA, (const uint8_t *) "b", 1, &v, &vlen));
	CHECK(!slc_state_get(s, SLC_NS_CLIENT, (const uint8_t *) "client-b", 8, &v, &vlen));
	CHECK_EQ_U64(slc_state_count(s), 1);

	/* a retired client is new again, with any client_seq */
	CHECK(slc_state_apply_entry(s, empty, elen, 7, "client-a", 8, 1) == SLC_OK);
	CHECK(slc_state_get(s, SLC_NS_CLIENT, (const uint8_t *) "client-a", 8, &v, &vlen));
	REQUIRE(vlen == SLC_WATERMARK_LEN);
	slc_watermark_decode(v, &seq, &lsn);
	CHECK(seq == 1 && lsn == 7);
	CHECK(state_consistent(s));

	/* the same through slc_hash alone */
	{
		slc_hash	h;
		uint8_t		wm[SLC_WATERMARK_LEN];

		slc_hash_init(&h);
		slc_hash_add(&h, SLC_NS_DATA, (const uint8_t *) "b", 1, (const uint8_t *) "2", 1);
		slc_watermark_encode(1, 7, wm);
		slc_hash_add(&h, SLC_NS_CLIENT, (const uint8_t *) "client-a", 8, wm, sizeof(wm));
		CHECK(slc_hash_equal(&h, slc_state_hash(s)));
	}
	free(empty);
	slc_state_free(s);
}

/* One entry that grows a fresh state many times over. */
static void
test_apply_entry_large(void)
{
	enum
	{
		N = 5000
	};
	slc_change *c = calloc(N, sizeof(slc_change));
	uint8_t    *keys = calloc(N, 2);
	slc_state  *s = slc_state_new();
	uint8_t    *d;
	size_t		len = 0;
	uint32_t	i;
	int			bad = 0;

	REQUIRE(c != NULL && keys != NULL && s != NULL);
	for (i = 0; i < N; i++)
	{
		keys[2 * i] = (uint8_t) i;
		keys[2 * i + 1] = (uint8_t) (i >> 8);
		c[i].key = keys + 2 * i;
		c[i].klen = 2;
		c[i].val = keys + 2 * i;
		c[i].vlen = 1;
		c[i].is_delete = (i % 5 == 4);	/* deletes of absent keys */
	}
	d = encode(c, N, &len);
	REQUIRE(d != NULL);
	CHECK(slc_state_apply_entry(s, d, len, 1, "c", 1, 1) == SLC_OK);
	free(d);
	CHECK_EQ_U64(slc_state_count(s), N - N / 5 + 1);
	CHECK(state_consistent(s));

	/* now delete what the first entry set */
	for (i = 0; i < N; i++)
		c[i].is_delete = 1;
	d = encode(c, N, &len);
	REQUIRE(d != NULL);
	CHECK(slc_state_apply_entry(s, d, len, 2, NULL, 0, 0) == SLC_OK);
	free(d);
	CHECK_EQ_U64(slc_state_count(s), 1);
	for (i = 0; i < N; i++)
		if (slc_state_get(s, SLC_NS_DATA, keys + 2 * i, 2, NULL, NULL))
			bad++;
	CHECK(bad == 0);
	CHECK(state_consistent(s));
	slc_state_free(s);
	free(c);
	free(keys);
}

/* A bad delta changes nothing: not the items, the hash or the watermark. */
static void
test_apply_entry_all_or_nothing(void)
{
	static const char *bad[] = {
		/* ("a","new") ok, then a truncated second change */
		"0102000000" "0100000061" "03000000" "6e6577" "0100",
		/* ("a","new") ok, then ("b") with a value past the end */
		"0102000000010000006103000000" "6e6577" "01000000620900000078",
		/* trailing byte after two good changes */
		"0102000000010000006103000000" "6e6577" "0100000062ffffffff" "00",
		/* ("a","new"), delete "b", ("a","x"): duplicate */
		"0103000000010000006103000000" "6e6577" "0100000062ffffffff" "010000006101000000" "78",
		/* wrong version, empty */
		"0200000000",
		"",
	};
	slc_state  *s = slc_state_new();
	slc_hash	before;
	const uint8_t *v;
	size_t		vlen;
	size_t		i;
	static const slc_status want[] = {
		SLC_ERR_TRUNCATED, SLC_ERR_LENGTH, SLC_ERR_TRAILING,
		SLC_ERR_DUPLICATE_KEY, SLC_ERR_VERSION, SLC_ERR_EMPTY
	};

	REQUIRE(s != NULL);
	CHECK(slc_state_put(s, SLC_NS_DATA, (const uint8_t *) "a", 1, (const uint8_t *) "old", 3) == SLC_OK);
	CHECK(slc_state_put(s, SLC_NS_DATA, (const uint8_t *) "b", 1, (const uint8_t *) "keep", 4) == SLC_OK);
	before = *slc_state_hash(s);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		size_t		len = 0;
		uint8_t    *d = hex_decode(bad[i], &len);
		slc_status	st;

		REQUIRE(d != NULL);
		st = slc_state_apply_entry(s, d, len, 9, "c", 1, 1);
		free(d);
		if (st != want[i])
		{
			fprintf(stderr, "    bad delta %zu: got %s, want %s\n", i,
					slc_status_message(st), slc_status_message(want[i]));
			test_failures++;
		}
		CHECK(slc_hash_equal(&before, slc_state_hash(s)));
		CHECK_EQ_U64(slc_state_count(s), 2);
		CHECK(slc_state_get(s, SLC_NS_DATA, (const uint8_t *) "a", 1, &v, &vlen));
		CHECK(vlen == 3 && memcmp(v, "old", 3) == 0);
		CHECK(slc_state_get(s, SLC_NS_DATA, (const uint8_t *) "b", 1, &v, &vlen));
		CHECK(!slc_state_get(s, SLC_NS_CLIENT, (const uint8_t *) "c", 1, &v, &vlen));
		CHECK(state_consistent(s));
	}
	slc_state_free(s);
}

/*
 * Out of memory at every possible allocation: the call reports NOMEM and
 * the state is exactly as before; with enough memory the same call works.
 */
static int
state_same(const slc_state *s, const slc_hash *h, size_t count)
{
	return slc_hash_equal(slc_state_hash(s), h) &&
		slc_state_count(s) == count && state_consistent(s);
}

static void
test_nomem(void)
{
	slc_state  *s;
	slc_change	c[12];
	char		keys[12][4];
	uint8_t    *d;
	size_t		len = 0;
	slc_hash	before;
	size_t		count;
	long		budget;
	int			failures = 0;
	int			i;
	slc_status	st;

	/* slc_state_new: NULL, no leak */
	for (budget = 0; budget < 2; budget++)
	{
		alloc_budget = budget;
		s = slc_state_new();
		alloc_budget = -1;
		CHECK(s == NULL);
		slc_state_free(s);
	}

	s = slc_state_new();
	REQUIRE(s != NULL);
	/* 11 items in 16 slots: the entry below has to grow the table */
	for (i = 0; i < 11; i++)
	{
		char		k[3] = {'b', (char) ('a' + i), 0};

		CHECK(slc_state_put(s, SLC_NS_DATA, (const uint8_t *) k, 2, (const uint8_t *) "old", 3) == SLC_OK);
	}
	for (i = 0; i < 12; i++)
	{
		/* 8 new keys, 2 overwrites, 2 deletes of existing keys */
		keys[i][0] = i < 8 ? 'n' : 'b';
		keys[i][1] = (char) ('a' + (i < 10 ? i : i - 10));
		keys[i][2] = 0;
		c[i] = i < 10 ? set_change(keys[i], "new") : del_change(keys[i]);
	}
	d = encode(c, 12, &len);
	REQUIRE(d != NULL);

	before = *slc_state_hash(s);
	count = slc_state_count(s);
	for (budget = 0; budget < 1000; budget++)
	{
		alloc_budget = budget;
		st = slc_state_apply_entry(s, d, len, 5, "cl", 2, 1);
		alloc_budget = -1;
		if (st == SLC_OK)
			break;
		CHECK(st == SLC_ERR_NOMEM);
		if (!state_same(s, &before, count))
			failures++;
		CHECK(!slc_state_get(s, SLC_NS_CLIENT, (const uint8_t *) "cl", 2, NULL, NULL));
	}
	CHECK(failures == 0);
	CHECK(budget > 10);			/* changes, index, scratch, 11 items, table */
	CHECK(st == SLC_OK);
	CHECK_EQ_U64(slc_state_count(s), 11 + 8 - 2 + 1);
	CHECK(state_consistent(s));

	/* slc_state_put of a new key, at a size that forces growth */
	while (slc_state_count(s) < 24)
	{
		char		k[3] = {'p', (char) ('a' + slc_state_count(s)), 0};

		CHECK(slc_state_put(s, SLC_NS_DATA, (const uint8_t *) k, 2, (const uint8_t *) "x", 1) == SLC_OK);
	}
	before = *slc_state_hash(s);
	count = slc_state_count(s);
	for (budget = 0; budget < 100; budget++)
	{
		alloc_budget = budget;
		st = slc_state_put(s, SLC_NS_DATA, (const uint8_t *) "zz", 2, (const uint8_t *) "y", 1);
		alloc_budget = -1;
		if (st == SLC_OK)
			break;
		CHECK(st == SLC_ERR_NOMEM);
		CHECK(state_same(s, &before, count));
	}
	CHECK(budget == 2);			/* item, then the doubled table */
	CHECK_EQ_U64(slc_state_count(s), count + 1);

	/* overwrite: one allocation, and the old value survives its failure */
	before = *slc_state_hash(s);
	alloc_budget = 0;
	st = slc_state_put(s, SLC_NS_DATA, (const uint8_t *) "zz", 2, (const uint8_t *) "new", 3);
	alloc_budget = -1;
	CHECK(st == SLC_ERR_NOMEM);
	CHECK(state_same(s, &before, count + 1));
	/* delete never allocates */
	alloc_budget = 0;
	st = slc_state_put(s, SLC_NS_DATA, (const uint8_t *) "zz", 2, NULL, 0);
	alloc_budget = -1;
	CHECK(st == SLC_OK);
	CHECK_EQ_U64(slc_state_count(s), count);

	free(d);
	slc_state_free(s);
}

/* ---------------------------------------------------------------------
 * Randomized equivalence
 * ---------------------------------------------------------------------
 */
#define PK_KEYS		12
#define PK_CLIENTS	3
#define PK_STEPS	2000

typedef struct
{
	uint8_t    *delta;
	size_t		len;
	int64_t		lsn;
	int			client;			/* -1: none */
	int64_t		seq;
} prop_entry;

static const char *const pk_keys[PK_KEYS] = {
	"", "a", "b", "ab", "ba", "abc", "k1", "k2", "k10", "\x01", "\xff\xfe", "zzzz"
};
static const char *const pk_clients[PK_CLIENTS] = {"c1", "c2", "client-three"};

typedef struct
{
	int			present;
	uint8_t		val[8];
	size_t		vlen;
} model_item;

/* Fresh state from a model of the final items: the from-scratch answer. */
static slc_state *
state_from_model(const model_item *m, const int64_t (*wm)[2])
{
	slc_state  *s = slc_state_new();
	int			k;

	if (s == NULL)
		return NULL;
	for (k = 0; k < PK_KEYS; k++)
		if (m[k].present &&
			slc_state_put(s, SLC_NS_DATA, (const uint8_t *) pk_keys[k],
						  strlen(pk_keys[k]), m[k].val, m[k].vlen) != SLC_OK)
			goto fail;
	for (k = 0; k < PK_CLIENTS; k++)
	{
		uint8_t		enc[SLC_WATERMARK_LEN];

		if (wm[k][0] == INT64_MIN)
			continue;
		slc_watermark_encode(wm[k][0], wm[k][1], enc);
		if (slc_state_put(s, SLC_NS_CLIENT, (const uint8_t *) pk_clients[k],
						  strlen(pk_clients[k]), enc, sizeof(enc)) != SLC_OK)
			goto fail;
	}
	return s;
fail:
	slc_state_free(s);
	return NULL;
}

/*
 * Fold the log backwards the way compaction does: walk newest to oldest,
 * and the first sighting of each (ns, key) decides its final value.
 */
static slc_state *
state_fold_backwards(const prop_entry *log, int n)
{
	slc_state  *out = slc_state_new();
	slc_state  *seen = slc_state_new();
	int			i;

	if (out == NULL || seen == NULL)
		goto fail;
	for (i = n - 1; i >= 0; i--)
	{
		slc_delta_reader r;
		slc_change	c;
		int			more = 1;

		if (log[i].client >= 0)
		{
			const uint8_t *id = (const uint8_t *) pk_clients[log[i].client];
			size_t		idlen = strlen(pk_clients[log[i].client]);

			if (!slc_state_get(seen, SLC_NS_CLIENT, id, idlen, NULL, NULL))
			{
				uint8_t		enc[SLC_WATERMARK_LEN];

				slc_watermark_encode(log[i].seq, log[i].lsn, enc);
				if (slc_state_put(seen, SLC_NS_CLIENT, id, idlen, (const uint8_t *) "", 0) != SLC_OK ||
					slc_state_put(out, SLC_NS_CLIENT, id, idlen, enc, sizeof(enc)) != SLC_OK)
					goto fail;
			}
		}
		if (slc_delta_reader_init(&r, log[i].delta, log[i].len, UINT32_MAX) != SLC_OK)
			goto fail;
		for (;;)
		{
			if (slc_delta_next(&r, &c, &more, NULL) != SLC_OK)
				goto fail;
			if (!more)
				break;
			if (slc_state_get(seen, SLC_NS_DATA, c.key, c.klen, NULL, NULL))
				continue;
			if (slc_state_put(seen, SLC_NS_DATA, c.key, c.klen, (const uint8_t *) "", 0) != SLC_OK ||
				slc_state_put(out, SLC_NS_DATA, c.key, c.klen, c.val, c.vlen) != SLC_OK)
				goto fail;
		}
	}
	slc_state_free(seen);
	return out;
fail:
	slc_state_free(seen);
	slc_state_free(out);
	return NULL;
}

static void
test_property_random_log(void)
{
	prop_entry *log = calloc(PK_STEPS, sizeof(prop_entry));
	model_item	model[PK_KEYS];
	int64_t		wm[PK_CLIENTS][2];
	slc_state  *inc = slc_state_new();	/* one state, applied entry by entry */
	slc_state  *rot = slc_state_new();	/* same, but re-snapshotted at times */
	slc_state  *fresh = NULL;
	slc_state  *folded = NULL;
	uint64_t	rng = UINT64_C(0x243F6A8885A308D3);
	int			step;
	int			k;
	int			rotations = 0;
	int			mismatches = 0;
	int			rejected = 0;

	REQUIRE(log != NULL && inc != NULL && rot != NULL);
	memset(model, 0, sizeof(model));
	for (k = 0; k < PK_CLIENTS; k++)
		wm[k][0] = wm[k][1] = INT64_MIN;

	for (step = 0; step < PK_STEPS; step++)
	{
		slc_change	c[PK_KEYS];
		uint8_t		vals[PK_KEYS][8];
		int			used[PK_KEYS];
		uint32_t	m = rng_below(&rng, 7);
		uint32_t	j;
		prop_entry *e = &log[step];
		slc_status	st;

		memset(used, 0, sizeof(used));
		for (j = 0; j < m; j++)
		{
			int			kk;

			do
				kk = (int) rng_below(&rng, PK_KEYS);
			while (used[kk]);
			used[kk] = 1;
			memset(&c[j], 0, sizeof(c[j]));
			c[j].key = (const uint8_t *) pk_keys[kk];
			c[j].klen = (uint32_t) strlen(pk_keys[kk]);
			if (rng_below(&rng, 4) == 0)
				c[j].is_delete = 1;
			else
			{
				uint32_t	b;

				c[j].vlen = rng_below(&rng, 7);
				for (b = 0; b < c[j].vlen; b++)
					vals[j][b] = (uint8_t) ("xyz\0\xff"[rng_below(&rng, 5)]);
				c[j].val = vals[j];
			}
		}
		e->delta = encode(c, m, &e->len);
		REQUIRE(e->delta != NULL);
		e->lsn = 1000 + step;
		e->client = rng_below(&rng, 3) == 0 ? -1 : (int) rng_below(&rng, PK_CLIENTS);
		e->seq = (int64_t) rng_below(&rng, 100) - 50;

		st = slc_state_apply_entry(inc, e->delta, e->len, e->lsn,
								   e->client >= 0 ? pk_clients[e->client] : NULL,
								   e->client >= 0 ? strlen(pk_clients[e->client]) : 0,
								   e->seq);
		CHECK(st == SLC_OK);
		st = slc_state_apply_entry(rot, e->delta, e->len, e->lsn,
								   e->client >= 0 ? pk_clients[e->client] : NULL,
								   e->client >= 0 ? strlen(pk_clients[e->client]) : 0,
								   e->seq);
		CHECK(st == SLC_OK);

		/* model */
		for (j = 0; j < m; j++)
		{
			for (k = 0; k < PK_KEYS; k++)
				if (strlen(pk_keys[k]) == c[j].klen &&
					memcmp(pk_keys[k], c[j].key, c[j].klen) == 0)
					break;
			model[k].present = !c[j].is_delete;
			model[k].vlen = c[j].vlen;
			if (c[j].vlen > 0)
				memcpy(model[k].val, c[j].val, c[j].vlen);
		}
		if (e->client >= 0)
		{
			wm[e->client][0] = e->seq;
			wm[e->client][1] = e->lsn;
		}

		/* every so often a bad entry, which must change nothing */
		if (rng_below(&rng, 10) == 0 && e->len > SLC_DELTA_HEADER_LEN)
		{
			uint8_t    *cut = dup_exact(e->delta, e->len - 1);
			slc_hash	h = *slc_state_hash(inc);

			REQUIRE(cut != NULL);
			if (slc_state_apply_entry(inc, cut, e->len - 1, e->lsn + 1, "c1", 2, 1) != SLC_OK)
				rejected++;
			CHECK(slc_hash_equal(&h, slc_state_hash(inc)));
			free(cut);
		}

		if (!state_consistent(inc))
			mismatches++;

		/* rotation: snapshot into a new state and carry on from there */
		if (rng_below(&rng, 50) == 0)
		{
			slc_state  *copy = state_copy(rot);

			REQUIRE(copy != NULL);
			CHECK(slc_hash_equal(slc_state_hash(copy), slc_state_hash(rot)));
			slc_state_free(rot);
			rot = copy;
			rotations++;
		}
		if (!slc_hash_equal(slc_state_hash(rot), slc_state_hash(inc)))
			mismatches++;
	}
	CHECK(mismatches == 0);
	CHECK(rotations > 10);
	CHECK(rejected > 50);

	fresh = state_from_model(model, (const int64_t (*)[2]) wm);
	folded = state_fold_backwards(log, PK_STEPS);
	REQUIRE(fresh != NULL && folded != NULL);
	CHECK(slc_hash_equal(slc_state_hash(fresh), slc_state_hash(inc)));
	CHECK(slc_hash_equal(slc_state_hash(folded), slc_state_hash(inc)));
	CHECK_EQ_U64(slc_state_count(fresh), slc_state_count(inc));
	{
		slc_state  *copy = state_copy(inc);

		REQUIRE(copy != NULL);
		CHECK(slc_hash_equal(slc_state_hash(copy), slc_state_hash(inc)));
		slc_state_free(copy);
	}
	fprintf(stderr, "    %d entries, %d rotations, %d bad entries rejected, %zu items at the end\n",
			PK_STEPS, rotations, rejected, slc_state_count(inc));

	for (step = 0; step < PK_STEPS; step++)
		free(log[step].delta);
	free(log);
	slc_state_free(inc);
	slc_state_free(rot);
	slc_state_free(fresh);
	slc_state_free(folded);
}

/* ---------------------------------------------------------------------
 * Protocol vectors: pinned hex, plus recomputation without the core
 * ---------------------------------------------------------------------
 */
/*
 * Buckets (PROTOCOL.md 11a): the layout by hand, a key longer than the
 * one-shot buffer, the range, and range hashes of a random state summing
 * to its hash whatever the order items arrive in.
 */
static void
test_bucket(void)
{
	uint8_t		buf[5 + 2048];
	uint8_t		key[2048];
	uint32_t	counts[SLC_BUCKETS];
	slc_hash	whole,
				sum,
			   *ranges;
	uint64_t	seed = 7;
	size_t		klen;
	int			i,
				used = 0;

	for (i = 0; i < (int) sizeof(key); i++)
		key[i] = (uint8_t) (i * 31 + 5);
	for (klen = 0; klen <= sizeof(key); klen += 97)
	{
		uint64_t	h;

		buf[0] = 1;
		buf[1] = (uint8_t) klen;
		buf[2] = (uint8_t) (klen >> 8);
		buf[3] = 0;
		buf[4] = 0;
		memcpy(buf + 5, key, klen);
		h = XXH3_64bits(buf, 5 + klen);
		CHECK(slc_bucket(1, key, klen) == (uint32_t) (h >> 52));
		buf[0] = 2;
		h = XXH3_64bits(buf, 5 + klen);
		CHECK(slc_bucket(2, key, klen) == (uint32_t) (h >> 52));
	}

	memset(counts, 0, sizeof(counts));
	ranges = calloc(SLC_BUCKETS, sizeof(slc_hash));
	CHECK(ranges != NULL);
	if (ranges == NULL)
		return;
	for (i = 0; i < SLC_BUCKETS; i++)
		slc_hash_init(&ranges[i]);
	slc_hash_init(&whole);
	for (i = 0; i < 40000; i++)
	{
		uint8_t		k[8],
					v[12];
		uint32_t	b;
		int			j;

		for (j = 0; j < 8; j++)
		{
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			k[j] = (uint8_t) (seed >> 56);
		}
		memcpy(v, k, 8);
		memcpy(v + 8, &i, 4);
		b = slc_bucket(1, k, sizeof(k));
		CHECK(b < SLC_BUCKETS);
		counts[b]++;
		slc_hash_add(&ranges[b], 1, k, sizeof(k), v, sizeof(v));
		slc_hash_add(&whole, 1, k, sizeof(k), v, sizeof(v));
	}
	slc_hash_init(&sum);
	for (i = SLC_BUCKETS - 1; i >= 0; i--)
	{
		slc_hash_combine(&sum, &ranges[i]);
		used += counts[i] > 0;
		/* 40000 keys over 4096 buckets: about 9.8 each, never 40 */
		CHECK(counts[i] < 40);
	}
	CHECK(slc_hash_equal(&sum, &whole));
	CHECK(used > 4000);
	free(ranges);
}

static const struct
{
	const char *name;
	const char *hex;
}			expected_vectors[] =
{
	{"a_empty_state_hash",
	"010000000000000000000000000000000000000000000000000000000000000000"},
	{"b_one_item_hash",
	"0136282031196e61c8a365c60f256ddf2d01000000000000000600000000000000"},
	{"c_two_large_items_hash",
	"01b233b8404d55cad3ccc76d2b91419ba702000000000000000820000000000000"},
	{"d_item_and_watermark_hash",
	"01081cfce270eb554be4279d67530e2f3f02000000000000001e00000000000000"},
	{"e1_a_to_b_hash",
	"01ffb3194eafaaf7c73facba55976c4dee01000000000000000200000000000000"},
	{"e2_b_to_a_hash",
	"01d4ea4ad204227fc035e2f4c22e81c88e01000000000000000200000000000000"},
	{"f1_delta_set_and_delete",
	"0102000000020000006b31020000007631020000006b32ffffffff"},
	{"f2_delta_empty",
	"0100000000"},
	{"j1_retired_watermark_hash",
	"0136282031196e61c8a365c60f256ddf2d01000000000000000600000000000000"},
	{"j2_client_again_hash",
	"0192e50b8928db9287538f5c8c993cc05d02000000000000001e00000000000000"},
	{"k1_chain_entry_1",
	"9d00a2f9ee3d9e7b55179678517826ff"},
	{"k2_chain_entry_2",
	"ce173f79fe3ceca9a4bc61cc1c55c01f"},
};

static void
test_vectors_pinned(void)
{
	size_t		n = sizeof(expected_vectors) / sizeof(expected_vectors[0]);
	size_t		i;
	char		hex[VEC_HEX_MAX];

	CHECK_EQ_U64(vec_count(), n);
	for (i = 0; i < n && i < vec_count(); i++)
	{
		CHECK(strcmp(vec_name(i), expected_vectors[i].name) == 0);
		CHECK(vec_hex(i, hex) == 0);
		if (strcmp(hex, expected_vectors[i].hex) != 0)
		{
			fprintf(stderr, "    vector %s:\n      got  %s\n      want %s\n",
					expected_vectors[i].name, hex, expected_vectors[i].hex);
			test_failures++;
		}
	}
	/* (e): moving a value between keys must show */
	CHECK(strcmp(expected_vectors[4].hex, expected_vectors[5].hex) != 0);
	/* (j1): retiring the watermark of (d) gives (b) back */
	CHECK(strcmp(expected_vectors[8].hex, expected_vectors[1].hex) == 0);
}

/* Sum of XXH3-128 item hashes, hand-assembled, serialized by hand. */
typedef struct
{
	uint64_t	lo;
	uint64_t	hi;
	uint64_t	count;
	uint64_t	bytes;
} manual_sum;

static void
manual_add(manual_sum *m, const uint8_t *item, size_t len, size_t kvlen)
{
	XXH128_hash_t d = XXH3_128bits(item, len);
	uint64_t	lo = m->lo + d.low64;

	m->hi += d.high64 + (lo < m->lo ? 1 : 0);
	m->lo = lo;
	m->count++;
	m->bytes += kvlen;
}

static void
manual_hex(const manual_sum *m, char *hex)
{
	uint8_t		out[SLC_HASH_LEN];
	uint64_t	w[4];
	int			i;
	int			b;

	w[0] = m->lo;
	w[1] = m->hi;
	w[2] = m->count;
	w[3] = m->bytes;
	out[0] = 1;
	for (i = 0; i < 4; i++)
		for (b = 0; b < 8; b++)
			out[1 + 8 * i + b] = (uint8_t) (w[i] >> (8 * b));
	vec_to_hex(out, sizeof(out), hex);
}

static void
test_vectors_independent(void)
{
	static const uint8_t item_b[] = {
		0x01, 0x01, 0x00, 0x00, 0x00, 0x01, 'h', 'e', 'l', 'l', 'o'
	};
	static const uint8_t item_client[] = {
		0x02, 0x08, 0x00, 0x00, 0x00,
		'c', 'l', 'i', 'e', 'n', 't', '-', 'a',
		0x07, 0, 0, 0, 0, 0, 0, 0,
		0x03, 0, 0, 0, 0, 0, 0, 0
	};
	static const uint8_t item_client_again[] = {
		0x02, 0x08, 0x00, 0x00, 0x00,
		'c', 'l', 'i', 'e', 'n', 't', '-', 'a',
		0x01, 0, 0, 0, 0, 0, 0, 0,
		0x05, 0, 0, 0, 0, 0, 0, 0
	};
	static const uint8_t item_ab[] = {0x01, 0x01, 0, 0, 0, 'a', 'b'};
	static const uint8_t item_ba[] = {0x01, 0x01, 0, 0, 0, 'b', 'a'};
	size_t		clen = 1 + 4 + 4 + 4096;
	uint8_t    *c1 = malloc(clen);
	uint8_t    *c2 = malloc(clen);
	manual_sum	m;
	char		hex[2 * SLC_HASH_LEN + 1];

	REQUIRE(c1 != NULL && c2 != NULL);

	memset(&m, 0, sizeof(m));
	manual_hex(&m, hex);
	CHECK(strcmp(hex, expected_vectors[0].hex) == 0);

	manual_add(&m, item_b, sizeof(item_b), 1 + 5);
	manual_hex(&m, hex);
	CHECK(strcmp(hex, expected_vectors[1].hex) == 0);

	manual_add(&m, item_client, sizeof(item_client), 8 + 16);
	manual_hex(&m, hex);
	CHECK(strcmp(hex, expected_vectors[3].hex) == 0);

	/* (j2): (b) and the client's new watermark (seq 1, lsn 5) */
	memset(&m, 0, sizeof(m));
	manual_add(&m, item_b, sizeof(item_b), 1 + 5);
	manual_add(&m, item_client_again, sizeof(item_client_again), 8 + 16);
	manual_hex(&m, hex);
	CHECK(strcmp(hex, expected_vectors[9].hex) == 0);

	memset(&m, 0, sizeof(m));
	c1[0] = c2[0] = 0x01;
	memcpy(c1 + 1, "\x04\x00\x00\x00\x00\x00\x00\x01", 8);
	memcpy(c2 + 1, "\x04\x00\x00\x00\x00\x00\x00\x02", 8);
	memset(c1 + 9, 0xAB, 4096);
	memset(c2 + 9, 0xCD, 4096);
	manual_add(&m, c1, clen, 4 + 4096);
	manual_add(&m, c2, clen, 4 + 4096);
	manual_hex(&m, hex);
	CHECK(strcmp(hex, expected_vectors[2].hex) == 0);

	memset(&m, 0, sizeof(m));
	manual_add(&m, item_ab, sizeof(item_ab), 2);
	manual_hex(&m, hex);
	CHECK(strcmp(hex, expected_vectors[4].hex) == 0);
	memset(&m, 0, sizeof(m));
	manual_add(&m, item_ba, sizeof(item_ba), 2);
	manual_hex(&m, hex);
	CHECK(strcmp(hex, expected_vectors[5].hex) == 0);

	/* (d) also comes out of apply_entry with a real client watermark */
	{
		slc_state  *s = slc_state_new();
		static const uint8_t key[] = {0x01};
		slc_change	ch;
		uint8_t    *d;
		size_t		len = 0;

		REQUIRE(s != NULL);
		memset(&ch, 0, sizeof(ch));
		ch.key = key;
		ch.klen = 1;
		ch.val = (const uint8_t *) "hello";
		ch.vlen = 5;
		d = encode(&ch, 1, &len);
		REQUIRE(d != NULL);
		CHECK(slc_state_apply_entry(s, d, len, 3, "client-a", 8, 7) == SLC_OK);
		hash_hex(slc_state_hash(s), hex);
		CHECK(strcmp(hex, expected_vectors[3].hex) == 0);
		free(d);
		slc_state_free(s);
	}
	free(c1);
	free(c2);
}

/* ---------------------------------------------------------------------
 * Runner
 * ---------------------------------------------------------------------
 */
/*
 * The chain step against the formula of PROTOCOL.md section 4a written out
 * as one buffer and hashed in one shot, and the properties a position
 * needs: any change of the previous chain, the LSN, the delta, the client
 * or its sequence number changes the value.
 */
static void
chain_by_hand(const uint8_t prev[16], int64_t lsn, const uint8_t *delta,
			  uint32_t dlen, const char *cid, uint32_t clen, int64_t seq,
			  uint8_t out[16])
{
	uint8_t		buf[256];
	size_t		n = 0;
	XXH128_hash_t d;
	int			b;

	memcpy(buf, prev, 16);
	n = 16;
	for (b = 0; b < 8; b++)
		buf[n++] = (uint8_t) ((uint64_t) lsn >> (8 * b));
	for (b = 0; b < 4; b++)
		buf[n++] = (uint8_t) (dlen >> (8 * b));
	memcpy(buf + n, delta, dlen);
	n += dlen;
	for (b = 0; b < 4; b++)
		buf[n++] = (uint8_t) (clen >> (8 * b));
	memcpy(buf + n, cid, clen);
	n += clen;
	for (b = 0; b < 8; b++)
		buf[n++] = (uint8_t) ((uint64_t) seq >> (8 * b));
	d = XXH3_128bits(buf, n);
	for (b = 0; b < 8; b++)
	{
		out[b] = (uint8_t) (d.low64 >> (8 * b));
		out[8 + b] = (uint8_t) (d.high64 >> (8 * b));
	}
}

static void
test_chain(void)
{
	static const uint8_t delta[] = {0x01, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x00, 0x00, 'k', 0x01, 0x00, 0x00, 0x00, 'v'};
	uint8_t		prev[16];
	uint8_t		a[16],
				b[16],
				c[16];
	int			i;

	for (i = 0; i < 16; i++)
		prev[i] = (uint8_t) (i * 17);
	slc_chain_next(prev, 42, delta, sizeof(delta), "cl", 2, 9, a);
	chain_by_hand(prev, 42, delta, sizeof(delta), "cl", 2, 9, b);
	CHECK(memcmp(a, b, 16) == 0);
	slc_chain_next(prev, 42, delta, sizeof(delta), NULL, 0, 9, a);
	chain_by_hand(prev, 42, delta, sizeof(delta), "", 0, -1, b);
	CHECK(memcmp(a, b, 16) == 0);

	slc_chain_next(prev, 42, delta, sizeof(delta), "cl", 2, 9, a);
	slc_chain_next(prev, 43, delta, sizeof(delta), "cl", 2, 9, c);
	CHECK(memcmp(a, c, 16) != 0);
	slc_chain_next(prev, 42, delta, sizeof(delta) - 1, "cl", 2, 9, c);
	CHECK(memcmp(a, c, 16) != 0);
	slc_chain_next(prev, 42, delta, sizeof(delta), "cl", 2, 10, c);
	CHECK(memcmp(a, c, 16) != 0);
	slc_chain_next(prev, 42, delta, sizeof(delta), "cm", 2, 9, c);
	CHECK(memcmp(a, c, 16) != 0);
	slc_chain_next(prev, 42, delta, sizeof(delta), NULL, 0, 0, c);
	CHECK(memcmp(a, c, 16) != 0);
	prev[15] ^= 1;
	slc_chain_next(prev, 42, delta, sizeof(delta), "cl", 2, 9, c);
	CHECK(memcmp(a, c, 16) != 0);
	slc_chain_zero(c);
	for (i = 0; i < 16; i++)
		CHECK(c[i] == 0);
}

static const struct
{
	const char *name;
	void		(*fn) (void);
}			tests[] =
{
	{"delta_roundtrip", test_delta_roundtrip},
	{"delta_end_does_not_write", test_delta_end_does_not_write},
	{"delta_empty", test_delta_empty},
	{"delta_errors", test_delta_errors},
	{"delta_limits", test_delta_limits},
	{"delta_error_is_sticky", test_delta_error_is_sticky},
	{"delta_room", test_delta_room},
	{"delta_fuzz", test_delta_fuzz},
	{"status_messages", test_status_messages},
	{"duplicates", test_duplicates},
	{"duplicates_large", test_duplicates_large},
	{"item_hash_bytes", test_item_hash_bytes},
	{"hash_order_independent", test_hash_order_independent},
	{"hash_value_moves", test_hash_value_moves},
	{"hash_add_remove", test_hash_add_remove},
	{"hash_carry_borrow", test_hash_carry_borrow},
	{"hash_combine_union", test_hash_combine_union},
	{"hash_serialize", test_hash_serialize},
	{"watermark", test_watermark},
	{"state_basic", test_state_basic},
	{"state_many", test_state_many},
	{"apply_entry", test_apply_entry},
	{"apply_retire", test_apply_retire},
	{"apply_entry_large", test_apply_entry_large},
	{"apply_entry_all_or_nothing", test_apply_entry_all_or_nothing},
	{"nomem", test_nomem},
	{"property_random_log", test_property_random_log},
	{"vectors_pinned", test_vectors_pinned},
	{"vectors_independent", test_vectors_independent},
	{"chain", test_chain},
	{"bucket", test_bucket},
};

int
main(void)
{
	size_t		i;
	int			passed = 0;
	int			failed = 0;

	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
	{
		test_failures = 0;
		tests[i].fn();
		if (test_failures == 0)
		{
			printf("ok   %s\n", tests[i].name);
			passed++;
		}
		else
		{
			printf("FAIL %s (%d checks failed)\n", tests[i].name, test_failures);
			failed++;
		}
		fflush(stdout);
	}
	printf("core: %d passed, %d failed\n", passed, failed);
	return failed > 0 ? 1 : 0;
}
