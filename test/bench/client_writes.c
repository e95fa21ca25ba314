/*
 * client_writes.c - benchmark of the reference client's write path
 * (BENCHMARKS.md, "The reference client's write path").
 *
 *   client_writes DSN DOC DIR N BYTES [BATCH [ROUNDS]]
 *
 * ROUNDS (default 3) rounds, each of four runs over the same N mutations
 * of one key of BYTES bytes each, one after the other so that the machine's
 * load hits both sides of each pair alike:
 *  plain    synclog.append_delta(doc, delta, client id, seq) from libpq,
 *           one statement per mutation in autocommit, one connection: what
 *           an application pays without the client (a client id new in
 *           every round, so that no append is a duplicate);
 *  submit   slcl_submit for each (durable queue commit with fsync, then
 *           append_delta); an untimed slcl_sync after it confirms them;
 *  queue    slcl_enqueue for each (durable queue commit only), then one
 *           slcl_flush sends them (timed, batched into server
 *           transactions of up to 256); then an untimed sync;
 *  plainB   the same appends, BATCH (default 100) per server transaction;
 *  batchB   slcl_submit_batch of BATCH mutations at a time (one queue
 *           commit, one server transaction each); then an untimed sync;
 * and, after the rounds, latency: slcl_submit then slcl_sync for each of
 * N/4 mutations, from the call to the mutation being confirmed in the
 * replica (its own watermark read back from the log).
 * Prints one line per run: "name n=N total_s=T per_s=R [p50_ms=.. p99_ms=..]"
 * and per round "ratio round=R single=X queue=Q batch=Y" (client time /
 * plain time; queue and single against plain, batch against plainB), and
 * the median of each ratio over the rounds.
 *
 * Owns: nothing of the library; it only calls the public API and libpq.
 * Must never: be part of the library or of the test suites' pass/fail.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* delta of mutation i: key "bench-<i % 64>", a value of vlen pseudo-random bytes */
static size_t
make_delta(int i, int vlen, uint8_t *out)
{
	char		k[32];
	slc_change	ch;
	uint8_t    *v = malloc((size_t) vlen + 1);
	uint64_t	x = 0x9E3779B97F4A7C15ULL * (uint64_t) (i + 1);
	size_t		n;

	if (v == NULL)
		exit(1);
	/* xorshift bytes: incompressible, so the server's compression of
	 * appends does not make the plain side write less than the queue */
	for (int j = 0; j < vlen; j++)
	{
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		v[j] = (uint8_t) x;
	}
	snprintf(k, sizeof(k), "bench-%d", i % 64);
	memset(&ch, 0, sizeof(ch));
	ch.key = (const uint8_t *) k;
	ch.klen = (uint32_t) strlen(k);
	ch.val = v;
	ch.vlen = (uint32_t) vlen;
	n = slc_delta_encode(&ch, 1, out);
	free(v);
	return n;
}

static void
must_ok(PGconn *pg, PGresult *r, ExecStatusType want)
{
	if (PQresultStatus(r) != want)
	{
		fprintf(stderr, "%s", PQerrorMessage(pg));
		exit(1);
	}
	PQclear(r);
}

/* N plain appends under client id cid, batch per transaction (1: autocommit); seconds */
static double
run_plain(PGconn *pg, const char *doc, const char *cid, int n, int vlen, int batch, uint8_t *d)
{
	double		t0 = now();

	for (int i = 0; i < n; i++)
	{
		char		seq[32];
		size_t		dl = make_delta(i, vlen, d);
		const char *vals[4] = {doc, (const char *) d, cid, seq};
		int			lens[4] = {0, (int) dl, 0, 0};
		int			fmts[4] = {0, 1, 0, 0};

		if (batch > 1 && i % batch == 0)
			must_ok(pg, PQexec(pg, "BEGIN"), PGRES_COMMAND_OK);
		snprintf(seq, sizeof(seq), "%d", i + 1);
		must_ok(pg, PQexecParams(pg, "SELECT synclog.append_delta($1, $2::bytea, $3, $4::bigint)",
								 4, NULL, vals, lens, fmts, 0), PGRES_TUPLES_OK);
		if (batch > 1 && (i % batch == batch - 1 || i == n - 1))
			must_ok(pg, PQexec(pg, "COMMIT"), PGRES_COMMAND_OK);
	}
	return now() - t0;
}

static void
must_sync(slcl_client *c)
{
	if (slcl_sync(c) != SLCL_OK || slcl_pending(c) != 0)
	{
		fprintf(stderr, "sync: %s (%d pending)\n", slcl_errmsg(c), slcl_pending(c));
		exit(1);
	}
}

/* N slcl_enqueue, then one slcl_flush; seconds */
static double
run_enqueue(slcl_client *c, int n, int vlen, uint8_t *d)
{
	double		t0 = now();

	for (int i = 0; i < n; i++)
		if (slcl_enqueue(c, d, make_delta(i, vlen, d), NULL) != SLCL_OK)
		{
			fprintf(stderr, "enqueue: %s\n", slcl_errmsg(c));
			exit(1);
		}
	if (slcl_flush(c) != SLCL_OK)
	{
		fprintf(stderr, "flush: %s\n", slcl_errmsg(c));
		exit(1);
	}
	return now() - t0;
}

