/*
 * test_writes.c - offline tests of the reference client's write path
 * (client_write.c): the durable pending queue, client_seq numbering,
 * confirmation by the client's own watermark, SL007, and the rebased view.
 *
 * Built with the library's sources and client_int.h (like
 * test_durability.c) so that it can commit states with the store calls the
 * read loop makes.  No server: the handles have no connection string, so
 * slcl_submit only queues.  Cases:
 *  1. kill -9 right after a mutation is committed to the queue (debug point
 *     "submit-queued"): reopened, the queue holds it, byte for byte, and the
 *     ones before it;
 *  2. client_seq: an explicit one below the next free one is refused
 *     (SLCL_ERR_ARG) and nothing is queued; numbers are never reused after
 *     their mutations left the queue; a watermark the state holds for the
 *     client id raises the next one;
 *  3. bad mutations: over submit_max_bytes, a repeated key, a truncated
 *     delta, a change larger than the part size: refused, nothing queued;
 *  4. confirmation: committing a state whose own watermark reaches a
 *     mutation's seq removes it (and only those), in that commit;
 *  5. SL007: a retire entry of the own watermark with mutations pending
 *     moves them to the failed list, and slcl_flush says SLCL_ERR_RETIRED;
 *  6. the rebased view: get and scan with the queue laid over the state;
 *  7. slcl_submit_batch: killed right after its queue commit, every
 *     mutation of the batch is queued; consecutive client_seqs; a bad one
 *     queues none; slcl_enqueue;
 *  8. queue.db: a confirmed row whose removal was lost is skipped by readers
 *     and removed at the next open; a damaged replica.db is dropped and the
 *     queue stays whole (and confirms against the new state); a queue an
 *     earlier version kept in replica.db moves into queue.db, once;
 *  9. the WAL cut at every commit frame boundary (and around it, and every
 *     509 bytes) after a kill -9: the queue opens as a prefix of what was
 *     queued, in order, every delta intact, the prefix only growing with
 *     the cut (queue.db's WAL).
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int	failures;
static int	checks;

#define CHECK(cond, ...) do { \
	checks++; \
	if (!(cond)) { \
		failures++; \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
	} \
} while (0)

#define NQ 12					/* mutations queued by the WAL run */

static char root[1024];
static int	die_at_debug;
static int	retired_events;
static int	corrupt_events;
static int	moved_events;

static void
on_ev(void *arg, const slcl_event *ev)
{
	(void) arg;
	if (ev->type == SLCL_EV_DEBUG && die_at_debug)
		raise(SIGKILL);
	if (ev->type == SLCL_EV_RETIRED)
		retired_events++;
	if (ev->type == SLCL_EV_CORRUPT)
		corrupt_events++;
	if (ev->type == SLCL_EV_REPAIR && ev->message && strstr(ev->message, "moved the queue") != NULL)
		moved_events++;
}

static slcl_client *
open_w(const char *dir, const char *debug_point, int64_t max_bytes)
{
	slcl_options o;
	slcl_client *c = NULL;

	slcl_options_init(&o);
	o.doc = "wdoc";
	o.dir = dir;
	o.client_id = "me";
	o.on_event = on_ev;
	o.debug_point = debug_point;
	o.part_bytes = 64;
	if (max_bytes > 0)
		o.submit_max_bytes = max_bytes;
	if (slcl_open(&o, &c) != SLCL_OK)
	{
		fprintf(stderr, "slcl_open(%s): %s\n", dir, slcl_open_error());
		exit(1);
	}
	return c;
}

/* Delta of mutation i: set "m<i>" and "k<i%3>", delete "d<i>". */
static size_t
mutation(int i, uint8_t *out)
{
	char		k1[16],
				v1[32],
				k2[16],
				k3[16];
	slc_change ch[3];

	snprintf(k1, sizeof(k1), "m%d", i);
	snprintf(v1, sizeof(v1), "value-%d", i * 7);
	snprintf(k2, sizeof(k2), "k%d", i % 3);
	snprintf(k3, sizeof(k3), "d%d", i);
	memset(ch, 0, sizeof(ch));
	ch[0].key = (uint8_t *) k1;
	ch[0].klen = (uint32_t) strlen(k1);
	ch[0].val = (uint8_t *) v1;
	ch[0].vlen = (uint32_t) strlen(v1);
	ch[1].key = (uint8_t *) k2;
	ch[1].klen = (uint32_t) strlen(k2);
	ch[1].val = (uint8_t *) k1;
	ch[1].vlen = (uint32_t) strlen(k1);
	ch[2].key = (uint8_t *) k3;
	ch[2].klen = (uint32_t) strlen(k3);
	ch[2].is_delete = 1;
	return slc_delta_encode(ch, 3, out);
}

