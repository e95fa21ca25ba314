/*
 * fuzz_zip.c
 *
 * libFuzzer target for version 2 (compressed) deltas, src/core/synclog_zip.c:
 * the decoder a client and the server run on bytes from the network.
 *
 * Input: one candidate delta.
 *
 *  - Any input goes through slc_delta_to_v1 under a limit taken from the
 *    input (64 KiB, or exactly the announced raw_len, or one byte less),
 *    and the result is checked against an oracle built from libzstd's own
 *    functions and PROTOCOL.md's wording, sharing no code with the
 *    decoder: it accepts exactly when the header is version 2 with codec
 *    2 and 5 <= raw_len <= limit, the rest is exactly one frame whose
 *    announced content size (if any) is raw_len, that frame decompresses
 *    to exactly raw_len bytes, and those are a valid version 1 delta.  On
 *    acceptance the output is those raw_len bytes; on refusal nothing is
 *    returned and the status is one the refusal allows.  (That a refused
 *    header allocates nothing and an accepted one raw_len bytes is pinned
 *    by test/core/test_zip.c, which can count allocations.)
 *  - An input that is a valid version 1 delta is also compressed
 *    (slc_zip_encode): an envelope is returned only for a delta worth
 *    trying, is smaller than the delta, and decodes to the same bytes;
 *    slc_state_apply_any of the envelope moves a state's hash exactly as
 *    slc_state_apply_entry of the delta does.
 *  - Any accepted input applied with slc_state_apply_any moves the hash as
 *    its decoded delta does; a refused one leaves the state unchanged.
 *
 * Any broken invariant aborts.  Build and run through test/fuzz/Makefile.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "synclog_zip.h"

/* A broken invariant: libFuzzer reports the abort and keeps the input. */
static void
broken(int line, const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_zip: invariant broken at line %d: %s%s%s\n", line, what,
			detail != NULL ? ": " : "", detail != NULL ? detail : "");
	abort();
}

