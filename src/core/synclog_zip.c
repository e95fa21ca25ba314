/*
 * synclog_zip.c
 *
 * Implementation of synclog_zip.h: version 2 (compressed) deltas with
 * Zstandard (libzstd).  Linked into the extension and into clients; what
 * it accepts is the protocol (PROTOCOL.md section 10, "Version 2
 * (compressed) deltas").
 *
 * Must never: allocate an output buffer larger than the announced raw_len,
 * or decode a raw_len above the caller's limit; trust the compressed bytes
 * (a frame may announce any size, hold several frames, or decompress to
 * more or less than raw_len); include PostgreSQL headers or keep global
 * mutable state.
 */
#include <stdlib.h>
#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "synclog_zip.h"

/* Zstandard level of every compressed delta (BENCHMARKS.md, area 14). */
#define ZIP_LEVEL			1

/* The sample slc_zip_worth_trying looks at: up to 16 stretches of 256 bytes. */
#define SAMPLE_STRETCHES	16
#define SAMPLE_STRETCH		256
/* Entropy of the sample, bits per byte, above which a delta is not tried. */
#define WORTH_MAX_BITS		7.5

struct slc_zip
{
	ZSTD_CCtx  *cctx;			/* made on first use */
	ZSTD_DCtx  *dctx;
};

slc_zip *
slc_zip_new(void)
{
	return calloc(1, sizeof(slc_zip));
}

void
slc_zip_free(slc_zip *z)
{
	if (z == NULL)
		return;
	ZSTD_freeCCtx(z->cctx);
	ZSTD_freeDCtx(z->dctx);
	free(z);
}

int
slc_delta_version(const uint8_t *buf, size_t len)
{
	return len > 0 ? buf[0] : 0;
}

slc_status
slc_zip_header(const uint8_t *buf, size_t len, size_t max_raw,
			   uint8_t *codec, uint32_t *raw_len, size_t *err_offset)
{
	size_t		off = 0;
	slc_status	st = SLC_OK;
	uint32_t	n = 0;

	if (len == 0)
		st = SLC_ERR_EMPTY;
	else if (buf[0] != SLC_DELTA_VERSION_ZIP)
		st = SLC_ERR_VERSION;
	else if (len < SLC_ZIP_HEADER_LEN)
	{
		st = SLC_ERR_TRUNCATED;
		off = 1;
	}
	else if (buf[1] != SLC_CODEC_ZSTD)
	{
		st = SLC_ERR_CODEC;
		off = 1;
	}
	else
	{
		n = (uint32_t) buf[2] | ((uint32_t) buf[3] << 8) |
			((uint32_t) buf[4] << 16) | ((uint32_t) buf[5] << 24);
		if (n < SLC_DELTA_HEADER_LEN || n > max_raw)
		{
			st = SLC_ERR_RAW_LEN;
			off = 2;
		}
	}
	if (st != SLC_OK)
	{
		if (err_offset != NULL)
			*err_offset = off;
		return st;
	}
	*codec = buf[1];
	*raw_len = n;
	return SLC_OK;
}

slc_status
slc_zip_decode(slc_zip *z, const uint8_t *buf, size_t len, uint8_t *out,
			   uint32_t raw_len, uint32_t max_changes, size_t *err_offset)
{
	const uint8_t *src = buf + SLC_ZIP_HEADER_LEN;
	size_t		src_len = len - SLC_ZIP_HEADER_LEN;
	unsigned long long announced;
	ZSTD_DCtx  *dctx;
	size_t		got;

	/*
	 * Exactly one frame, and no more than raw_len in it as far as its
	 * header tells: a frame without a content size is decoded too, but
	 * into raw_len bytes of room, so it cannot produce more.
	 */
	if (ZSTD_findFrameCompressedSize(src, src_len) != src_len)
		goto corrupt;
	announced = ZSTD_getFrameContentSize(src, src_len);
	if (announced == ZSTD_CONTENTSIZE_ERROR ||
		(announced != ZSTD_CONTENTSIZE_UNKNOWN && announced != raw_len))
		goto corrupt;
	if (z != NULL)
	{
		if (z->dctx == NULL && (z->dctx = ZSTD_createDCtx()) == NULL)
			return SLC_ERR_NOMEM;
		dctx = z->dctx;
	}
	else if ((dctx = ZSTD_createDCtx()) == NULL)
		return SLC_ERR_NOMEM;
	got = ZSTD_decompressDCtx(dctx, out, raw_len, src, src_len);
	if (z == NULL)
		ZSTD_freeDCtx(dctx);
	if (ZSTD_isError(got))
	{
		if (ZSTD_getErrorCode(got) == ZSTD_error_memory_allocation)
			return SLC_ERR_NOMEM;
		goto corrupt;
	}
	if (got != raw_len)
		goto corrupt;
	return slc_delta_validate(out, raw_len, max_changes, NULL, err_offset);

corrupt:
	if (err_offset != NULL)
		*err_offset = SLC_ZIP_HEADER_LEN;
	return SLC_ERR_COMPRESSED;
}

size_t
slc_zip_bound(size_t len)
{
	return SLC_ZIP_HEADER_LEN + ZSTD_compressBound(len);
}

/*
 * log2(x) for x >= 1 without libm: the exponent, plus a quadratic fit of
 * log2(1 + f) on [0, 1) (off by less than 0.008).
 */
