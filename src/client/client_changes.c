/*
 * client_changes.c
 *
 * The change feed (options.changes): the keys each atomic group changed,
 * delivered as SLCL_EV_CHANGES events once the transaction that applied
 * them is committed, in LSN order; and the difference between two
 * generations of items (old state, downloaded state), delivered in chunks
 * after a download is installed.
 *
 * Owns: the queue of changed keys of the open transaction (c->chg, its
 * record layout is in client_int.h), slcli_changes_emit, and
 * slcli_changes_diff with its ordered merge of two generations.
 * Must never: deliver a change before its transaction is committed,
 * deliver one that was rolled back, or hold more than one transaction's
 * keys (or one chunk of a diff) in memory.
 */
#define _GNU_SOURCE
#include "client_int.h"

/* keys per event of a download's difference */
#define DIFF_CHUNK 1000

void
slcli_changes_reset(slcl_client *c)
{
	c->chg.len = 0;
	c->chg_open = 0;
}

int
slcli_changes_key(slcl_client *c, uint8_t ns, const uint8_t *key, size_t klen, int deleted)
{
	c->chg_open = 1;
	return buf_u8(&c->chg, 'K') || buf_u8(&c->chg, ns) || buf_u8(&c->chg, deleted ? 1 : 0) ||
		buf_lp(&c->chg, key ? key : (const uint8_t *) "", klen);
}

int
slcli_changes_group_end(slcl_client *c, int64_t lsn)
{
	if (!c->chg_open)
		return 0;				/* a group that changed nothing: no event */
	c->chg_open = 0;
	return buf_u8(&c->chg, 'G') || buf_u64(&c->chg, (uint64_t) lsn);
}

/* Emit one CHANGES event for changes[0..n). */
static void
emit_group(slcl_client *c, const slcl_change *ch, size_t n, const char *log_id, int64_t lsn,
		   slcl_reason reason, int more)
{
	slcl_event	ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = SLCL_EV_CHANGES;
	ev.log_id = log_id;
	ev.lsn = lsn;
	ev.reason = reason;
	ev.changes = ch;
	ev.nchanges = n;
	ev.more = more;
	ev.total_rows = ev.total_bytes = -1;
	slcli_emit(c, &ev, "log=%s lsn=%lld keys=%zu%s", log_id, (long long) lsn, n,
			   more ? " (more follow)" : "");
}

/*
 * Deliver the committed transaction's groups, one event each.  A group
 * left open (no group end) is delivered at the committed position.
 */
void
slcli_changes_emit(slcl_client *c)
{
	size_t		off = 0;
	size_t		cap = 0;
	size_t		n = 0;
	slcl_change *arr = NULL;

	if (c->chg.len == 0 || c->opt.on_event == NULL || !c->opt.changes)
	{
		slcli_changes_reset(c);
		return;
	}
	while (off < c->chg.len)
	{
		cur			k = {c->chg.p, c->chg.len, off, 0};
		uint8_t		t = cur_u8(&k);

		if (t == 'K')
		{
			slcl_change ch;

			ch.ns = cur_u8(&k);
			ch.deleted = cur_u8(&k);
			ch.key = cur_lp(&k, &ch.klen);
			if (n == cap)
			{
				size_t		nc = cap ? cap * 2 : 64;
				slcl_change *na = realloc(arr, nc * sizeof(*arr));

				if (na == NULL)
					break;		/* out of memory: the rest is lost */
				arr = na;
				cap = nc;
			}
			arr[n++] = ch;
		}
		else
		{
			int64_t		lsn = (int64_t) cur_u64(&k);

			emit_group(c, arr, n, c->committed.log_id, lsn, SLCL_DL_NONE, 0);
			n = 0;
		}
		if (k.bad)
			break;
		off = k.off;
	}
	if (n > 0)
		emit_group(c, arr, n, c->committed.log_id, c->committed.lsn, SLCL_DL_NONE, 0);
	free(arr);
	slcli_changes_reset(c);
}

/* A chunk of a difference being built: keys copied out of the rows. */
typedef struct diff_chunk
{
	buf			keys;
	slcl_change ch[DIFF_CHUNK];
	size_t		off[DIFF_CHUNK];
	size_t		n;
} diff_chunk;