/* The queue as "seq:len:xxh;" for comparisons, and its size. */
typedef struct qlist
{
	int			n;
	int			nfailed;
	int64_t		seq[256];
	char		state[256][8];
	size_t		dlen[256];
	uint8_t		delta[256][128];
} qlist;

static int
collect(void *arg, const slcl_mutation *m)
{
	qlist	   *q = arg;

	if (q->n < 256)
	{
		q->seq[q->n] = m->seq;
		snprintf(q->state[q->n], sizeof(q->state[0]), "%s", m->failed ? m->sqlstate : "");
		q->dlen[q->n] = m->dlen;
		memcpy(q->delta[q->n], m->delta, m->dlen < 128 ? m->dlen : 128);
		q->n++;
		q->nfailed += m->failed;
	}
	return 0;
}

static void
list_queue(slcl_client *c, qlist *q)
{
	memset(q, 0, sizeof(*q));
	CHECK(slcl_queue_list(c, collect, q) == SLCL_OK, "queue_list: %s", slcl_errmsg(c));
}

static void
run(const char *cmd, const char *a)
{
	char		line[4096];

	snprintf(line, sizeof(line), cmd, a, a);
	if (system(line) != 0)
	{
		fprintf(stderr, "failed: %s\n", line);
		exit(1);
	}
}

/* Install an empty state at (log L, lsn 1), with the own watermark if wm >= 0. */
static void
base_state(slcl_client *c, int64_t wm)
{
	slc_hash	h;
	int64_t		gen;

	slc_hash_init(&h);
	CHECK(slcli_store_begin(c) == SLCL_OK, "begin: %s", c->err);
	gen = slcli_store_new_gen(c);
	for (int i = 0; i < 3; i++)
	{
		char		k[16],
					v[16];

		snprintf(k, sizeof(k), "k%d", i);
		snprintf(v, sizeof(v), "base%d", i);
		CHECK(slcli_store_put(c, gen, &h, SLC_NS_DATA, (uint8_t *) k, strlen(k), (uint8_t *) v,
							  strlen(v), 0) == SLCL_OK, "put: %s", c->err);
	}
	if (wm >= 0)
	{
		uint8_t		w[SLC_WATERMARK_LEN];

		slc_watermark_encode(wm, 1, w);
		CHECK(slcli_store_put(c, gen, &h, SLC_NS_CLIENT, (uint8_t *) "me", 2, w, sizeof(w), 0) == SLCL_OK,
			  "put wm");
	}
	CHECK(slcli_store_install(c, gen, "L", 1, NULL, &h) == SLCL_OK, "install: %s", c->err);
	CHECK(slcli_store_commit(c) == SLCL_OK, "commit: %s", c->err);
}

/* Apply one entry of ours (delta d, seq) at c's next LSN as a group. */
static void
entry_of_ours(slcl_client *c, const uint8_t *d, size_t dl, int64_t seq)
{
	slcli_entry e = {c->cur.lsn + 1, d, dl, "me", 2, seq};

	CHECK(slcli_store_apply_group(c, &e, 1, "L", e.lsn, NULL) == SLCL_OK, "group: %s", c->err);
}

/* In a child: submit n mutations (n > 1: one slcl_submit_batch), killed -9 right after the queue commit. */
static void
queue_and_die(const char *dir, const slcl_delta_ref *m, int n)
{
	pid_t		pid = fork();
	int			st;

	if (pid == 0)
	{
		slcl_client *c;

		die_at_debug = 1;
		c = open_w(dir, "submit-queued", 0);
		if (n == 1)
			(void) slcl_submit(c, m[0].delta, m[0].len, NULL);
		else
			(void) slcl_submit_batch(c, m, n, NULL);
		_exit(0);				/* not reached: killed at the point */
	}
	waitpid(pid, &st, 0);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the child was killed at submit-queued (%d mutations)", n);
}

