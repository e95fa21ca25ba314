/*
 * codec_speed.c - which compression codec for version 2 deltas: LZ4 or
 * Zstandard, measured delta by delta on synclog's two kinds of workload.
 *
 *   codec_speed pages FILE     the deltas of FILE (u32le length || delta,
 *                              as test/bench/pagestore writes them)
 *   codec_speed json N SEED    N small JSON-like deltas made here: a to-do
 *                              application's records, 1 to 4 changes each
 *   codec_speed random N SIZE  N deltas of 100 random 100-byte values
 *                              (bench area 8's appends: incompressible)
 *
 * For each codec and level, every delta is compressed on its own (as an
 * append stores it) and decompressed again (as a reader gets it), and the
 * result checked against the input.  A delta is stored compressed only
 * when the 6-byte envelope plus the compressed bytes are smaller than the
 * delta, and never when it is under 256 bytes (PROTOCOL.md section 10);
 * "stored" is the bytes after that rule over the raw bytes.  Speeds are
 * MiB of raw delta per second of one core, best of ROUNDS passes.  zlib at
 * level 1 is shown for reference (issue 16 quotes it).  For JSON, zstd is
 * also run with a dictionary trained on a separate sample of the same
 * generator (what a per-document dictionary would give at best).
 *
 * Prints one line per codec: name, stored ratio, compressed ratio of the
 * deltas that were compressed, compress MiB/s, decompress MiB/s, and the
 * mean microseconds to compress one delta.
 *
 * The last line, "synclog", is what an append stores: slc_zip_encode of
 * src/core/synclog_zip.c (Zstandard level 1, and only deltas that are worth
 * trying), decoded with slc_zip_decode (which also checks the delta inside).
 *
 * Build (test/bench/run.sh does it):
 *   cc -O2 -I src/core test/bench/codec_speed.c src/core/synclog_zip.c \
 *      src/core/synclog_core.c -llz4 -lzstd -lz -lxxhash
 */
#define ZDICT_STATIC_LINKING_ONLY
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lz4.h>
#include <lz4hc.h>
#include <zdict.h>
#include <zlib.h>
#include <zstd.h>

#include "synclog_zip.h"

#define ENVELOPE	6
#define MIN_LEN		256
#define ROUNDS		3

typedef struct
{
	uint8_t    *p;
	size_t		len;
} blob;

static blob *deltas;
static size_t n_deltas;
static size_t cap_deltas;

static void
die(const char *what)
{
	fprintf(stderr, "codec_speed: %s\n", what);
	exit(1);
}

