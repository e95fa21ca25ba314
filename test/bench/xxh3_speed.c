/*
 * xxh3_speed.c - the physical limit of the snapshot hash: how fast this
 * machine hashes a state's bytes in memory.
 *
 *   xxh3_speed ITEMS KLEN VLEN [ROUNDS]
 *
 * Fills ITEMS items of KLEN key bytes and VLEN value bytes (random, one
 * contiguous buffer, each item's key followed by its value, as a row would
 * hold them) and hashes all of them ROUNDS times (default 5) in two ways:
 *
 *   raw   XXH3_128bits over each item's key || value bytes, in place, the
 *         128-bit results summed (the least any item hash can cost)
 *   core  slc_hash_add() of src/core/synclog_core.c: the snapshot hash as
 *         the extension and the client compute it (item hash over
 *         ns || u32le(klen) || key || value, then the 128-bit sum, count and
 *         byte total)
 *
 * Prints one line per way: "<way> <MiB/s best> <MiB/s median> <bytes>",
 * where bytes = ITEMS * (KLEN + VLEN) and MiB = 2^20 bytes, the unit of the
 * rest of BENCHMARKS.md.
 *
 * Build (test/bench/run.sh does it):
 *   cc -O2 -I src/core test/bench/xxh3_speed.c src/core/synclog_core.c -lxxhash
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "synclog_core.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* Keeps the compiler from dropping the work. */
static volatile uint64_t sink;

int
main(int argc, char **argv)
{
	size_t		items,
				klen,
				vlen,
				isize;
	int			rounds = 5;
	uint8_t    *buf;
	uint64_t	x = 0x9e3779b97f4a7c15ULL;
	double	   *t_raw,
			   *t_core;
	double		mib;

	if (argc < 4)
	{
		fprintf(stderr, "usage: xxh3_speed ITEMS KLEN VLEN [ROUNDS]\n");
		return 2;
	}
	items = strtoull(argv[1], NULL, 10);
	klen = strtoull(argv[2], NULL, 10);
	vlen = strtoull(argv[3], NULL, 10);
	if (argc > 4)
		rounds = atoi(argv[4]);
	if (items == 0 || klen + vlen == 0 || rounds < 1)
	{
		fprintf(stderr, "xxh3_speed: ITEMS, KLEN + VLEN and ROUNDS must be positive\n");
		return 2;
	}
	isize = klen + vlen;
	buf = malloc(items * isize);
	t_raw = calloc(rounds, sizeof(double));
	t_core = calloc(rounds, sizeof(double));
	if (!buf || !t_raw || !t_core)
	{
		fprintf(stderr, "xxh3_speed: out of memory\n");
		return 1;
	}
	/* xorshift64: incompressible, and every page touched before timing */
	for (size_t i = 0; i < items * isize; i++)
	{
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t) x;
	}

	for (int r = 0; r < rounds; r++)
	{
		double		t0;
		uint64_t	lo = 0,
					hi = 0;
		slc_hash	h;

		t0 = now();
		for (size_t i = 0; i < items; i++)
		{
			XXH128_hash_t d = XXH3_128bits(buf + i * isize, isize);
			uint64_t	nlo = lo + d.low64;

			hi += d.high64 + (nlo < lo);
			lo = nlo;
		}
		t_raw[r] = now() - t0;
		sink += lo ^ hi;

		slc_hash_init(&h);
		t0 = now();
		for (size_t i = 0; i < items; i++)
		{
			const uint8_t *p = buf + i * isize;

			slc_hash_add(&h, SLC_NS_DATA, p, klen, p + klen, vlen);
		}
		t_core[r] = now() - t0;
		sink += h.count;
	}
	qsort(t_raw, rounds, sizeof(double), cmp_double);
	qsort(t_core, rounds, sizeof(double), cmp_double);
	mib = (double) (items * isize) / 1048576.0;
	printf("raw %.1f %.1f %zu\n", mib / t_raw[0], mib / t_raw[rounds / 2], items * isize);
	printf("core %.1f %.1f %zu\n", mib / t_core[0], mib / t_core[rounds / 2], items * isize);
	free(buf);
	free(t_raw);
	free(t_core);
	return 0;
}
