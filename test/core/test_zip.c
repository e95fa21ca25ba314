/*
 * test_zip.c
 *
 * Tests of src/core/synclog_zip.c (version 2, compressed deltas; no
 * PostgreSQL): the pinned vectors of PROTOCOL.md section 14 (l) decode to
 * their version 1 deltas, every refusal of the decoder (header, codec,
 * raw_len, frames that are corrupt, short, long, several or trailing, an
 * inner delta that is not valid version 1) with its offset, bombs (a tiny
 * frame announcing or producing far more than the limit) refused before
 * any large allocation, what the encoder compresses and what it leaves,
 * round trips over generated deltas, slc_state_apply_any against
 * slc_state_apply_entry, and allocation failures.  Prints one line per
 * test and "zip: N passed, M failed"; exits non-zero when anything failed.
 *
 * Inputs are malloc'd at their exact length, so the sanitizer and valgrind
 * builds catch a read past the end.  Built with -Wl,--wrap=malloc so that
 * the tests see (and can fail) every allocation of the code under test.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synclog_zip.h"

static int	test_failures;

#define CHECK(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "    %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			test_failures++; \
		} \
	} while (0)

#define REQUIRE(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "    %s:%d: required: %s\n", __FILE__, __LINE__, #cond); \
			test_failures++; \
			return; \
		} \
	} while (0)

/*
 * Allocation wrapper: records the largest request, and fails the next one
 * when fail_next is set (the core's allocations come through here; those
 * libzstd makes inside its own library do not).
 */
static size_t largest_alloc;
static int	fail_next;

void	   *__real_malloc(size_t size);
void	   *__wrap_malloc(size_t size);

void *
__wrap_malloc(size_t size)
{
	if (size > largest_alloc)
		largest_alloc = size;
	if (fail_next)
	{
		fail_next = 0;
		return NULL;
	}
	return __real_malloc(size);
}

static int
nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Lowercase hex into an exact-length heap block; NULL on bad hex. */
static uint8_t *
hex_decode(const char *hex, size_t *len)
{
	size_t		n = strlen(hex);
	uint8_t    *out = malloc(n / 2 > 0 ? n / 2 : 1);

	if (out == NULL || n % 2 != 0)
	{
		free(out);
		return NULL;
	}
	for (size_t i = 0; i < n; i += 2)
	{
		int			hi = nibble(hex[i]),
					lo = nibble(hex[i + 1]);

		if (hi < 0 || lo < 0)
		{
			free(out);
			return NULL;
		}
		out[i / 2] = (uint8_t) (hi << 4 | lo);
	}
	*len = n / 2;
	return out;
}

/* A copy at exact length (len > 0 here), for the sanitizers. */
static uint8_t *
dup_exact(const uint8_t *p, size_t len)
{
	uint8_t    *q = malloc(len + (len == 0));

	return q == NULL ? NULL : memcpy(q, p, len);
}

/* The version 1 encoding of one change key -> value, at exact length. */
static uint8_t *
one_change(const uint8_t *key, uint32_t klen, const uint8_t *val, uint32_t vlen,
		   size_t *len)
{
	slc_change	c = {key, klen, val, vlen, 0};
	uint8_t    *buf = malloc(slc_delta_encoded_size(&c, 1));

	if (buf != NULL)
		*len = slc_delta_encode(&c, 1, buf);
	return buf;
}

/* slc_delta_to_v1 with max_changes unlimited; *out is NULL unless SLC_OK. */
static slc_status
to_v1(const uint8_t *buf, size_t len, size_t max_raw, uint8_t **out,
	  size_t *out_len, size_t *off)
{
	const uint8_t *v1 = NULL;
	uint8_t    *owned = NULL;
	slc_status	st;

	*off = (size_t) -1;
	st = slc_delta_to_v1(NULL, buf, len, max_raw, UINT32_MAX, &v1, out_len,
						 &owned, off);
	*out = owned;
	if (st != SLC_OK)
		*out = NULL;
	return st;
}