static int
chunk_add(diff_chunk *d, uint8_t ns, const void *key, size_t klen, int deleted)
{
	d->off[d->n] = d->keys.len;
	d->ch[d->n].ns = ns;
	d->ch[d->n].deleted = deleted;
	d->ch[d->n].klen = klen;
	if (buf_put(&d->keys, key ? key : "", klen) != 0)
		return -1;
	d->n++;
	return 0;
}

static void
chunk_flush(slcl_client *c, diff_chunk *d, int more)
{
	if (d->n == 0 && more)
		return;
	for (size_t i = 0; i < d->n; i++)
		d->ch[i].key = d->keys.p ? d->keys.p + d->off[i] : (const uint8_t *) "";
	emit_group(c, d->ch, d->n, c->committed.log_id, c->committed.lsn, c->dl_reason, more);
	d->n = 0;
	d->keys.len = 0;
}

/* Compare (ns, key) of two rows: <0, 0, >0. */
static int
row_cmp(sqlite3_stmt *a, sqlite3_stmt *b)
{
	int			na = sqlite3_column_int(a, 0),
				nb = sqlite3_column_int(b, 0);
	size_t		la = (size_t) sqlite3_column_bytes(a, 1),
				lb = (size_t) sqlite3_column_bytes(b, 1);
	int			r;

	if (na != nb)
		return na < nb ? -1 : 1;
	r = memcmp(sqlite3_column_blob(a, 1) ? sqlite3_column_blob(a, 1) : "",
			   sqlite3_column_blob(b, 1) ? sqlite3_column_blob(b, 1) : "", la < lb ? la : lb);
	if (r != 0)
		return r;
	return la == lb ? 0 : (la < lb ? -1 : 1);
}

/*
 * Deliver the difference between generation old_gen (-1: none, every key
 * of the new one is new) and new_gen, by an ordered merge of the two
 * (items compared by their stored item hashes), DIFF_CHUNK keys per
 * event.  Called after the new generation is live.
 */
slcl_rc
slcli_changes_diff(slcl_client *c, int64_t old_gen, int64_t new_gen)
{
	static const char *sql = "SELECT ns, key, hlo, hhi FROM item WHERE gen = ?1 ORDER BY ns, key";
	sqlite3_stmt *o = NULL,
			   *n = NULL;
	diff_chunk *d;
	int			ro,
				rn;
	slcl_rc		r = SLCL_OK;

	if (!c->opt.changes || c->opt.on_event == NULL)
		return SLCL_OK;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
	o = slcli_store_prepare(c, sql);
	n = slcli_store_prepare(c, sql);
	if (o == NULL || n == NULL)
	{
		r = SLCL_ERR_IO;
		goto out;
	}
	sqlite3_bind_int64(o, 1, old_gen);
	sqlite3_bind_int64(n, 1, new_gen);
	ro = old_gen >= 0 ? sqlite3_step(o) : SQLITE_DONE;
	rn = sqlite3_step(n);
	while (ro == SQLITE_ROW || rn == SQLITE_ROW)
	{
		int			cmp;
		int			fail;

		if (ro == SQLITE_ROW && rn == SQLITE_ROW)
			cmp = row_cmp(o, n);
		else
			cmp = ro == SQLITE_ROW ? -1 : 1;
		if (cmp < 0)
			fail = chunk_add(d, (uint8_t) sqlite3_column_int(o, 0), sqlite3_column_blob(o, 1),
							 (size_t) sqlite3_column_bytes(o, 1), 1);
		else if (cmp > 0 || sqlite3_column_int64(o, 2) != sqlite3_column_int64(n, 2) ||
				 sqlite3_column_int64(o, 3) != sqlite3_column_int64(n, 3))
			fail = chunk_add(d, (uint8_t) sqlite3_column_int(n, 0), sqlite3_column_blob(n, 1),
							 (size_t) sqlite3_column_bytes(n, 1), 0);
		else
			fail = 0;
		if (fail)
		{
			r = slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
			goto out;
		}
		if (d->n == DIFF_CHUNK)
			chunk_flush(c, d, 1);
		if (cmp <= 0)
			ro = sqlite3_step(o);
		if (cmp >= 0)
			rn = sqlite3_step(n);
	}
	if (ro != SQLITE_DONE || rn != SQLITE_DONE)
	{
		r = slcli_db_fail(c, "could not compare the old state with the new one");
		goto out;
	}
	chunk_flush(c, d, 0);
out:
	sqlite3_finalize(o);
	sqlite3_finalize(n);
	free(d->keys.p);
	free(d);
	return r;
}