static void
test_kill_after_queue(void)
{
	char		dir[1100];
	uint8_t		d[128];
	size_t		dl;
	qlist		q;
	slcl_client *c;

	snprintf(dir, sizeof(dir), "%s/kill", root);
	c = open_w(dir, NULL, 0);
	for (int i = 0; i < 3; i++)
	{
		dl = mutation(i, d);
		CHECK(slcl_submit(c, d, dl, NULL) == SLCL_OK, "submit: %s", slcl_errmsg(c));
	}
	slcl_close(c);
	{
		slcl_delta_ref m = {d, mutation(3, d)};

		queue_and_die(dir, &m, 1);
	}
	c = open_w(dir, NULL, 0);
	list_queue(c, &q);
	CHECK(q.n == 4 && slcl_pending(c) == 4, "the queue holds 4 mutations after kill -9 (%d)", q.n);
	for (int i = 0; i < q.n && i < 4; i++)
	{
		dl = mutation(i, d);
		CHECK(q.seq[i] == i + 1 && q.dlen[i] == dl && memcmp(q.delta[i], d, dl) == 0,
			  "queued mutation %d is intact with seq %d (%lld)", i, i + 1, (long long) q.seq[i]);
	}
	CHECK(slcl_next_seq(c) == 5, "next client_seq after the kill: 5 (%lld)", (long long) slcl_next_seq(c));
	slcl_close(c);
	printf("kill -9 after a queue commit: the queue reopens whole, in order\n");
}

/*
 * slcl_submit_batch: one queue transaction for all of them (a kill right
 * after it leaves all of them queued), consecutive client_seqs (a split
 * one takes several), and a bad one queues none.
 */
static void
test_batch(void)
{
	char		dir[1100];
	uint8_t		d[6][128],
				big[256];
	slcl_delta_ref m[6];
	int64_t		seqs[6];
	qlist		q;
	slcl_client *c;

	snprintf(dir, sizeof(dir), "%s/batch", root);
	for (int i = 0; i < 5; i++)
	{
		m[i].len = mutation(i, d[i]);
		m[i].delta = d[i];
	}
	{
		slc_change	ch[3];
		char		k[3][4] = {"b1", "b2", "b3"};
		uint8_t		v[30];

		memset(ch, 0, sizeof(ch));
		memset(v, 'v', sizeof(v));
		for (int i = 0; i < 3; i++)
		{
			ch[i].key = (uint8_t *) k[i];
			ch[i].klen = 2;
			ch[i].val = v;
			ch[i].vlen = sizeof(v);
		}
		m[5].len = slc_delta_encode(ch, 3, big);	/* over part_bytes 64: 2 or more parts */
		m[5].delta = big;
	}
	queue_and_die(dir, m, 6);
	c = open_w(dir, NULL, 0);
	list_queue(c, &q);
	CHECK(q.n == 6 && slcl_pending(c) == 6, "the whole batch is queued after kill -9 (%d)", q.n);
	for (int i = 0; i < q.n && i < 6; i++)
		CHECK(q.seq[i] == i + 1 && q.dlen[i] == m[i].len && memcmp(q.delta[i], m[i].delta, m[i].len) == 0,
			  "batch mutation %d intact with seq %d (%lld)", i, i + 1, (long long) q.seq[i]);
	CHECK(slcl_next_seq(c) > 7, "the split one took several client_seqs (next %lld)", (long long) slcl_next_seq(c));

	/* again: the seqs it reports, and a bad one in the middle queues none */
	{
		int64_t		next = slcl_next_seq(c);

		CHECK(slcl_submit_batch(c, m, 3, seqs) == SLCL_OK && seqs[0] == next && seqs[1] == next + 1 &&
			  seqs[2] == next + 2 && slcl_pending(c) == 9, "a batch of 3 takes %lld..%lld", (long long) next,
			  (long long) next + 2);
		m[1].len -= 1;			/* cut short */
		CHECK(slcl_submit_batch(c, m, 3, seqs) == SLCL_ERR_ARG &&
			  strstr(slcl_errmsg(c), "mutation 1 of the batch") != NULL && slcl_pending(c) == 9 &&
			  slcl_next_seq(c) == next + 3, "a bad mutation queues none of its batch: %s", slcl_errmsg(c));
		m[1].len += 1;
		CHECK(slcl_submit_batch(c, m, 0, seqs) == SLCL_ERR_ARG, "an empty batch is refused");
		CHECK(slcl_enqueue(c, m[0].delta, m[0].len, &seqs[0]) == SLCL_OK && seqs[0] == next + 3 &&
			  slcl_pending(c) == 10, "slcl_enqueue queues with the next seq (%lld)", (long long) seqs[0]);
		CHECK(slcl_enqueue(c, m[1].delta, m[1].len - 1, &seqs[0]) == SLCL_ERR_ARG && slcl_pending(c) == 10,
			  "and refuses a bad one");
	}
	slcl_close(c);
	printf("batch: one queue transaction, consecutive client_seqs, all or none\n");
}