#define ASSERT(cond) ((cond) ? (void) 0 : broken(__LINE__, #cond, NULL))
#define NOMEM() broken(__LINE__, "out of memory in the harness", NULL)

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) |
		((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

/*
 * The oracle: SLC_OK with the decoded bytes in *out (malloc'd), or the
 * class of refusal: 1 header, 2 frame, 3 inner delta.
 */
static int
oracle(const uint8_t *buf, size_t len, size_t limit, uint8_t **out,
	   uint32_t *raw_len)
{
	const uint8_t *frame = buf + 6;
	size_t		flen;
	unsigned long long fcs;
	uint8_t    *dst;
	size_t		got;

	*out = NULL;
	if (len < 6 || buf[0] != 2 || buf[1] != 2)
		return 1;
	*raw_len = le32(buf + 2);
	if (*raw_len < 5 || *raw_len > limit)
		return 1;
	flen = len - 6;
	if (ZSTD_findFrameCompressedSize(frame, flen) != flen)
		return 2;
	fcs = ZSTD_getFrameContentSize(frame, flen);
	if (fcs == ZSTD_CONTENTSIZE_ERROR ||
		(fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != *raw_len))
		return 2;
	/* one byte of slack: output beyond raw_len is a refusal, not a clip */
	dst = malloc((size_t) *raw_len + 1);
	if (dst == NULL)
		NOMEM();
	got = ZSTD_decompress(dst, (size_t) *raw_len + 1, frame, flen);
	if (ZSTD_isError(got) || got != *raw_len)
	{
		free(dst);
		return 2;
	}
	if (slc_delta_validate(dst, got, UINT32_MAX, NULL, NULL) != SLC_OK)
	{
		free(dst);
		return 3;
	}
	*out = dst;
	return 0;
}

static void
check_decode(const uint8_t *buf, size_t len, size_t limit)
{
	const uint8_t *v1 = NULL;
	uint8_t    *owned = (uint8_t *) 1;
	size_t		v1_len = 0;
	size_t		off = (size_t) -1;
	uint8_t    *want;
	uint32_t	raw_len = 0;
	int			verdict;
	slc_status	st;

	st = slc_delta_to_v1(NULL, buf, len, limit, UINT32_MAX, &v1, &v1_len,
						 &owned, &off);
	if (len == 0 || buf[0] != 2)
	{
		/* not version 2: handed back untouched, for the version 1 checks */
		ASSERT(st == SLC_OK && v1 == buf && v1_len == len && owned == NULL);
		return;
	}
	verdict = oracle(buf, len, limit, &want, &raw_len);
	if (verdict == 0)
	{
		if (st != SLC_OK)
			broken(__LINE__, "refused what the oracle accepts", slc_status_message(st));
		ASSERT(owned != NULL && v1 == owned);
		ASSERT(v1_len == raw_len && memcmp(v1, want, raw_len) == 0);
		free(owned);
		free(want);
		return;
	}
	if (st == SLC_OK)
		broken(__LINE__, "accepted what the oracle refuses",
			   verdict == 1 ? "header" : verdict == 2 ? "frame" : "inner delta");
	ASSERT(owned == NULL);
	ASSERT(off <= len || verdict == 3);
	switch (verdict)
	{
		case 1:
			ASSERT(st == SLC_ERR_TRUNCATED || st == SLC_ERR_CODEC ||
				   st == SLC_ERR_RAW_LEN);
			break;
		case 2:
			ASSERT(st == SLC_ERR_COMPRESSED);
			ASSERT(off == 6);
			break;
		default:
			/* the inner delta's own status, none of the envelope's */
			ASSERT(st != SLC_ERR_COMPRESSED && st != SLC_ERR_CODEC &&
				   st != SLC_ERR_RAW_LEN && st != SLC_ERR_NOMEM);
			ASSERT(off <= raw_len);
	}
}

static void
apply_both(const uint8_t *v2, size_t v2_len, const uint8_t *v1, size_t v1_len)
{
	slc_state  *a = slc_state_new();
	slc_state  *b = slc_state_new();
	slc_status	sa,
				sb;

	if (a == NULL || b == NULL)
		NOMEM();
	sa = slc_state_apply_entry(a, v1, v1_len, 1, "c", 1, 3);
	sb = slc_state_apply_any(b, v2, v2_len, 1, "c", 1, 3);
	ASSERT(sa == sb);
	ASSERT(slc_hash_equal(slc_state_hash(a), slc_state_hash(b)));
	ASSERT(slc_state_count(a) == slc_state_count(b));
	slc_state_free(a);
	slc_state_free(b);
}

static void
check_encode(const uint8_t *v1, size_t len)
{
	uint8_t    *env = malloc(slc_zip_bound(len));
	size_t		n;

	if (env == NULL)
		NOMEM();
	n = slc_zip_encode(NULL, v1, len, env, slc_zip_bound(len));
	if (n > 0)
	{
		uint8_t    *exact = malloc(n);
		const uint8_t *back;
		size_t		back_len;
		uint8_t    *owned;

		if (exact == NULL)
			NOMEM();
		memcpy(exact, env, n);
		ASSERT(slc_zip_worth_trying(v1, len));
		ASSERT(n < len && len >= SLC_ZIP_MIN_LEN);
		ASSERT(exact[0] == 2 && exact[1] == SLC_CODEC_ZSTD && le32(exact + 2) == len);
		ASSERT(slc_delta_to_v1(NULL, exact, n, len, UINT32_MAX, &back, &back_len,
							   &owned, NULL) == SLC_OK);
		ASSERT(back_len == len && memcmp(back, v1, len) == 0);
		free(owned);
		apply_both(exact, n, v1, len);
		/* one byte less of room: no envelope, or a smaller one */
		ASSERT(slc_zip_encode(NULL, v1, len, env, n - 1) == 0);
		free(exact);
	}
	else
		ASSERT(len < SLC_ZIP_MIN_LEN || !slc_zip_worth_trying(v1, len) || n == 0);
	free(env);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t    *buf = malloc(size > 0 ? size : 1);
	size_t		limits[3] = {65536, 0, 0};
	int			nlimits = 1;

	if (buf == NULL)
		NOMEM();
	if (size > 0)
		memcpy(buf, data, size);

	/* the limit at the announced raw_len, and just below it */
	if (size >= 6 && le32(buf + 2) >= 5 && le32(buf + 2) <= 65536)
	{
		limits[nlimits++] = le32(buf + 2);
		limits[nlimits++] = le32(buf + 2) - 1;
	}
	for (int i = 0; i < nlimits; i++)
		check_decode(size > 0 ? buf : NULL, size, limits[i]);

	/* accepted or not, applying it does what its decoded delta does */
	if (size >= 6 && buf[0] == 2 && le32(buf + 2) <= 65536)
	{
		const uint8_t *v1;
		size_t		v1_len;
		uint8_t    *owned;

		if (slc_delta_to_v1(NULL, buf, size, SLC_ZIP_RAW_MAX, UINT32_MAX,
							&v1, &v1_len, &owned, NULL) == SLC_OK)
		{
			apply_both(buf, size, v1, v1_len);
			free(owned);
		}
		else
		{
			slc_state  *s = slc_state_new();
			slc_hash	empty;

			if (s == NULL)
				NOMEM();
			slc_hash_init(&empty);
			ASSERT(slc_state_apply_any(s, buf, size, 1, "c", 1, 3) != SLC_OK);
			ASSERT(slc_hash_equal(slc_state_hash(s), &empty) && slc_state_count(s) == 0);
			slc_state_free(s);
		}
	}

	/* a valid version 1 delta: compress it and come back */
	if (size > 0 && buf[0] == 1 &&
		slc_delta_validate(buf, size, UINT32_MAX, NULL, NULL) == SLC_OK)
		check_encode(buf, size);

	free(buf);
	return 0;
}
