/*
 * chain_speed.c - what the chain value costs an append (PROTOCOL.md
 * section 4a): nanoseconds per slc_chain_next() over a delta of a given
 * size, with a client id, as the append path computes it once per entry.
 *
 *   chain_speed DELTA_BYTES [ROUNDS]
 *
 * Prints "chain <delta bytes> <ns per entry, best of ROUNDS> <GB/s>".  The
 * append's own time per entry comes from bench areas 1, 2 and 8, so the
 * share of an append the chain takes is the ratio of the two.
 *
 * Build:
 *   cc -O2 -I src/core test/bench/chain_speed.c src/core/synclog_chain.c -lxxhash
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "synclog_core.h"

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int
main(int argc, char **argv)
{
	size_t		len;
	int			rounds = 5;
	uint8_t    *delta;
	uint8_t		chain[SLC_CHAIN_LEN] = {0};
	double		best = 1e30;
	const int	n = 200000;

	if (argc < 2)
	{
		fprintf(stderr, "usage: chain_speed DELTA_BYTES [ROUNDS]\n");
		return 2;
	}
	len = (size_t) strtoul(argv[1], NULL, 10);
	if (argc > 2)
		rounds = atoi(argv[2]);
	delta = malloc(len ? len : 1);
	if (delta == NULL)
		return 1;
	for (size_t i = 0; i < len; i++)
		delta[i] = (uint8_t) (i * 131 + 7);
	for (int r = 0; r < rounds; r++)
	{
		double		t0 = now_ns();

		for (int i = 0; i < n; i++)
			slc_chain_next(chain, i + 1, delta, len, "client-0001", 11, i, chain);
		if ((now_ns() - t0) / n < best)
			best = (now_ns() - t0) / n;
	}
	printf("chain %zu %.1f %.2f\n", len, best, len / best);
	free(delta);
	return chain[0] == 0xff && chain[1] == 0xff ? 3 : 0;	/* keep the loop */
}