static void
test_seq_and_bad(void)
{
	char		dir[1100];
	uint8_t		d[128];
	uint8_t		big[400];
	uint8_t		val[300];
	size_t		dl = mutation(1, d);
	qlist		q;
	int64_t		seq = 0;
	slcl_client *c;

	snprintf(dir, sizeof(dir), "%s/seq", root);
	c = open_w(dir, NULL, 200);
	base_state(c, -1);
	CHECK(slcl_submit_seq(c, d, dl, 10) == SLCL_OK, "seq 10: %s", slcl_errmsg(c));
	CHECK(slcl_submit_seq(c, d, dl, 7) == SLCL_ERR_ARG && strstr(slcl_errmsg(c), "backwards") != NULL,
		  "seq 7 after 10 is refused: %s", slcl_errmsg(c));
	CHECK(slcl_submit_seq(c, d, dl, 10) == SLCL_ERR_ARG, "seq 10 twice is refused");
	CHECK(slcl_submit(c, d, dl, &seq) == SLCL_OK && seq == 11, "the next one is 11 (%lld)", (long long) seq);
	/* over the size cap (200 bytes) */
	{
		slc_change	ch;

		memset(&ch, 0, sizeof(ch));
		ch.key = (uint8_t *) "big";
		ch.klen = 3;
		ch.val = val;
		ch.vlen = 250;
		memset(val, 'x', sizeof(val));
		dl = slc_delta_encode(&ch, 1, big);
	}
	CHECK(slcl_submit(c, big, dl, NULL) == SLCL_ERR_ARG && strstr(slcl_errmsg(c), "over the limit") != NULL,
		  "a mutation over submit_max_bytes is refused: %s", slcl_errmsg(c));
	/* a change larger than the part size (64) */
	{
		slc_change	ch;
		uint8_t		v[100];

		memset(&ch, 0, sizeof(ch));
		memset(v, 'y', sizeof(v));
		ch.key = (uint8_t *) "p";
		ch.klen = 1;
		ch.val = v;
		ch.vlen = 100;
		dl = slc_delta_encode(&ch, 1, big);
		CHECK(slcl_submit(c, big, dl, NULL) == SLCL_ERR_ARG && strstr(slcl_errmsg(c), "part size") != NULL,
			  "a change over the part size is refused: %s", slcl_errmsg(c));
	}
	/* a repeated key, and a delta cut short */
	{
		slc_change	ch[2];

		memset(ch, 0, sizeof(ch));
		ch[0].key = ch[1].key = (uint8_t *) "same";
		ch[0].klen = ch[1].klen = 4;
		ch[0].is_delete = ch[1].is_delete = 1;
		dl = slc_delta_encode(ch, 2, big);
		CHECK(slcl_submit(c, big, dl, NULL) == SLCL_ERR_ARG, "a repeated key is refused");
		CHECK(slcl_submit(c, big, dl - 1, NULL) == SLCL_ERR_ARG, "a truncated delta is refused");
	}
	list_queue(c, &q);
	CHECK(q.n == 2 && q.seq[0] == 10 && q.seq[1] == 11, "only seqs 10 and 11 are queued (%d)", q.n);

	/* confirmation: a state with our watermark at 10 drops 10 only */
	dl = mutation(1, d);
	entry_of_ours(c, d, dl, 10);
	list_queue(c, &q);
	CHECK(q.n == 1 && q.seq[0] == 11 && slcl_pending(c) == 1, "watermark 10 confirms seq 10 only (%d left)", q.n);
	entry_of_ours(c, d, dl, 11);
	CHECK(slcl_pending(c) == 0, "watermark 11 empties the queue");
	CHECK(slcl_submit(c, d, dl, &seq) == SLCL_OK && seq == 12, "numbers are never reused (%lld)", (long long) seq);
	slcl_close(c);

	/* reopened, and a state whose watermark is ahead (a copied directory) */
	c = open_w(dir, NULL, 200);
	CHECK(slcl_pending(c) == 1 && slcl_next_seq(c) == 13, "reopened: 1 pending, next 13");
	entry_of_ours(c, d, dl, 40);
	CHECK(slcl_pending(c) == 0 && slcl_next_seq(c) == 41, "a watermark at 40 raises the next seq to 41 (%lld)",
		  (long long) slcl_next_seq(c));
	slcl_close(c);
	printf("client_seq: backwards and reused refused, bad mutations refused, confirmation by watermark\n");
}