/* Decode hex; expect status st (and, on error, offset off). */
static void
expect_hex(const char *hex, size_t max_raw, slc_status want, size_t want_off)
{
	size_t		len = 0;
	uint8_t    *buf = hex_decode(hex, &len);
	uint8_t    *out;
	size_t		out_len = 0;
	size_t		off;
	slc_status	st;

	REQUIRE(buf != NULL);
	st = to_v1(buf, len, max_raw, &out, &out_len, &off);
	if (st != want)
		fprintf(stderr, "    %s: status %d (%s), want %d\n", hex, (int) st,
				slc_status_message(st), (int) want);
	CHECK(st == want);
	if (want != SLC_OK)
	{
		if (off != want_off)
			fprintf(stderr, "    %s: offset %zu, want %zu\n", hex, off, want_off);
		CHECK(off == want_off);
		CHECK(out == NULL);
	}
	free(out);
	free(buf);
}

/* ---------------------------------------------------------------------
 * The vectors of PROTOCOL.md section 14 (j)
 * ---------------------------------------------------------------------
 */

/* (j1) vector (c)'s first item as a delta: key 00000001 -> 4096 x ab. */
static const char vec_j1[] =
	"02021110000028b52ffd60110fb5000068010100000004000100100000ab0200fc07be08c008";
/* (j2) key "note" -> "synclog " 40 times. */
static const char vec_j2[] =
	"02025101000028b52ffd605100050100c80101000000040000006e6f74654001000073796e636c6f67200100d54c2d63";
/* (j3) delta (f1) in a frame of one raw (stored) block, assembled by hand. */
static const char vec_j3[] =
	"02021b00000028b52ffd201bd90000" "0102000000020000006b31020000007631020000006b32ffffffff";
static const char vec_f1[] = "0102000000020000006b31020000007631020000006b32ffffffff";

static void
check_vector(const char *v2hex, const uint8_t *want, size_t want_len)
{
	size_t		len = 0;
	uint8_t    *buf = hex_decode(v2hex, &len);
	uint8_t    *out;
	size_t		out_len = 0;
	size_t		off;
	uint8_t		codec = 0;
	uint32_t	raw_len = 0;

	REQUIRE(buf != NULL);
	CHECK(slc_delta_version(buf, len) == SLC_DELTA_VERSION_ZIP);
	CHECK(slc_zip_header(buf, len, want_len, &codec, &raw_len, &off) == SLC_OK);
	CHECK(codec == SLC_CODEC_ZSTD && raw_len == want_len);
	/* the limit is inclusive: raw_len itself passes, one less does not */
	CHECK(slc_zip_header(buf, len, want_len - 1, &codec, &raw_len, &off) ==
		  SLC_ERR_RAW_LEN && off == 2);
	CHECK(to_v1(buf, len, SLC_ZIP_RAW_MAX, &out, &out_len, &off) == SLC_OK);
	CHECK(out != NULL && out_len == want_len && memcmp(out, want, want_len) == 0);
	free(out);
	free(buf);
}

static void
test_vectors(void)
{
	uint8_t		key[4] = {0, 0, 0, 1};
	uint8_t		page[4096];
	char		text[321] = "";
	uint8_t    *v1;
	size_t		len = 0;

	memset(page, 0xab, sizeof(page));
	v1 = one_change(key, 4, page, sizeof(page), &len);
	REQUIRE(v1 != NULL);
	CHECK(len == 4113);
	check_vector(vec_j1, v1, len);
	free(v1);

	for (int i = 0; i < 40; i++)
		strcat(text, "synclog ");
	v1 = one_change((const uint8_t *) "note", 4, (const uint8_t *) text, 320, &len);
	REQUIRE(v1 != NULL);
	CHECK(len == 337);
	check_vector(vec_j2, v1, len);
	free(v1);

	v1 = hex_decode(vec_f1, &len);
	REQUIRE(v1 != NULL);
	check_vector(vec_j3, v1, len);
	free(v1);
}

/* ---------------------------------------------------------------------
 * Refusals
 * ---------------------------------------------------------------------
 */