static double
approx_log2(uint32_t x)
{
	int			e;
	double		f;

#if defined(__GNUC__)
	e = 31 - __builtin_clz(x);
#else
	for (e = 0; (x >> e) > 1; e++)
		;
#endif
	f = (double) x / (double) ((uint32_t) 1 << e) - 1.0;
	return e + f * (1.3466 - 0.3466 * f);
}

int
slc_zip_worth_trying(const uint8_t *v1, size_t len)
{
	uint32_t	count[4][256] = {{0}};	/* four, so that increments overlap */
	uint32_t	n = 0;
	size_t		stretches,
				step;
	double		sum = 0;

	if (len < SLC_ZIP_MIN_LEN)
		return 0;
	if (len <= SAMPLE_STRETCHES * SAMPLE_STRETCH)
	{
		stretches = 1;
		step = 0;
	}
	else
	{
		stretches = SAMPLE_STRETCHES;
		step = (len - SAMPLE_STRETCH) / (SAMPLE_STRETCHES - 1);
	}
	for (size_t s = 0; s < stretches; s++)
	{
		const uint8_t *p = v1 + s * step;
		size_t		m = stretches == 1 ? len : SAMPLE_STRETCH;

		size_t		i = 0;

		for (; i + 4 <= m; i += 4)
		{
			count[0][p[i]]++;
			count[1][p[i + 1]]++;
			count[2][p[i + 2]]++;
			count[3][p[i + 3]]++;
		}
		for (; i < m; i++)
			count[0][p[i]]++;
		n += (uint32_t) m;
	}

	/*
	 * The sample's order-0 entropy, log2(n) - sum(c log2 c) / n bits per
	 * byte, bounds what a coder of single bytes saves; above 7.5 bits (a
	 * saving under 6%) the data looks random: random bytes give 7.95 on
	 * 4 KiB, area 8's deltas of random values with their length fields
	 * 7.6, text and pages of it 4 to 6.  Matches across a delta (an LZ
	 * coder's gain) are not seen; a delta of random values repeated within
	 * itself is rare enough to store as it comes.
	 */
	for (int b = 0; b < 256; b++)
	{
		uint32_t	c = count[0][b] + count[1][b] + count[2][b] + count[3][b];

		if (c > 0)
			sum += c * approx_log2(c);
	}
	return approx_log2(n) - sum / n <= WORTH_MAX_BITS;
}

size_t
slc_zip_encode(slc_zip *z, const uint8_t *v1, size_t len, uint8_t *out,
			   size_t cap)
{
	ZSTD_CCtx  *cctx;
	size_t		n;

	if (!slc_zip_worth_trying(v1, len) || len > UINT32_MAX ||
		cap < SLC_ZIP_HEADER_LEN)
		return 0;
	if (z != NULL)
	{
		if (z->cctx == NULL && (z->cctx = ZSTD_createCCtx()) == NULL)
			return 0;
		cctx = z->cctx;
	}
	else if ((cctx = ZSTD_createCCtx()) == NULL)
		return 0;
	n = ZSTD_compressCCtx(cctx, out + SLC_ZIP_HEADER_LEN, cap - SLC_ZIP_HEADER_LEN,
						  v1, len, ZIP_LEVEL);
	if (z == NULL)
		ZSTD_freeCCtx(cctx);
	if (ZSTD_isError(n) || SLC_ZIP_HEADER_LEN + n >= len)
		return 0;
	out[0] = SLC_DELTA_VERSION_ZIP;
	out[1] = SLC_CODEC_ZSTD;
	out[2] = (uint8_t) len;
	out[3] = (uint8_t) (len >> 8);
	out[4] = (uint8_t) (len >> 16);
	out[5] = (uint8_t) (len >> 24);
	return SLC_ZIP_HEADER_LEN + n;
}

slc_status
slc_delta_to_v1(slc_zip *z, const uint8_t *buf, size_t len, size_t max_raw,
				uint32_t max_changes, const uint8_t **v1, size_t *v1_len,
				uint8_t **owned, size_t *err_offset)
{
	uint8_t		codec;
	uint32_t	raw_len;
	uint8_t    *out;
	slc_status	st;

	*owned = NULL;
	if (slc_delta_version(buf, len) != SLC_DELTA_VERSION_ZIP)
	{
		*v1 = buf;
		*v1_len = len;
		return SLC_OK;
	}
	st = slc_zip_header(buf, len, max_raw, &codec, &raw_len, err_offset);
	if (st != SLC_OK)
		return st;
	out = malloc(raw_len);
	if (out == NULL)
		return SLC_ERR_NOMEM;
	st = slc_zip_decode(z, buf, len, out, raw_len, max_changes, err_offset);
	if (st != SLC_OK)
	{
		free(out);
		return st;
	}
	*v1 = out;
	*v1_len = raw_len;
	*owned = out;
	return SLC_OK;
}

slc_status
slc_state_apply_any(slc_state *s, const uint8_t *delta, size_t delta_len,
					int64_t lsn, const char *client_id, size_t client_id_len,
					int64_t client_seq)
{
	const uint8_t *v1;
	size_t		v1_len;
	uint8_t    *owned;
	slc_status	st;

	st = slc_delta_to_v1(NULL, delta, delta_len, SLC_ZIP_RAW_MAX, UINT32_MAX,
						 &v1, &v1_len, &owned, NULL);
	if (st != SLC_OK)
		return st;
	st = slc_state_apply_entry(s, v1, v1_len, lsn, client_id, client_id_len,
							   client_seq);
	free(owned);
	return st;
}