static void
test_retired(void)
{
	char		dir[1100];
	uint8_t		d[128];
	size_t		dl = mutation(5, d);
	qlist		q;
	slcl_client *c;
	static const uint8_t empty[5] = {1, 0, 0, 0, 0};

	snprintf(dir, sizeof(dir), "%s/retired", root);
	c = open_w(dir, NULL, 0);
	base_state(c, 3);
	CHECK(slcl_submit(c, d, dl, NULL) == SLCL_OK, "submit");
	CHECK(slcl_submit(c, d, dl, NULL) == SLCL_OK, "submit");
	retired_events = 0;
	entry_of_ours(c, empty, sizeof(empty), SLC_RETIRE_SEQ);
	list_queue(c, &q);
	CHECK(slcl_pending(c) == 0 && q.n == 2 && q.nfailed == 2 && strcmp(q.state[0], "SL007") == 0,
		  "a retired watermark moves the pending mutations to failed with SL007 (%d, %d)", q.n, q.nfailed);
	CHECK(retired_events == 1, "one SLCL_EV_RETIRED (%d)", retired_events);
	CHECK(slcl_flush(c) == SLCL_ERR_RETIRED, "the next call says SLCL_ERR_RETIRED: %s", slcl_errmsg(c));
	CHECK(slcl_flush(c) == SLCL_OK, "once");
	/* no watermark and nothing pending: a new mutation just goes on */
	CHECK(slcl_submit(c, d, dl, NULL) == SLCL_OK && slcl_pending(c) == 1, "queues again after SL007");
	entry_of_ours(c, empty, sizeof(empty), 6);
	CHECK(slcl_pending(c) == 0, "and is confirmed by its new watermark");
	slcl_close(c);
	printf("SL007: a retired watermark with mutations pending reports them, never resends\n");
}

typedef struct scan_out
{
	char		s[1024];
} scan_out;

static int
scan_cb(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	scan_out   *o = arg;
	size_t		l = strlen(o->s);

	snprintf(o->s + l, sizeof(o->s) - l, "%.*s=%.*s;", (int) klen, (const char *) key, (int) vlen,
			 (const char *) val);
	return 0;
}

static void
test_rebased(void)
{
	char		dir[1100];
	uint8_t		d[256];
	size_t		dl;
	slcl_client *c;
	slcl_reader *r;
	scan_out	o;
	int			found;
	const uint8_t *v;
	size_t		vl;
	slc_change	ch[3];

	snprintf(dir, sizeof(dir), "%s/rebased", root);
	c = open_w(dir, NULL, 0);
	base_state(c, -1);			/* k0=base0 k1=base1 k2=base2 */
	memset(ch, 0, sizeof(ch));
	ch[0].key = (uint8_t *) "k1";
	ch[0].klen = 2;
	ch[0].val = (uint8_t *) "one";
	ch[0].vlen = 3;
	ch[1].key = (uint8_t *) "k3";
	ch[1].klen = 2;
	ch[1].val = (uint8_t *) "three";
	ch[1].vlen = 5;
	dl = slc_delta_encode(ch, 2, d);
	CHECK(slcl_submit(c, d, dl, NULL) == SLCL_OK, "submit");
	ch[0].key = (uint8_t *) "k0";
	ch[0].is_delete = 1;
	ch[0].val = NULL;
	ch[0].vlen = 0;
	ch[1].val = (uint8_t *) "THREE";
	ch[2].key = (uint8_t *) "a";
	ch[2].klen = 1;
	ch[2].val = (uint8_t *) "";
	ch[2].vlen = 0;
	dl = slc_delta_encode(ch, 3, d);
	CHECK(slcl_submit(c, d, dl, NULL) == SLCL_OK, "submit");
	r = slcl_client_reader(c);
	CHECK(r != NULL, "reader");
	memset(&o, 0, sizeof(o));
	CHECK(slcl_reader_scan_rebased(r, NULL, 0, NULL, 0, scan_cb, &o) == SLCL_OK, "scan");
	CHECK(strcmp(o.s, "a=;k1=one;k2=base2;k3=THREE;") == 0, "rebased scan: %s", o.s);
	memset(&o, 0, sizeof(o));
	CHECK(slcl_reader_scan_rebased(r, (uint8_t *) "k1", 2, (uint8_t *) "k3", 2, scan_cb, &o) == SLCL_OK, "scan");
	CHECK(strcmp(o.s, "k1=one;k2=base2;") == 0, "rebased range scan: %s", o.s);
	memset(&o, 0, sizeof(o));
	CHECK(slcl_reader_scan(r, SLC_NS_DATA, NULL, 0, NULL, 0, scan_cb, &o) == SLCL_OK, "scan");
	CHECK(strcmp(o.s, "k0=base0;k1=base1;k2=base2;") == 0, "plain scan: %s", o.s);
	CHECK(slcl_reader_get_rebased(r, (uint8_t *) "k0", 2, &found, &v, &vl) == SLCL_OK && !found,
		  "k0 deleted by the queue");
	CHECK(slcl_reader_get_rebased(r, (uint8_t *) "k3", 2, &found, &v, &vl) == SLCL_OK && found &&
		  vl == 5 && memcmp(v, "THREE", 5) == 0, "k3 from the second mutation");
	CHECK(slcl_reader_get_rebased(r, (uint8_t *) "k2", 2, &found, &v, &vl) == SLCL_OK && found &&
		  vl == 5 && memcmp(v, "base2", 5) == 0, "k2 from the state");
	CHECK(slcl_reader_get_rebased(r, (uint8_t *) "zz", 2, &found, &v, &vl) == SLCL_OK && !found, "zz absent");
	slcl_close(c);
	printf("rebased view: get and scan with the queue over the state\n");
}

