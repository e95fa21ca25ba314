/*
 * client_writes.c - benchmark of the reference client's write path
 * (BENCHMARKS.md, "The reference client's write path").
 *
 *   client_writes DSN DOC DIR N BYTES
 *
 * Three runs over the same N mutations of one key of BYTES bytes each:
 *  plain   synclog.append_delta(doc, delta, 'bench-plain', seq) from libpq,
 *          one statement per mutation in autocommit, one connection: what
 *          an application pays without the client;
 *  submit  slcl_submit for each (durable queue commit with fsync, then
 *          append_delta), one slcl_sync at the end to confirm them all;
 *  latency slcl_submit then slcl_sync for each: from the call to the
 *          mutation being confirmed in the replica (its own watermark read
 *          back from the log).
 * Prints one line per run: "name n=N total_s=T per_s=R p50_ms=.. p99_ms=..".
 *
 * Owns: nothing of the library; it only calls the public API and libpq.
 * Must never: be part of the library or of the test suites' pass/fail.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "synclog_client.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cmp_d(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

static void
report(const char *name, int n, double total, double *lat)
{
	printf("%s n=%d total_s=%.3f per_s=%.0f", name, n, total, n / total);
	if (lat)
	{
		qsort(lat, (size_t) n, sizeof(double), cmp_d);
		printf(" p50_ms=%.2f p99_ms=%.2f", lat[n / 2] * 1e3, lat[(n * 99) / 100] * 1e3);
	}
	printf("\n");
	fflush(stdout);
}

/* delta of mutation i: key "bench-<i % 64>", a value of vlen bytes */
static size_t
make_delta(int i, int vlen, uint8_t *out)
{
	char		k[32];
	slc_change	ch;

	snprintf(k, sizeof(k), "bench-%d", i % 64);
	memset(&ch, 0, sizeof(ch));
	ch.key = (const uint8_t *) k;
	ch.klen = (uint32_t) strlen(k);
	ch.vlen = (uint32_t) vlen;
	{
		uint8_t    *v = malloc((size_t) vlen + 1);
		size_t		n;

		if (v == NULL)
			exit(1);
		memset(v, 'a' + i % 26, (size_t) vlen);
		ch.val = v;
		n = slc_delta_encode(&ch, 1, out);
		free(v);
		return n;
	}
}

int
main(int argc, char **argv)
{
	const char *dsn,
			   *doc,
			   *dir;
	int			n,
				vlen;
	uint8_t    *d;
	double		t0,
			   *lat;
	PGconn	   *pg;
	slcl_options o;
	slcl_client *c;

	if (argc != 6)
	{
		fprintf(stderr, "usage: %s DSN DOC DIR N BYTES\n", argv[0]);
		return 2;
	}
	dsn = argv[1];
	doc = argv[2];
	dir = argv[3];
	n = atoi(argv[4]);
	vlen = atoi(argv[5]);
	d = malloc((size_t) vlen + 256);
	lat = calloc((size_t) n, sizeof(double));
	if (n <= 0 || vlen < 0 || d == NULL || lat == NULL)
		return 2;

	/* plain appends */
	pg = PQconnectdb(dsn);
	if (PQstatus(pg) != CONNECTION_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(pg));
		return 1;
	}
	t0 = now();
	for (int i = 0; i < n; i++)
	{
		char		seq[32];
		size_t		dl = make_delta(i, vlen, d);
		const char *vals[3] = {doc, (const char *) d, seq};
		int			lens[3] = {0, (int) dl, 0};
		int			fmts[3] = {0, 1, 0};
		PGresult   *r;

		snprintf(seq, sizeof(seq), "%d", i + 1);
		r = PQexecParams(pg, "SELECT synclog.append_delta($1, $2::bytea, 'bench-plain', $3::bigint)",
						 3, NULL, vals, lens, fmts, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
		{
			fprintf(stderr, "%s", PQerrorMessage(pg));
			return 1;
		}
		PQclear(r);
	}
	report("plain", n, now() - t0, NULL);
	PQfinish(pg);

	slcl_options_init(&o);
	o.dsn = dsn;
	o.doc = doc;
	o.dir = dir;
	o.client_id = "bench-client";
	if (slcl_open(&o, &c) != SLCL_OK || slcl_sync(c) != SLCL_OK)
	{
		fprintf(stderr, "open/sync: %s\n", slcl_open_error());
		return 1;
	}
	t0 = now();
	for (int i = 0; i < n; i++)
	{
		size_t		dl = make_delta(i, vlen, d);

		if (slcl_submit(c, d, dl, NULL) != SLCL_OK)
		{
			fprintf(stderr, "submit: %s\n", slcl_errmsg(c));
			return 1;
		}
	}
	report("submit", n, now() - t0, NULL);
	if (slcl_sync(c) != SLCL_OK || slcl_pending(c) != 0)
	{
		fprintf(stderr, "sync: %s (%d pending)\n", slcl_errmsg(c), slcl_pending(c));
		return 1;
	}
	report("submit+confirm", n, now() - t0, NULL);

	t0 = now();
	for (int i = 0; i < n; i++)
	{
		size_t		dl = make_delta(i, vlen, d);
		double		t = now();

		if (slcl_submit(c, d, dl, NULL) != SLCL_OK || slcl_sync(c) != SLCL_OK || slcl_pending(c) != 0)
		{
			fprintf(stderr, "submit/sync: %s\n", slcl_errmsg(c));
			return 1;
		}
		lat[i] = now() - t;
	}
	report("latency", n, now() - t0, lat);
	slcl_close(c);
	free(d);
	free(lat);
	return 0;
}
