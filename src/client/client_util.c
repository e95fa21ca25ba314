/*
 * client_util.c
 *
 * Small helpers of the reference client library that know nothing of a
 * handle: a monotonic clock, random 64-bit ids, hex, and folding a
 * multi-line message into one line.
 *
 * Owns: slcli_now_s, slcli_random64, slcli_hex, slcli_one_line.
 * Must never: report an error: each returns something usable whatever the
 * system says (slcli_random64 falls back to the clock and the pid when
 * getrandom does not answer, and never returns 0, which ids use as "none").
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <sys/random.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

double
slcli_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t
slcli_random64(void)
{
	uint64_t	v = 0;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t) sizeof(v))
		v = (uint64_t) time(NULL) * 6364136223846793005ULL ^ (uint64_t) getpid() ^
			(uint64_t) (slcli_now_s() * 1e9);
	return v ? v : 1;
}

void
slcli_hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++)
	{
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* One line: newlines and tabs of libpq messages become single spaces. */
void
slcli_one_line(char *s)
{
	char	   *w = s;
	int			space = 0;

	for (char *r = s; *r; r++)
	{
		if (*r == '\n' || *r == '\r' || *r == '\t' || *r == ' ')
		{
			space = 1;
			continue;
		}
		if (space && w != s)
			*w++ = ' ';
		space = 0;
		*w++ = *r;
	}
	*w = '\0';
}