/* Run SQL on a database file of dir with a connection of the test's own. */
static void
sql_on(const char *dir, const char *file, const char *sql)
{
	char		p[1200];
	sqlite3    *db = NULL;
	char	   *msg = NULL;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
		sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
	{
		fprintf(stderr, "%s: %s: %s\n", p, sql, msg ? msg : sqlite3_errmsg(db));
		exit(1);
	}
	sqlite3_close(db);
}

/* One row's integer answer of sql on a database file of dir. */
static int64_t
sql_int(const char *dir, const char *file, const char *sql)
{
	char		p[1200];
	sqlite3    *db = NULL;
	sqlite3_stmt *s = NULL;
	int64_t		v = -1;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
		sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* The queue matches mutations first.. in seq order from seq0, deltas intact. */
static int
queue_is(slcl_client *c, int first, int n, int64_t seq0)
{
	qlist		q;
	int			ok;

	list_queue(c, &q);
	ok = q.n == n && slcl_pending(c) == n;
	for (int i = 0; ok && i < n; i++)
	{
		uint8_t		d[128];
		size_t		dl = mutation(first + i, d);

		ok = q.seq[i] == seq0 + i && q.dlen[i] == dl && memcmp(q.delta[i], d, dl) == 0 && !q.state[i][0];
	}
	return ok;
}

/*
 * queue.db: the queue is its own file.  A row whose removal was lost (a
 * crash after the replica's commit) is skipped by readers and removed at
 * the next open; a damaged replica.db is removed and downloaded again, the
 * queue stays whole; a queue an earlier version kept in replica.db moves
 * into queue.db at open (and a reader of such a directory still sees it).
 */
static void
test_queue_file(void)
{
	char		dir[1100];
	uint8_t		d[128];
	size_t		dl;
	slcl_client *c;
	slcl_reader *r;
	int			found;
	const uint8_t *v;
	size_t		vl;
	slc_change	ch;

	snprintf(dir, sizeof(dir), "%s/qfile", root);
	c = open_w(dir, NULL, 0);
	base_state(c, 2);
	for (int i = 0; i < 3; i++)
	{
		int64_t		seq;

		dl = mutation(i, d);
		CHECK(slcl_submit(c, d, dl, &seq) == SLCL_OK && seq == 3 + i, "submit %d: seq %lld", i, (long long) seq);
	}
	/* seq 3 reaches the state, then another client overwrites m0 */
	dl = mutation(0, d);
	entry_of_ours(c, d, dl, 3);
	CHECK(queue_is(c, 1, 2, 4), "watermark 3 confirms seq 3 only");
	memset(&ch, 0, sizeof(ch));
	ch.key = (uint8_t *) "m0";
	ch.klen = 2;
	ch.val = (uint8_t *) "later";
	ch.vlen = 5;
	dl = slc_delta_encode(&ch, 1, d);
	{
		slcli_entry e = {c->cur.lsn + 1, d, dl, "other", 5, 1};

		CHECK(slcli_store_apply_group(c, &e, 1, "L", e.lsn, NULL) == SLCL_OK, "group: %s", c->err);
	}
	/* seq 3's removal lost: its row is back in queue.db */
	{
		char		sql[1024],
					hex[300];

		dl = mutation(0, d);	/* m0 = value-0 */
		slcli_hex(d, dl, hex);
		snprintf(sql, sizeof(sql), "INSERT INTO pending SELECT 3, 3, part_bytes, part_changes, queued, X'%s', 0 "
				 "FROM pending WHERE seq = 4", hex);
		sql_on(dir, SLCLI_QUEUE_NAME, sql);
	}
	r = slcl_client_reader(c);
	CHECK(r != NULL && slcl_reader_get_rebased(r, (uint8_t *) "m0", 2, &found, &v, &vl) == SLCL_OK && found &&
		  vl == 5 && memcmp(v, "later", 5) == 0, "a queue row at or below the watermark is skipped by readers");
	CHECK(queue_is(c, 1, 2, 4), "and by the queue's list");
	slcl_close(c);
	c = open_w(dir, NULL, 0);
	CHECK(queue_is(c, 1, 2, 4) && sql_int(dir, SLCLI_QUEUE_NAME, "SELECT count(*) FROM pending") == 2,
		  "reopened: the confirmed row is removed");
	slcl_close(c);

	/* replica.db damaged: removed and downloaded again, the queue stays */
	{
		char		p[1200];
		FILE	   *f;

		snprintf(p, sizeof(p), "%s/%s", dir, SLCLI_DB_NAME);
		f = fopen(p, "r+b");
		CHECK(f != NULL && fwrite("this is not an SQLite file, not at all, no", 1, 42, f) == 42, "damage");
		if (f)
			fclose(f);
	}
	corrupt_events = 0;
	c = open_w(dir, NULL, 0);
	CHECK(corrupt_events == 1 && !c->cur.have, "a damaged replica.db is found and dropped (%d)", corrupt_events);
	CHECK(queue_is(c, 1, 2, 4), "the queue survives a damaged replica.db, byte for byte");
	CHECK(slcl_next_seq(c) == 6, "and the next client_seq (%lld)", (long long) slcl_next_seq(c));
	base_state(c, 4);			/* the download: the server has seq 4 */
	CHECK(queue_is(c, 2, 1, 5), "the downloaded state's watermark confirms seq 4");
	slcl_close(c);

	/* a queue of an earlier version in replica.db: moved into queue.db */
	snprintf(dir, sizeof(dir), "%s/qold", root);
	c = open_w(dir, NULL, 0);
	base_state(c, -1);
	for (int i = 0; i < 2; i++)
	{
		dl = mutation(i, d);
		CHECK(slcl_submit(c, d, dl, NULL) == SLCL_OK, "submit");
	}
	slcl_close(c);
	{
		char		sql[2600];

		snprintf(sql, sizeof(sql), "ATTACH DATABASE '%s/%s' AS q; INSERT INTO pending SELECT * FROM q.pending; "
				 "UPDATE writer SET next_seq = 7", dir, SLCLI_QUEUE_NAME);
		sql_on(dir, SLCLI_DB_NAME, sql);
	}
	run("rm -f '%s'/queue.db*; true '%s'", dir);
	CHECK(slcl_reader_open(dir, "wdoc", &r) == SLCL_OK, "reader of the old layout: %s", slcl_open_error());
	CHECK(slcl_reader_get_rebased(r, (uint8_t *) "m1", 2, &found, &v, &vl) == SLCL_OK && found &&
		  vl == 7 && memcmp(v, "value-7", 7) == 0, "sees the queue in replica.db");
	slcl_reader_close(r);
	moved_events = 0;
	c = open_w(dir, NULL, 0);
	CHECK(moved_events == 1 && queue_is(c, 0, 2, 1), "the old queue moves into queue.db (%d)", moved_events);
	CHECK(slcl_next_seq(c) == 7, "with its next client_seq (%lld)", (long long) slcl_next_seq(c));
	CHECK(sql_int(dir, SLCLI_DB_NAME, "SELECT count(*) FROM pending") == 0, "replica.db's queue is empty");
	slcl_close(c);
	moved_events = 0;
	c = open_w(dir, NULL, 0);
	CHECK(moved_events == 0 && queue_is(c, 0, 2, 1), "once (%d)", moved_events);
	slcl_close(c);
	printf("queue.db: a damaged replica.db keeps the queue, an old queue moves over, confirmed rows are skipped\n");
}

static uint8_t *
read_file(const char *dir, const char *name, size_t *len)
{
	char		p[1200];
	FILE	   *f;
	uint8_t    *b;
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "rb");
	if (f == NULL || fstat(fileno(f), &st) != 0)
		exit(1);
	b = malloc((size_t) st.st_size + 1);
	*len = fread(b, 1, (size_t) st.st_size, f);
	fclose(f);
	return b;
}