static void
test_header_errors(void)
{
	uint8_t		codec;
	uint32_t	raw_len;
	size_t		off = 99;

	CHECK(slc_zip_header(NULL, 0, 100, &codec, &raw_len, &off) == SLC_ERR_EMPTY);
	CHECK(slc_delta_version(NULL, 0) == 0);
	/* a version 1 delta goes through slc_delta_to_v1 untouched */
	expect_hex(vec_f1, 100, SLC_OK, 0);
	/* anything that is not version 2 is also left to the version 1 checks */
	expect_hex("03", 100, SLC_OK, 0);
	/* short headers */
	expect_hex("02", 100, SLC_ERR_TRUNCATED, 1);
	expect_hex("0202", 100, SLC_ERR_TRUNCATED, 1);
	expect_hex("02021b0000", 100, SLC_ERR_TRUNCATED, 1);
	/* codecs: 1 is reserved, 0 and 3 are unknown */
	expect_hex("02011b00000028b52ffd201bd90000", 100, SLC_ERR_CODEC, 1);
	expect_hex("02001b000000", 100, SLC_ERR_CODEC, 1);
	expect_hex("02031b000000", 100, SLC_ERR_CODEC, 1);
	/* raw_len below a delta's header, above the limit, at u32 max */
	expect_hex("020200000000", 100, SLC_ERR_RAW_LEN, 2);
	expect_hex("020204000000", 100, SLC_ERR_RAW_LEN, 2);
	expect_hex("020265000000", 100, SLC_ERR_RAW_LEN, 2);
	expect_hex("0202ffffffff", SLC_ZIP_RAW_MAX, SLC_ERR_RAW_LEN, 2);
	/* a header alone: no frame */
	expect_hex("02021b000000", 100, SLC_ERR_COMPRESSED, 6);
}

static void
test_frame_errors(void)
{
	char		hex[512];

	/* raw_len one more / one less than the frame's content size */
	expect_hex("02021c00000028b52ffd201bd90000" "0102000000020000006b31020000007631020000006b32ffffffff",
			   100, SLC_ERR_COMPRESSED, 6);
	expect_hex("02021a00000028b52ffd201bd90000" "0102000000020000006b31020000007631020000006b32ffffffff",
			   100, SLC_ERR_COMPRESSED, 6);
	/* the frame cut short, and one byte too many after it */
	expect_hex("02021b00000028b52ffd201bd90000" "0102000000020000006b31020000007631020000006b32ffffff",
			   100, SLC_ERR_COMPRESSED, 6);
	expect_hex("02021b00000028b52ffd201bd90000" "0102000000020000006b31020000007631020000006b32ffffffff00",
			   100, SLC_ERR_COMPRESSED, 6);
	/* a bad magic number */
	expect_hex("02021b00000028b52ffe201bd90000" "0102000000020000006b31020000007631020000006b32ffffffff",
			   100, SLC_ERR_COMPRESSED, 6);
	/* two frames of the same content: one frame only */
	snprintf(hex, sizeof(hex), "%s%s", vec_j3, vec_j3 + 12);
	expect_hex(hex, 100, SLC_ERR_COMPRESSED, 6);
	/* a skippable frame (magic 0x184D2A50, 4 bytes of payload) */
	expect_hex("02021b000000502a4d180400000000000000", 100, SLC_ERR_COMPRESSED, 6);

	/*
	 * A frame without a content size (window descriptor instead): decoded
	 * into raw_len bytes of room, so one producing 27 bytes for a raw_len
	 * of 20 fails, and for 27 it passes.
	 */
	expect_hex("02021400000028b52ffd0000d90000" "0102000000020000006b31020000007631020000006b32ffffffff",
			   100, SLC_ERR_COMPRESSED, 6);
	expect_hex("02021b00000028b52ffd0000d90000" "0102000000020000006b31020000007631020000006b32ffffffff",
			   100, SLC_OK, 0);
	/* ... and 30 for 27: short output */
	expect_hex("02021e00000028b52ffd0000d90000" "0102000000020000006b31020000007631020000006b32ffffffff",
			   100, SLC_ERR_COMPRESSED, 6);
}

static void
test_inner_errors(void)
{
	/*
	 * Frames of one raw block holding bytes that are not a valid version 1
	 * delta: the inner check's status and its offset inside the delta.
	 * Block header for n raw bytes, last block: (n << 3) | 1, 3 bytes LE.
	 */
	/* count 2, one change: truncated at byte 17 */
	expect_hex("02021100000028b52ffd2011890000" "0102000000020000006b31020000007631",
			   100, SLC_ERR_TRUNCATED, 17);
	/* a version 2 delta inside a version 2 delta */
	expect_hex("02020600000028b52ffd2006310000" "020206000000",
			   100, SLC_ERR_VERSION, 0);
	/* trailing bytes after the last change */
	expect_hex("02020600000028b52ffd2006310000" "010000000000",
			   100, SLC_ERR_TRAILING, 5);
	/* a key over 1024 bytes announced */
	expect_hex("02020900000028b52ffd2009490000" "010100000001040000",
			   100, SLC_ERR_KEY_TOO_LONG, 5);
}