/* N mutations through the client, batch per slcl_submit_batch (1: slcl_submit); seconds */
static double
run_client(slcl_client *c, int n, int vlen, int batch, uint8_t *d)
{
	slcl_delta_ref *m = calloc((size_t) batch, sizeof(slcl_delta_ref));
	double		t0;

	if (m == NULL)
		exit(1);
	for (int j = 0; j < batch; j++)
	{
		m[j].delta = malloc((size_t) vlen + 256);
		if (m[j].delta == NULL)
			exit(1);
	}
	t0 = now();
	for (int i = 0; i < n; i += batch)
	{
		int			k = n - i < batch ? n - i : batch;
		slcl_rc		rc;

		if (batch == 1)
			rc = slcl_submit(c, d, make_delta(i, vlen, d), NULL);
		else
		{
			for (int j = 0; j < k; j++)
				m[j].len = make_delta(i + j, vlen, (uint8_t *) m[j].delta);
			rc = slcl_submit_batch(c, m, k, NULL);
		}
		if (rc != SLCL_OK)
		{
			fprintf(stderr, "submit: %s\n", slcl_errmsg(c));
			exit(1);
		}
	}
	t0 = now() - t0;
	for (int j = 0; j < batch; j++)
		free((void *) m[j].delta);
	free(m);
	return t0;
}

int
main(int argc, char **argv)
{
	const char *dsn,
			   *doc,
			   *dir;
	int			n,
				vlen,
				batch = 100,
				rounds = 3,
				nlat;
	uint8_t    *d;
	double		t0,
			   *lat,
			   *ratios;
	PGconn	   *pg;
	slcl_options o;
	slcl_client *c;

	if (argc < 6 || argc > 8)
	{
		fprintf(stderr, "usage: %s DSN DOC DIR N BYTES [BATCH [ROUNDS]]\n", argv[0]);
		return 2;
	}
	dsn = argv[1];
	doc = argv[2];
	dir = argv[3];
	n = atoi(argv[4]);
	vlen = atoi(argv[5]);
	if (argc > 6)
		batch = atoi(argv[6]);
	if (argc > 7)
		rounds = atoi(argv[7]);
	nlat = n / 4 > 0 ? n / 4 : 1;
	d = malloc((size_t) vlen + 256);
	lat = calloc((size_t) nlat, sizeof(double));
	ratios = calloc((size_t) (rounds > 0 ? rounds : 1) * 3, sizeof(double));
	if (n <= 0 || vlen < 0 || batch < 1 || rounds < 1 || d == NULL || lat == NULL || ratios == NULL)
		return 2;

	pg = PQconnectdb(dsn);
	if (PQstatus(pg) != CONNECTION_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(pg));
		return 1;
	}
	slcl_options_init(&o);
	o.dsn = dsn;
	o.doc = doc;
	o.dir = dir;
	o.client_id = "bench-client";
	if (slcl_open(&o, &c) != SLCL_OK)
	{
		fprintf(stderr, "open: %s\n", slcl_open_error());
		return 1;
	}
	must_sync(c);
	for (int r = 1; r <= rounds; r++)
	{
		char		cid[64];
		double		p1,
					s1,
					q1,
					pb,
					sb;

		snprintf(cid, sizeof(cid), "bench-plain-%d-%d-1", (int) getpid(), r);
		p1 = run_plain(pg, doc, cid, n, vlen, 1, d);
		report("plain", n, p1, NULL);
		s1 = run_client(c, n, vlen, 1, d);
		report("submit", n, s1, NULL);
		must_sync(c);
		q1 = run_enqueue(c, n, vlen, d);
		report("queue", n, q1, NULL);
		must_sync(c);
		snprintf(cid, sizeof(cid), "bench-plain-%d-%d-b", (int) getpid(), r);
		pb = run_plain(pg, doc, cid, n, vlen, batch, d);
		report("plainB", n, pb, NULL);
		sb = run_client(c, n, vlen, batch, d);
		report("batchB", n, sb, NULL);
		must_sync(c);
		printf("ratio round=%d single=%.2f queue=%.2f batch=%.2f (batch of %d)\n", r, s1 / p1, q1 / p1, sb / pb,
			   batch);
		ratios[r - 1] = s1 / p1;
		ratios[rounds + r - 1] = q1 / p1;
		ratios[2 * rounds + r - 1] = sb / pb;
		fflush(stdout);
	}
	PQfinish(pg);
	for (int k = 0; k < 3; k++)
		qsort(ratios + k * rounds, (size_t) rounds, sizeof(double), cmp_d);
	printf("median of %d rounds: single=%.2f queue=%.2f batch=%.2f\n", rounds, ratios[rounds / 2],
		   ratios[rounds + rounds / 2], ratios[2 * rounds + rounds / 2]);

	t0 = now();
	for (int i = 0; i < nlat; i++)
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
	report("latency", nlat, now() - t0, lat);
	slcl_close(c);
	free(d);
	free(lat);
	free(ratios);
	return 0;
}