static void
write_file(const char *dir, const char *name, const uint8_t *b, size_t len)
{
	char		p[1200];
	FILE	   *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "wb");
	if (f == NULL || fwrite(b, 1, len, f) != len || fclose(f) != 0)
		exit(1);
}

static void
test_wal_cuts(void)
{
	char		dir[1100],
				work[1100];
	uint8_t    *wal,
			   *db,
			   *rdb,
			   *rwal;
	size_t		wlen,
				dblen,
				rdblen,
				rwlen,
				ends[4096];
	int			nends = 0,
				last = -1,
				tested = 0,
				back = 0;
	uint32_t	psz;
	pid_t		pid;
	int			st;

	snprintf(dir, sizeof(dir), "%s/walq", root);
	snprintf(work, sizeof(work), "%s/walq-cut", root);
	pid = fork();
	if (pid == 0)
	{
		slcl_client *c = open_w(dir, NULL, 0);
		uint8_t		d[128];

		for (int i = 0; i < NQ; i++)
		{
			size_t		dl = mutation(i, d);

			if (slcl_submit(c, d, dl, NULL) != SLCL_OK)
				_exit(2);
		}
		raise(SIGKILL);			/* no close: no checkpoint, the WAL stays */
	}
	waitpid(pid, &st, 0);
	CHECK(WIFSIGNALED(st), "the queueing child was killed");
	wal = read_file(dir, SLCLI_QUEUE_NAME "-wal", &wlen);
	db = read_file(dir, SLCLI_QUEUE_NAME, &dblen);
	rdb = read_file(dir, SLCLI_DB_NAME, &rdblen);
	rwal = read_file(dir, SLCLI_DB_NAME "-wal", &rwlen);
	psz = wlen >= 32 ? ((uint32_t) wal[8] << 24 | (uint32_t) wal[9] << 16 | (uint32_t) wal[10] << 8 | wal[11]) : 0;
	for (size_t off = 32; psz && off + 24 + psz <= wlen && nends < 4096; off += 24 + psz)
		if (wal[off + 4] | wal[off + 5] | wal[off + 6] | wal[off + 7])
			ends[nends++] = off + 24 + psz;
	CHECK(nends >= NQ, "the WAL holds the %d queue commits (%d)", NQ, nends);
	run("rm -rf '%s'; mkdir -p '%s'", work);
	for (size_t cut = 0; cut <= wlen; cut++)
	{
		int			near = cut % 509 == 0 || cut == wlen;
		slcl_client *c;
		qlist		q;
		int			prefix = 1;

		for (int i = 0; i < nends && !near; i++)
			near = cut + 1 >= ends[i] && cut <= ends[i] + 1;
		if (!near)
			continue;
		run("rm -f '%s'/replica.db-shm '%s'/lock", work);
		run("rm -f '%s'/queue.db-shm; true '%s'", work);
		write_file(work, SLCLI_DB_NAME, rdb, rdblen);
		write_file(work, SLCLI_DB_NAME "-wal", rwal, rwlen);
		write_file(work, SLCLI_QUEUE_NAME, db, dblen);
		write_file(work, SLCLI_QUEUE_NAME "-wal", wal, cut);
		write_file(work, "client_id", (const uint8_t *) "me\n", 3);
		c = open_w(work, NULL, 0);
		list_queue(c, &q);
		for (int i = 0; i < q.n; i++)
		{
			uint8_t		d[128];
			size_t		dl = mutation(i, d);

			if (q.seq[i] != i + 1 || q.dlen[i] != dl || memcmp(q.delta[i], d, dl) != 0 || q.state[i][0])
				prefix = 0;
		}
		CHECK(prefix, "WAL cut at %zu: the queue (%d) is a prefix of what was queued", cut, q.n);
		CHECK(slcl_next_seq(c) == q.n + 1, "WAL cut at %zu: next seq %lld after %d queued", cut,
			  (long long) slcl_next_seq(c), q.n);
		if (q.n < last)
			back++;
		if (q.n > last)
			last = q.n;
		slcl_close(c);
		tested++;
	}
	CHECK(back == 0, "the queue went back %d times as the cut grew", back);
	CHECK(last == NQ, "the whole WAL: all %d mutations (%d)", NQ, last);
	free(wal);
	free(db);
	free(rdb);
	free(rwal);
	printf("WAL cut at %d offsets (%d commits): the queue is always a prefix, never torn\n", tested, nends);
}

int
main(int argc, char **argv)
{
	if (argc != 2)
	{
		fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
		return 2;
	}
	if (argv[1][0] == '/')
		snprintf(root, sizeof(root), "%s", argv[1]);
	else
	{
		char		cwd[512];

		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return 1;
		snprintf(root, sizeof(root), "%s/%s", cwd, argv[1]);
	}
	run("rm -rf '%s'; mkdir -p '%s'", root);
	test_kill_after_queue();
	test_batch();
	test_seq_and_bad();
	test_retired();
	test_rebased();
	test_queue_file();
	test_wal_cuts();
	printf("%d checks, %d failures\n", checks, failures);
	if (failures == 0)
		run("rm -rf '%s'; true '%s'", root);
	return failures ? 1 : 0;
}