/*
 * Bombs: a small input that announces, or really expands to, a lot.  The
 * decoder must refuse a raw_len above the limit before allocating, and
 * otherwise allocate raw_len and no more, whatever the frame says.
 */
static void
test_bombs(void)
{
	/*
	 * 512 KiB of zero bytes from 25: a single-segment frame announcing
	 * 0x80000 bytes (header a0 and a 4-byte content size), then four RLE
	 * blocks of 128 KiB (the largest block), each a 3-byte header
	 * (size << 3 | RLE << 1 | last) and the one byte repeated.
	 */
	static const char rle_frame[] = "28b52ffd" "a0" "00000800"
		"020010" "00" "020010" "00" "020010" "00" "030010" "00";
	char		hex[128];
	size_t		len = 0;
	uint8_t    *buf;
	uint8_t    *out;
	size_t		out_len;
	size_t		off;

	/* the limit below the announced size: refused, no large allocation */
	snprintf(hex, sizeof(hex), "0202%s%s", "00000800", rle_frame);
	buf = hex_decode(hex, &len);
	REQUIRE(buf != NULL);
	largest_alloc = 0;
	CHECK(to_v1(buf, len, 65536, &out, &out_len, &off) == SLC_ERR_RAW_LEN);
	CHECK(off == 2);
	CHECK(largest_alloc < 4096);
	/* within the limit: the output is raw_len and no more, then it is
	 * found to be no delta (512 KiB of zero bytes: version 0) */
	largest_alloc = 0;
	CHECK(to_v1(buf, len, SLC_ZIP_RAW_MAX, &out, &out_len, &off) == SLC_ERR_VERSION);
	CHECK(largest_alloc == 0x80000);
	free(buf);

	/* announcing 1 KiB for the same frame: it does not fit, and nothing
	 * larger than the 1 KiB was allocated for it */
	snprintf(hex, sizeof(hex), "0202%s%s", "00040000", rle_frame);
	buf = hex_decode(hex, &len);
	REQUIRE(buf != NULL);
	largest_alloc = 0;
	CHECK(to_v1(buf, len, SLC_ZIP_RAW_MAX, &out, &out_len, &off) == SLC_ERR_COMPRESSED);
	CHECK(largest_alloc == 1024);
	free(buf);

	/* a frame header announcing 1 GiB of content for raw_len 27 */
	expect_hex("02021b00000028b52ffd" "a0" "00000040" "d90000"
			   "0102000000020000006b31020000007631020000006b32ffffffff",
			   100, SLC_ERR_COMPRESSED, 6);
}

/* ---------------------------------------------------------------------
 * Encoder
 * ---------------------------------------------------------------------
 */

static uint64_t rng = 0x243F6A8885A308D3ULL;

static uint64_t
rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * UINT64_C(2685821657736338717);
}

/* A delta of n changes with values of vlen bytes: kind 0 random, 1 text, 2 zeros. */
static uint8_t *
make_delta(int kind, uint32_t n, uint32_t vlen, size_t *len)
{
	slc_change *c = calloc(n, sizeof(slc_change));
	uint8_t    *vals = malloc((size_t) n * vlen + 1);
	uint8_t    *keys = malloc((size_t) n * 4 + 1);
	static const char *const words[] = {"sync", "log ", "page", "note", "the ", "and "};
	uint8_t    *buf = NULL;

	if (c == NULL || vals == NULL || keys == NULL)
		goto out;
	for (uint32_t i = 0; i < n; i++)
	{
		uint8_t    *v = vals + (size_t) i * vlen;

		keys[4 * i] = (uint8_t) (i >> 24);
		keys[4 * i + 1] = (uint8_t) (i >> 16);
		keys[4 * i + 2] = (uint8_t) (i >> 8);
		keys[4 * i + 3] = (uint8_t) i;
		for (uint32_t j = 0; j < vlen; j++)
			v[j] = kind == 0 ? (uint8_t) rnd() :
				kind == 1 ? (uint8_t) words[(j / 4 + rnd() % 3) % 6][j % 4] : 0;
		c[i].key = keys + 4 * i;
		c[i].klen = 4;
		c[i].val = v;
		c[i].vlen = vlen;
		c[i].is_delete = kind == 2 && i % 3 == 0;
		if (c[i].is_delete)
		{
			c[i].val = NULL;
			c[i].vlen = 0;
		}
	}
	buf = malloc(slc_delta_encoded_size(c, n));
	if (buf != NULL)
		*len = slc_delta_encode(c, n, buf);
out:
	free(c);
	free(vals);
	free(keys);
	return buf;
}