static void *
xmalloc(size_t n)
{
	void	   *p = malloc(n > 0 ? n : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ULL;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void
add_delta(uint8_t *p, size_t len)
{
	if (n_deltas == cap_deltas)
	{
		cap_deltas = cap_deltas ? cap_deltas * 2 : 1024;
		deltas = realloc(deltas, cap_deltas * sizeof(blob));
		if (deltas == NULL)
			die("out of memory");
	}
	deltas[n_deltas].p = p;
	deltas[n_deltas].len = len;
	n_deltas++;
}

static void
load_pages(const char *path)
{
	FILE	   *f = fopen(path, "rb");
	uint8_t		h[4];

	if (f == NULL)
		die("cannot open the delta file");
	while (fread(h, 1, 4, f) == 4)
	{
		size_t		len = h[0] | (h[1] << 8) | (h[2] << 16) | ((size_t) h[3] << 24);
		uint8_t    *p = xmalloc(len);

		if (fread(p, 1, len, f) != len)
			die("short delta file");
		add_delta(p, len);
	}
	fclose(f);
}

/* ---- deltas built here ------------------------------------------------- */

typedef struct
{
	uint8_t    *p;
	size_t		len,
				cap;
} buf;

static void
put(buf *b, const void *d, size_t n)
{
	if (b->len + n > b->cap)
	{
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			die("out of memory");
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void
put_u32(buf *b, uint32_t v)
{
	uint8_t		le[4] = {(uint8_t) v, (uint8_t) (v >> 8), (uint8_t) (v >> 16), (uint8_t) (v >> 24)};

	put(b, le, 4);
}

static const char *const words[] = {
	"buy", "milk", "call", "mom", "fix", "the", "bike", "review", "pull",
	"request", "book", "flights", "to", "Lisbon", "write", "report", "for",
	"Q3", "plan", "team", "offsite", "water", "plants", "renew", "passport",
	"pay", "rent", "order", "printer", "ink", "update", "resume", "clean",
	"garage", "dentist", "appointment", "on", "Tuesday", "draft", "budget",
	"read", "chapter", "send", "invoice", "and", "check", "emails", "meeting"
};
#define N_WORDS (sizeof(words) / sizeof(words[0]))

static const char *const tags[] = {"home", "work", "errands", "health", "finance", "travel", "urgent"};

/* One to-do record as JSON; a few have notes, which makes them longer. */
static size_t
todo_json(char *out, size_t cap, uint64_t id)
{
	char		title[256];
	int			tl = 0,
				nw = 2 + (int) (rnd() % 6);
	size_t		n;

	for (int i = 0; i < nw; i++)
		tl += snprintf(title + tl, sizeof(title) - (size_t) tl, "%s%s", i ? " " : "",
					   words[rnd() % N_WORDS]);
	n = (size_t) snprintf(out, cap,
						  "{\"id\":\"%016llx%08llx\",\"title\":\"%s\",\"done\":%s,"
						  "\"order\":%llu,\"updated_at\":\"2026-11-%02dT%02d:%02d:%02d.%03dZ\","
						  "\"list\":\"%s\",\"tags\":[\"%s\"]",
						  (unsigned long long) id, (unsigned long long) (rnd() & 0xffffffff),
						  title, rnd() % 3 ? "false" : "true",
						  (unsigned long long) (rnd() % 100000),
						  (int) (1 + rnd() % 28), (int) (rnd() % 24), (int) (rnd() % 60),
						  (int) (rnd() % 60), (int) (rnd() % 1000),
						  tags[rnd() % 7], tags[rnd() % 7]);
	if (rnd() % 4 == 0)
	{
		int			nn = 10 + (int) (rnd() % 80);

		n += (size_t) snprintf(out + n, cap - n, ",\"notes\":\"");
		for (int i = 0; i < nn && n < cap - 40; i++)
			n += (size_t) snprintf(out + n, cap - n, "%s%s", i ? " " : "", words[rnd() % N_WORDS]);
		n += (size_t) snprintf(out + n, cap - n, "\"");
	}
	n += (size_t) snprintf(out + n, cap - n, "}");
	return n;
}

static void
make_json(size_t count)
{
	for (size_t d = 0; d < count; d++)
	{
		buf			b = {0};
		uint32_t	nch = 1 + (uint32_t) (rnd() % 4);
		uint8_t		v = 1;

		put(&b, &v, 1);
		put_u32(&b, nch);
		for (uint32_t i = 0; i < nch; i++)
		{
			char		key[64],
						val[2048];
			uint64_t	id = rnd() % 5000;
			int			kl = snprintf(key, sizeof(key), "todo/%016llx", (unsigned long long) id);
			size_t		vl = todo_json(val, sizeof(val), id);

			put_u32(&b, (uint32_t) kl);
			put(&b, key, (size_t) kl);
			put_u32(&b, (uint32_t) vl);
			put(&b, val, vl);
		}
		add_delta(b.p, b.len);
	}
}

static void
make_random(size_t count)
{
	for (size_t d = 0; d < count; d++)
	{
		buf			b = {0};
		uint8_t		v = 1;

		put(&b, &v, 1);
		put_u32(&b, 100);
		for (uint32_t i = 0; i < 100; i++)
		{
			uint8_t		k[4] = {(uint8_t) (i >> 24), (uint8_t) (i >> 16), (uint8_t) (i >> 8), (uint8_t) i};
			uint8_t		val[100];

			for (int j = 0; j < 100; j++)
				val[j] = (uint8_t) rnd();
			put_u32(&b, 4);
			put(&b, k, 4);
			put_u32(&b, 100);
			put(&b, val, 100);
		}
		add_delta(b.p, b.len);
	}
}

/* ---- codecs ------------------------------------------------------------ */

typedef struct codec
{
	const char *name;
	int			level;
	size_t		(*bound) (size_t);
	size_t		(*comp) (const struct codec *, const uint8_t *, size_t, uint8_t *, size_t);
	int			(*decomp) (const struct codec *, const uint8_t *, size_t, uint8_t *, size_t);
} codec;

static ZSTD_CCtx *zc;
static ZSTD_DCtx *zd;
static ZSTD_CDict *cdict;
static ZSTD_DDict *ddict;

static size_t
lz4_bound(size_t n)
{
	return (size_t) LZ4_compressBound((int) n);
}

static size_t
lz4_comp(const codec *c, const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
	int			r;

	if (c->level <= 1)
		r = LZ4_compress_fast((const char *) in, (char *) out, (int) n, (int) cap,
							  c->level < 1 ? -c->level : 1);
	else
		r = LZ4_compress_HC((const char *) in, (char *) out, (int) n, (int) cap, c->level);
	return r > 0 ? (size_t) r : 0;
}

static int
lz4_decomp(const codec *c, const uint8_t *in, size_t n, uint8_t *out, size_t raw)
{
	(void) c;
	return LZ4_decompress_safe((const char *) in, (char *) out, (int) n, (int) raw) == (int) raw;
}

static size_t
zstd_bound(size_t n)
{
	return ZSTD_compressBound(n);
}

static size_t
zstd_comp(const codec *c, const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
	size_t		r;

	if (strstr(c->name, "dict") != NULL)
		r = ZSTD_compress_usingCDict(zc, out, cap, in, n, cdict);
	else
		r = ZSTD_compressCCtx(zc, out, cap, in, n, c->level);
	return ZSTD_isError(r) ? 0 : r;
}

static int
zstd_decomp(const codec *c, const uint8_t *in, size_t n, uint8_t *out, size_t raw)
{
	size_t		r;

	if (strstr(c->name, "dict") != NULL)
		r = ZSTD_decompress_usingDDict(zd, out, raw, in, n, ddict);
	else
		r = ZSTD_decompressDCtx(zd, out, raw, in, n);
	return !ZSTD_isError(r) && r == raw;
}

static size_t
zlib_bound(size_t n)
{
	return compressBound((uLong) n);
}

static size_t
zlib_comp(const codec *c, const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
	uLongf		dl = (uLongf) cap;

	return compress2(out, &dl, in, (uLong) n, c->level) == Z_OK ? (size_t) dl : 0;
}

static int
zlib_decomp(const codec *c, const uint8_t *in, size_t n, uint8_t *out, size_t raw)
{
	uLongf		dl = (uLongf) raw;

	(void) c;
	return uncompress(out, &dl, in, (uLong) n) == Z_OK && dl == raw;
}

/* What an append stores (src/core/synclog_zip.c): the envelope, or nothing. */
static slc_zip *zz;

static size_t
synclog_bound(size_t n)
{
	return slc_zip_bound(n);
}

static size_t
synclog_comp(const codec *c, const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
	size_t		r = slc_zip_encode(zz, in, n, out, cap);

	(void) c;
	if (r == 0)
	{
		/* stored as it is: "compressed" to itself, so that run() sees it */
		memcpy(out, in, n);
		return n;
	}
	memmove(out, out + ENVELOPE, r - ENVELOPE);
	return r - ENVELOPE;
}

static int
synclog_decomp(const codec *c, const uint8_t *in, size_t n, uint8_t *out, size_t raw)
{
	(void) c;
	if (n == raw)
	{
		memcpy(out, in, n);
		return 1;
	}
	/* run() keeps the frame without its envelope: put one back */
	{
		uint8_t    *env = xmalloc(n + ENVELOPE);
		int			ok;

		env[0] = SLC_DELTA_VERSION_ZIP;
		env[1] = SLC_CODEC_ZSTD;
		env[2] = (uint8_t) raw;
		env[3] = (uint8_t) (raw >> 8);
		env[4] = (uint8_t) (raw >> 16);
		env[5] = (uint8_t) (raw >> 24);
		memcpy(env + ENVELOPE, in, n);
		ok = slc_zip_decode(zz, env, n + ENVELOPE, out, (uint32_t) raw, UINT32_MAX, NULL) == SLC_OK;
		free(env);
		return ok;
	}
}

static void
run(const codec *c)
{
	size_t		maxlen = 0;
	uint8_t    *cbuf,
			   *dbuf;
	size_t	   *clen = xmalloc(n_deltas * sizeof(size_t));
	double		best_c = 1e30,
				best_d = 1e30;
	uint64_t	raw = 0,
				stored = 0,
				zin = 0,
				zout = 0;
	uint8_t   **copies = xmalloc(n_deltas * sizeof(uint8_t *));

	for (size_t i = 0; i < n_deltas; i++)
		if (deltas[i].len > maxlen)
			maxlen = deltas[i].len;
	cbuf = xmalloc(c->bound(maxlen));
	dbuf = xmalloc(maxlen);

	for (int round = 0; round < ROUNDS; round++)
	{
		double		t0 = now();

		for (size_t i = 0; i < n_deltas; i++)
		{
			clen[i] = c->comp(c, deltas[i].p, deltas[i].len, cbuf, c->bound(maxlen));
			if (round == 0)
			{
				copies[i] = xmalloc(clen[i]);
				memcpy(copies[i], cbuf, clen[i]);
			}
		}
		if (now() - t0 < best_c)
			best_c = now() - t0;
	}
	for (int round = 0; round < ROUNDS; round++)
	{
		double		t0 = now();

		for (size_t i = 0; i < n_deltas; i++)
			if (clen[i] == 0 || !c->decomp(c, copies[i], clen[i], dbuf, deltas[i].len) ||
				(round == 0 && memcmp(dbuf, deltas[i].p, deltas[i].len) != 0))
				die("a delta did not come back");
		if (now() - t0 < best_d)
			best_d = now() - t0;
	}
	for (size_t i = 0; i < n_deltas; i++)
	{
		raw += deltas[i].len;
		if (deltas[i].len >= MIN_LEN && clen[i] + ENVELOPE < deltas[i].len)
		{
			stored += clen[i] + ENVELOPE;
			zin += deltas[i].len;
			zout += clen[i] + ENVELOPE;
		}
		else
			stored += deltas[i].len;
		free(copies[i]);
	}
	printf("%-14s stored %.3f  compressed %.3f of %.0f%%  comp %7.1f MiB/s  decomp %7.1f MiB/s  %6.1f us/delta\n",
		   c->name, (double) stored / raw, zin ? (double) zout / zin : 1.0,
		   100.0 * zin / raw, raw / 1048576.0 / best_c, raw / 1048576.0 / best_d,
		   best_c / n_deltas * 1e6);
	free(copies);
	free(clen);
	free(cbuf);
	free(dbuf);
}

int
main(int argc, char **argv)
{
	static const codec codecs[] = {
		{"lz4", 1, lz4_bound, lz4_comp, lz4_decomp},
		{"lz4-hc-4", 4, lz4_bound, lz4_comp, lz4_decomp},
		{"lz4-hc-9", 9, lz4_bound, lz4_comp, lz4_decomp},
		{"zstd-neg1", -1, zstd_bound, zstd_comp, zstd_decomp},
		{"zstd-1", 1, zstd_bound, zstd_comp, zstd_decomp},
		{"zstd-3", 3, zstd_bound, zstd_comp, zstd_decomp},
		{"zlib-1", 1, zlib_bound, zlib_comp, zlib_decomp},
		{"synclog", 1, synclog_bound, synclog_comp, synclog_decomp},
	};
	uint64_t	raw = 0;
	size_t		small = 0;

	if (argc >= 3 && strcmp(argv[1], "pages") == 0)
		load_pages(argv[2]);
	else if (argc >= 4 && strcmp(argv[1], "json") == 0)
	{
		rng += strtoull(argv[3], NULL, 10);
		make_json((size_t) strtoull(argv[2], NULL, 10));
	}
	else if (argc >= 3 && strcmp(argv[1], "random") == 0)
		make_random((size_t) strtoull(argv[2], NULL, 10));
	else
		die("usage: codec_speed pages FILE | json N SEED | random N");
	if (n_deltas == 0)
		die("no deltas");
	zc = ZSTD_createCCtx();
	zd = ZSTD_createDCtx();
	zz = slc_zip_new();
	if (zc == NULL || zd == NULL || zz == NULL)
		die("out of memory");
	for (size_t i = 0; i < n_deltas; i++)
	{
		raw += deltas[i].len;
		small += deltas[i].len < MIN_LEN;
	}
	printf("%zu deltas, %.1f bytes on average, %zu under %d bytes\n", n_deltas,
		   (double) raw / n_deltas, small, MIN_LEN);
	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
		run(&codecs[i]);

	/*
	 * A zstd dictionary trained on other deltas of the same generator:
	 * the best a per-document dictionary could do.
	 */
	if (strcmp(argv[1], "json") == 0)
	{
		blob	   *mine = deltas;
		size_t		mine_n = n_deltas,
					total = 0;
		size_t	   *sizes;
		uint8_t    *samples,
					dict[16384];
		size_t		dsize;
		static const codec zdict = {"zstd-1-dict", 1, zstd_bound, zstd_comp, zstd_decomp};

		deltas = NULL;
		n_deltas = 0;
		cap_deltas = 0;
		rng ^= 0x5DEECE66DULL;
		make_json(4000);
		sizes = xmalloc(n_deltas * sizeof(size_t));
		for (size_t i = 0; i < n_deltas; i++)
			total += deltas[i].len;
		samples = xmalloc(total);
		total = 0;
		for (size_t i = 0; i < n_deltas; i++)
		{
			memcpy(samples + total, deltas[i].p, deltas[i].len);
			sizes[i] = deltas[i].len;
			total += deltas[i].len;
		}
		dsize = ZDICT_trainFromBuffer(dict, sizeof(dict), samples, sizes, (unsigned) n_deltas);
		if (ZDICT_isError(dsize))
			die("dictionary training failed");
		cdict = ZSTD_createCDict(dict, dsize, 1);
		ddict = ZSTD_createDDict(dict, dsize);
		deltas = mine;
		n_deltas = mine_n;
		printf("dictionary: %zu bytes trained on 4000 other deltas\n", dsize);
		run(&zdict);
	}
	return 0;
}