static void
test_encode(void)
{
	static const struct
	{
		int			kind;
		uint32_t	n;
		uint32_t	vlen;
		int			worth;
		int			compressed;
	}			cases[] =
	{
		{1, 1, 200, 0, 0},		/* under 256 bytes: stays version 1 */
		{1, 1, 300, 1, 1},
		{1, 23, 4096, 1, 1},	/* a page store's commit */
		{0, 1, 4096, 0, 0},		/* random: not tried */
		{0, 100, 100, 0, 0},	/* bench area 8's appends */
		{2, 50, 4096, 1, 1},	/* zeros and deletions */
		/* a small sample of random bytes looks less random than it is:
		 * tried, and not smaller */
		{0, 1, 250, 1, 0},
	};
	slc_zip    *z = slc_zip_new();

	REQUIRE(z != NULL);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
	{
		size_t		len = 0;
		uint8_t    *v1 = make_delta(cases[k].kind, cases[k].n, cases[k].vlen, &len);
		uint8_t    *env;
		size_t		n;

		REQUIRE(v1 != NULL);
		env = malloc(slc_zip_bound(len));
		REQUIRE(env != NULL);
		/* with a context and without: the same bytes */
		n = slc_zip_encode(z, v1, len, env, slc_zip_bound(len));
		if ((n > 0) != cases[k].compressed ||
			slc_zip_worth_trying(v1, len) != cases[k].worth)
			fprintf(stderr, "    case %zu: len %zu, envelope %zu, worth trying %d\n",
					k, len, n, slc_zip_worth_trying(v1, len));
		CHECK((n > 0) == cases[k].compressed);
		CHECK(slc_zip_worth_trying(v1, len) == cases[k].worth);
		if (n > 0)
		{
			uint8_t    *exact = dup_exact(env, n);
			uint8_t    *again = malloc(slc_zip_bound(len));
			uint8_t    *out;
			size_t		out_len = 0;
			size_t		off;

			REQUIRE(exact != NULL && again != NULL);
			CHECK(n < len);
			CHECK(env[0] == 2 && env[1] == SLC_CODEC_ZSTD);
			CHECK(slc_zip_encode(NULL, v1, len, again, slc_zip_bound(len)) == n &&
				  memcmp(again, env, n) == 0);
			CHECK(to_v1(exact, n, len, &out, &out_len, &off) == SLC_OK);
			CHECK(out != NULL && out_len == len && memcmp(out, v1, len) == 0);
			/* a room too small for the envelope: left as it is */
			CHECK(slc_zip_encode(z, v1, len, again, n - 1) == 0);
			CHECK(slc_zip_encode(z, v1, len, again, 3) == 0);
			free(out);
			free(again);
			free(exact);
		}
		if (cases[k].kind == 1 && cases[k].n == 23)
			CHECK(n < len / 2);
		free(env);
		free(v1);
	}
	slc_zip_free(z);
	slc_zip_free(NULL);
}

/* Every status has its own message, the new ones included. */
static void
test_messages(void)
{
	for (int a = SLC_OK; a <= SLC_ERR_COMPRESSED; a++)
	{
		const char *m = slc_status_message((slc_status) a);

		CHECK(m != NULL && m[0] != '\0' && strcmp(m, "unrecognized status") != 0);
		for (int b = SLC_OK; b < a; b++)
			CHECK(strcmp(m, slc_status_message((slc_status) b)) != 0);
	}
}

/* Applying the version 2 form of an entry does what the version 1 form does. */
static void
test_apply_any(void)
{
	slc_state  *s1 = slc_state_new();
	slc_state  *s2 = slc_state_new();
	size_t		len = 0;
	uint8_t    *v1 = make_delta(1, 23, 4096, &len);
	uint8_t    *env;
	size_t		n;
	slc_hash	before;

	REQUIRE(s1 != NULL && s2 != NULL && v1 != NULL);
	env = malloc(slc_zip_bound(len));
	REQUIRE(env != NULL);
	n = slc_zip_encode(NULL, v1, len, env, slc_zip_bound(len));
	REQUIRE(n > 0);
	CHECK(slc_state_apply_entry(s1, v1, len, 1, "c", 1, 7) == SLC_OK);
	CHECK(slc_state_apply_any(s2, env, n, 1, "c", 1, 7) == SLC_OK);
	CHECK(slc_hash_equal(slc_state_hash(s1), slc_state_hash(s2)));
	CHECK(slc_state_count(s2) == 24);
	/* version 1 passes through */
	CHECK(slc_state_apply_any(s2, v1, len, 2, NULL, 0, 0) == SLC_OK);
	CHECK(slc_state_apply_entry(s1, v1, len, 2, NULL, 0, 0) == SLC_OK);
	CHECK(slc_hash_equal(slc_state_hash(s1), slc_state_hash(s2)));
	/* a damaged envelope changes nothing */
	before = *slc_state_hash(s2);
	env[n - 1] ^= 0xff;
	env[n / 2] ^= 0x55;
	CHECK(slc_state_apply_any(s2, env, n, 3, "c", 1, 8) != SLC_OK);
	CHECK(slc_hash_equal(slc_state_hash(s2), &before));
	/* out of memory for the decoded delta: reported, nothing changes */
	env[n - 1] ^= 0xff;
	env[n / 2] ^= 0x55;
	fail_next = 1;
	CHECK(slc_state_apply_any(s2, env, n, 3, "c", 1, 8) == SLC_ERR_NOMEM);
	fail_next = 0;
	CHECK(slc_hash_equal(slc_state_hash(s2), &before));
	free(env);
	free(v1);
	slc_state_free(s1);
	slc_state_free(s2);
}

/*
 * Random damage to valid envelopes: never a crash or a read past the end
 * (the sanitizer build checks), an error unless the damage left the bytes
 * valid, and an accepted result is exactly raw_len bytes of a valid delta.
 */
static void
test_damage(void)
{
	size_t		len = 0;
	uint8_t    *v1 = make_delta(1, 8, 700, &len);
	uint8_t    *env;
	size_t		n;
	int			accepted = 0;

	REQUIRE(v1 != NULL);
	env = malloc(slc_zip_bound(len));
	REQUIRE(env != NULL);
	n = slc_zip_encode(NULL, v1, len, env, slc_zip_bound(len));
	REQUIRE(n > 0);
	for (int round = 0; round < 3000; round++)
	{
		size_t		m = round % 7 == 0 ? (size_t) (rnd() % n) : n;
		uint8_t    *d = dup_exact(env, m);
		uint8_t    *out;
		size_t		out_len = 0;
		size_t		off;
		slc_status	st;

		REQUIRE(d != NULL);
		for (int k = 0; k < 1 + round % 3 && m > 6; k++)
			d[6 + rnd() % (m - 6)] ^= (uint8_t) (1 + rnd() % 255);
		st = to_v1(d, m, len, &out, &out_len, &off);
		if (st == SLC_OK)
		{
			uint32_t	nch;

			accepted++;
			CHECK(out_len == len);
			CHECK(slc_delta_validate(out, out_len, UINT32_MAX, &nch, NULL) == SLC_OK);
		}
		else
			CHECK(out == NULL);
		free(out);
		free(d);
	}
	/* damage is almost always noticed (the frame has no checksum, so a
	 * changed literal byte can pass as another valid delta) */
	CHECK(accepted < 1500);
	free(env);
	free(v1);
}

static int	passed,
			failed;

static void
run(const char *name, void (*fn) (void))
{
	test_failures = 0;
	fn();
	printf("%s %s\n", test_failures == 0 ? "ok  " : "FAIL", name);
	fflush(stdout);
	*(test_failures == 0 ? &passed : &failed) += 1;
}

int
main(void)
{
	run("vectors", test_vectors);
	run("header_errors", test_header_errors);
	run("frame_errors", test_frame_errors);
	run("inner_errors", test_inner_errors);
	run("bombs", test_bombs);
	run("encode", test_encode);
	run("messages", test_messages);
	run("apply_any", test_apply_any);
	run("damage", test_damage);
	printf("zip: %d passed, %d failed\n", passed, failed);
	return failed > 0 ? 1 : 0;
}
