/*
 * synclog-follow - follow a synclog document into a local replica.
 *
 *   synclog-follow --dsn DSN --doc DOC --dir DIR [options]
 *   synclog-follow --doc DOC --dir DIR --export FILE
 *
 * Keeps DIR a durable replica of DOC (see synclog_client.h): syncs, then
 * waits for a NOTIFY on the document's channel (or --poll milliseconds, the
 * fallback) and syncs again, until SIGINT/SIGTERM.  Prints one line per
 * event: each marker check, each switch-over by marker, each download
 * (with a progress bar on a terminal), each repair of the local files,
 * and with --changes each changed key.
 *
 * --export FILE (- for standard output) writes the replica's state, read
 * from one consistent snapshot, ordered by key, and exits; it needs no
 * server and works while a follower runs in DIR.  The format, one item per
 * line, fields separated by one TAB, bytes in lowercase hex (an empty key
 * or value is an empty field):
 *   # synclog-export 1 doc=HEX log=LOG lsn=N chain=HEX hash=HEX
 *   D <TAB> key <TAB> value            data items, in key order (bytes
 *                                      compared as by memcmp, a prefix first)
 *   C <TAB> client id <TAB> client_seq <TAB> lsn
 *                                      watermarks, in client id order
 *   # end items=N clients=M
 * The hash is the running hash of that position (PROTOCOL.md section 11);
 * the items recompute to it.  A file without the end line is cut short.
 *
 * Options:
 *   --once              sync until caught up, then exit
 *   --verify            after syncing (with --once) or on exit: recompute the
 *                       local hash from scratch, compare it with the running
 *                       hash, and rebuild the server's state at the replica's
 *                       position to compare hash and items; exit 3 if any
 *                       check fails
 *   --client-id ID      id for synclog.ack (default: kept in DIR/client_id)
 *   --no-ack            never call synclog.ack
 *   --quiet             print only errors, the paths chosen, verification and
 *                       the stats line
 *   --poll MS           longest wait between syncs (default 5000)
 *   --min-interval MS   at most one sync per MS after a notification (0)
 *   --ack-interval MS   see slcl_options.ack_interval_ms (default 10000)
 *   --page-entries N, --page-bytes N, --snapshot-rows N
 *   --changes           print the keys each group changed (and a download's
 *                       difference): "change: log=L lsn=N set|del KEYHEX"
 *                       for data keys, "wm" instead of set/del for a
 *                       watermark (KEYHEX is then the client id)
 *   --no-open-check     do not read every item on open (the position's
 *                       checksum is still checked)
 *   --page-file PATH    the document is a page store (README): keep PATH a
 *                       copy of the SQLite database it replicates, valid
 *                       after every commit (SQLite's locks and rollback
 *                       journal; a crash leaves the previous file)
 *   --paths LIST        the paths it may choose, comma-separated, of
 *                       catch_up and range_repair (replay and download are
 *                       always allowed); default: all (README "Catching up")
 *   --progress / --no-progress   force the download progress bar on or off
 *   --debug-delay POINT:MS       testing: sleep MS at POINT (once)
 *   --debug-tamper      testing: silently alter the local state, then exit
 *   --debug-damage      testing: flip a bit of a stored value, then exit
 *   --max-runtime S     exit after S seconds (tests)
 *
 * On exit it prints one machine-readable line (counters over the life of
 * the replica, kept in it):
 *   stats: doc=D client=C switches_marker=N markers_mismatch=N downloads=N
 *          downloads_initial=N downloads_resumed=N download_restarts=N
 *          entries=N bytes_log=N bytes_marker=N bytes_snapshot=N acks=N
 *          repairs=N retired_rows=N bytes_downloaded=N
 *          replays=N replay_ms=N catch_ups=N catch_up_bytes=N catch_up_rows=N
 *          catch_up_ms=N range_repairs=N range_repair_bytes=N
 *          range_repair_buckets=N range_repair_rows=N range_repair_ms=N
 *          download_ms=N cost_bytes=N last_path=P log=L lsn=N hash=H
 * (per path: replay's bytes are bytes_log, a download's bytes_snapshot;
 * see slcl_stats).  Every choice of a path prints a line
 *   path: path=replay|catch_up|range_repair|download reason=R [figures]
 * and a catch-up or range repair prints "staged:" lines as it goes.
 *
 * Writing (the queue of local mutations, see synclog_client.h):
 *   --submit FILE       queue the delta in FILE (- for standard input), in
 *                       the binary encoding of PROTOCOL.md section 10, send
 *                       it, and sync until the queue is empty (confirmed or
 *                       refused), then exit; --verify checks afterwards
 *   --submit-text FILE  the same for text (- for standard input): one
 *                       mutation per line, changes separated by blanks,
 *                       bytes in hex: KEY=VALUE sets, KEY alone deletes
 *                       (KEY= sets the empty value); a line may start with
 *                       "@SEQ " to give its client_seq: a line whose SEQ is
 *                       below the next free client_seq was queued before
 *                       and is skipped, so the same file can be run again
 *                       after a crash; lines starting with # are ignored
 *   --pending           list the queue and the failed mutations, offline:
 *                       "pending seq=N last_seq=M bytes=B"
 *                       "failed seq=N last_seq=M sqlstate=S message=..."
 *   --part-bytes N      split mutations larger than N bytes (default: the
 *                       server's synclog.max_delta_size)
 *   Events: "queued:", "submitted:", "confirmed:", "refused:", "retired:".
 *
 * Exit status: 0 ok, 1 error, 2 usage, 3 verification failed, 4 the
 * document does not exist, 5 a mutation was refused (or SL007).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "synclog_client.h"

static volatile sig_atomic_t stop_flag;

static int	quiet;
static int	show_changes;
static int	progress = -1;		/* -1: on a terminal */
static double dl_started;
static int	bar_shown;

static void
on_signal(int sig)
{
	(void) sig;
	stop_flag = 1;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
hexout(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++)
	{
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static void
draw_bar(const slcl_event *ev)
{
	char		bar[41];
	double		frac = -1;
	int			w = 40;

	if (ev->total_rows > 0)
		frac = (double) ev->rows / (double) ev->total_rows;
	if (frac > 1)
		frac = 1;
	for (int i = 0; i < w; i++)
		bar[i] = (frac >= 0 && i < (int) (frac * w)) ? '#' : '.';
	bar[w] = '\0';
	if (frac >= 0)
		fprintf(stderr, "\r  download [%s] %5.1f%%  %lld/%lld keys  %.1f MB ", bar, frac * 100,
				(long long) ev->rows, (long long) ev->total_rows, ev->bytes / 1e6);
	else
		fprintf(stderr, "\r  download %lld keys  %.1f MB ", (long long) ev->rows, ev->bytes / 1e6);
	fflush(stderr);
	bar_shown = 1;
}

static void
end_bar(void)
{
	if (bar_shown)
	{
		fputc('\n', stderr);
		bar_shown = 0;
	}
}

static void
on_event(void *arg, const slcl_event *ev)
{
	const char *what = NULL;

	(void) arg;
	switch (ev->type)
	{
		case SLCL_EV_OPEN:
			what = "open";
			break;
		case SLCL_EV_REPAIR:
			what = "repair";
			break;
		case SLCL_EV_CORRUPT:
			what = "corrupt";
			break;
		case SLCL_EV_MARKER:
			what = "marker";
			break;
		case SLCL_EV_SWITCH:
			what = "switch";
			break;
		case SLCL_EV_DOWNLOAD_START:
			what = "download-start";
			dl_started = now_s();
			break;
		case SLCL_EV_DOWNLOAD_RESUME:
			what = "download-resume";
			dl_started = now_s();
			break;
		case SLCL_EV_DOWNLOAD_PROGRESS:
			/* a bar on a terminal, once a download takes a while */
			if (!quiet && progress != 0 &&
				(progress == 1 || now_s() - dl_started > 0.5))
				draw_bar(ev);
			return;
		case SLCL_EV_DOWNLOAD_RESTART:
			what = "download-restart";
			break;
		case SLCL_EV_DOWNLOAD_DONE:
			end_bar();
			what = "download-done";
			break;
		case SLCL_EV_CHECKPOINT:
			what = "checkpoint";
			break;
		case SLCL_EV_CONNECT:
			what = "connect";
			break;
		case SLCL_EV_WARNING:
			what = "warning";
			break;
		case SLCL_EV_DEBUG:
			what = "debug";
			break;
		case SLCL_EV_QUEUED:
			what = "queued";
			break;
		case SLCL_EV_SUBMITTED:
			what = "submitted";
			break;
		case SLCL_EV_CONFIRMED:
			what = "confirmed";
			break;
		case SLCL_EV_REFUSED:
			what = "refused";
			break;
		case SLCL_EV_RETIRED:
			what = "retired";
			break;
		case SLCL_EV_PATH:
			what = "path";
			break;
		case SLCL_EV_STAGED:
			what = "staged";
			break;
		case SLCL_EV_CHANGES:
			if (show_changes)
			{
				end_bar();
				for (size_t i = 0; i < ev->nchanges; i++)
				{
					const slcl_change *ch = &ev->changes[i];
					char	   *hx = malloc(2 * ch->klen + 1);

					if (hx == NULL)
						continue;
					hexout(ch->key, ch->klen, hx);
					printf("change: log=%s lsn=%lld %s %s\n", ev->log_id, (long long) ev->lsn,
						   ch->ns == SLC_NS_CLIENT ? "wm" : ch->deleted ? "del" : "set", hx);
					free(hx);
				}
				fflush(stdout);
			}
			return;
	}
	if (quiet && ev->type != SLCL_EV_WARNING && ev->type != SLCL_EV_CORRUPT &&
		ev->type != SLCL_EV_QUEUED && ev->type != SLCL_EV_REFUSED &&
		ev->type != SLCL_EV_RETIRED && ev->type != SLCL_EV_PATH &&
		ev->type != SLCL_EV_DEBUG && !(ev->type == SLCL_EV_MARKER && !ev->ok) &&
		!(ev->type == SLCL_EV_DOWNLOAD_DONE && !ev->ok))
		return;
	end_bar();
	printf("%s: %s\n", what, ev->message);
	fflush(stdout);
}

static void
print_stats(slcl_client *c, const char *doc)
{
	const slcl_stats *s = slcl_get_stats(c);
	const char *log_id = "-";
	int64_t		lsn = -1;
	uint8_t		h[SLC_HASH_LEN];
	char		hx[2 * SLC_HASH_LEN + 1] = "-";

	if (slcl_position(c, &log_id, &lsn))
	{
		slcl_hash(c, h);
		hexout(h, SLC_HASH_LEN, hx);
	}
	printf("stats: doc=%s client=%s switches_marker=%lld markers_mismatch=%lld downloads=%lld "
		   "downloads_initial=%lld downloads_resumed=%lld download_restarts=%lld entries=%lld "
		   "bytes_log=%lld bytes_marker=%lld bytes_snapshot=%lld acks=%lld repairs=%lld "
		   "retired_rows=%lld bytes_downloaded=%lld "
		   "replays=%lld replay_ms=%lld catch_ups=%lld catch_up_bytes=%lld catch_up_rows=%lld "
		   "catch_up_ms=%lld range_repairs=%lld range_repair_bytes=%lld range_repair_buckets=%lld "
		   "range_repair_rows=%lld range_repair_ms=%lld download_ms=%lld cost_bytes=%lld "
		   "last_path=%s log=%s lsn=%lld hash=%s\n",
		   doc, slcl_client_id(c), (long long) s->switches_marker, (long long) s->markers_mismatch,
		   (long long) s->downloads, (long long) s->downloads_initial,
		   (long long) s->downloads_resumed, (long long) s->download_restarts,
		   (long long) s->entries_applied, (long long) s->bytes_log, (long long) s->bytes_marker,
		   (long long) s->bytes_snapshot, (long long) s->acks, (long long) s->repairs,
		   (long long) s->retired_rows, (long long) s->bytes_downloaded,
		   (long long) s->replays, (long long) s->replay_ms, (long long) s->catch_ups,
		   (long long) s->catch_up_bytes, (long long) s->catch_up_rows, (long long) s->catch_up_ms,
		   (long long) s->range_repairs, (long long) s->range_repair_bytes,
		   (long long) s->range_repair_buckets, (long long) s->range_repair_rows,
		   (long long) s->range_repair_ms, (long long) s->download_ms, (long long) s->cost_bytes,
		   slcl_path_name((slcl_path) s->last_path), log_id, (long long) lsn, hx);
	fflush(stdout);
}

static int
run_verify(slcl_client *c)
{
	slcl_verify_result r;
	slcl_rc		rc = slcl_verify(c, &r);
	const char *log_id = "-";
	int64_t		lsn = -1;
	int			ok;

	if (rc != SLCL_OK)
	{
		printf("verify: FAILED: %s\n", slcl_errmsg(c));
		fflush(stdout);
		return 3;
	}
	slcl_position(c, &log_id, &lsn);
	printf("verify: local rehash %s running hash\n", r.local_ok ? "==" : "!=");
	if (r.at_current_base)
		printf("verify: at the base of the current log %s (lsn %lld): hash %s its snapshot_hash\n",
			   log_id, (long long) lsn, r.current_hash_ok ? "==" : "!=");
	else
		printf("verify: position log %s lsn %lld (not the base of the current log)\n",
			   log_id, (long long) lsn);
	printf("verify: server %s: %s\n",
		   !r.server_checked ? "not compared" : r.server_ok ? "equal" : "DIFFERENT", r.detail);
	ok = r.local_ok && (!r.at_current_base || r.current_hash_ok) &&
		(!r.server_checked || r.server_ok);
	printf("verify: %s\n", ok ? "ok" : "FAILED");
	fflush(stdout);
	return ok ? 0 : 3;
}

/* --export: one snapshot of the replica, in key order (format above). */
typedef struct export_ctx
{
	FILE	   *f;
	char	   *hx;
	size_t		hxcap;
	int64_t		n;
	int			err;
} export_ctx;

static const char *
hex_of(export_ctx *x, const uint8_t *p, size_t n)
{
	if (2 * n + 1 > x->hxcap)
	{
		char	   *nb = realloc(x->hx, 2 * n + 1);

		if (nb == NULL)
			return NULL;
		x->hx = nb;
		x->hxcap = 2 * n + 1;
	}
	hexout(p, n, x->hx);
	return x->hx;
}

static int
export_data(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	export_ctx *x = arg;
	const char *h = hex_of(x, key, klen);

	if (h == NULL || fprintf(x->f, "D\t%s\t", h) < 0 || (h = hex_of(x, val, vlen)) == NULL ||
		fprintf(x->f, "%s\n", h) < 0)
	{
		x->err = 1;
		return 1;
	}
	x->n++;
	return 0;
}

static int
export_client(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	export_ctx *x = arg;
	const char *h = hex_of(x, key, klen);
	int64_t		seq,
				lsn;

	if (vlen != SLC_WATERMARK_LEN || h == NULL)
	{
		x->err = 1;
		return 1;
	}
	slc_watermark_decode(val, &seq, &lsn);
	if (fprintf(x->f, "C\t%s\t%lld\t%lld\n", h, (long long) seq, (long long) lsn) < 0)
	{
		x->err = 1;
		return 1;
	}
	x->n++;
	return 0;
}

static int
run_export(const char *dir, const char *doc, const char *out)
{
	slcl_reader *r;
	slcl_rc		rc;
	const char *log_id;
	int64_t		lsn,
				items;
	uint8_t		chain[SLCL_CHAIN_LEN],
				hash[SLC_HASH_LEN];
	char		chx[2 * SLCL_CHAIN_LEN + 1],
				hhx[2 * SLC_HASH_LEN + 1];
	export_ctx	x;
	int			status = 0;

	memset(&x, 0, sizeof(x));
	rc = slcl_reader_open(dir, doc, &r);
	if (rc != SLCL_OK)
	{
		fprintf(stderr, "synclog-follow: %s\n", slcl_open_error());
		return 1;
	}
	rc = slcl_reader_begin(r);
	if (rc == SLCL_OK)
		rc = slcl_reader_position(r, &log_id, &lsn, chain, hash);
	if (rc != SLCL_OK)
	{
		fprintf(stderr, "synclog-follow: %s\n", slcl_reader_errmsg(r));
		slcl_reader_close(r);
		return 1;
	}
	x.f = strcmp(out, "-") == 0 ? stdout : fopen(out, "w");
	if (x.f == NULL)
	{
		fprintf(stderr, "synclog-follow: could not create \"%s\": %s\n", out, strerror(errno));
		slcl_reader_close(r);
		return 1;
	}
	hexout(chain, SLCL_CHAIN_LEN, chx);
	hexout(hash, SLC_HASH_LEN, hhx);
	fprintf(x.f, "# synclog-export 1 doc=%s log=%s lsn=%lld chain=%s hash=%s\n",
			hex_of(&x, (const uint8_t *) doc, strlen(doc)), log_id, (long long) lsn, chx, hhx);
	rc = slcl_reader_scan(r, SLC_NS_DATA, NULL, 0, NULL, 0, export_data, &x);
	items = x.n;
	x.n = 0;
	if (rc == SLCL_OK && !x.err)
		rc = slcl_reader_scan(r, SLC_NS_CLIENT, NULL, 0, NULL, 0, export_client, &x);
	if (rc != SLCL_OK)
	{
		fprintf(stderr, "synclog-follow: %s\n", slcl_reader_errmsg(r));
		status = 1;
	}
	else if (x.err || fprintf(x.f, "# end items=%lld clients=%lld\n", (long long) items, (long long) x.n) < 0 ||
			 fflush(x.f) != 0)
	{
		fprintf(stderr, "synclog-follow: could not write \"%s\": %s\n", out, strerror(errno));
		status = 1;
	}
	if (x.f != stdout && fclose(x.f) != 0 && status == 0)
	{
		fprintf(stderr, "synclog-follow: could not write \"%s\": %s\n", out, strerror(errno));
		status = 1;
	}
	slcl_reader_end(r);
	slcl_reader_close(r);
	free(x.hx);
	return status;
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Hex (even length) into out (room for len/2); -1 if it is not hex. */
static long
unhex(const char *s, size_t len, uint8_t *out)
{
	if (len % 2)
		return -1;
	for (size_t i = 0; i < len; i += 2)
	{
		int			a = hexval(s[i]),
					b = hexval(s[i + 1]);

		if (a < 0 || b < 0)
			return -1;
		out[i / 2] = (uint8_t) (a * 16 + b);
	}
	return (long) (len / 2);
}

/* Read a whole file (- : standard input). */
static uint8_t *
read_all(const char *path, size_t *len)
{
	FILE	   *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	uint8_t    *b = NULL;
	size_t		cap = 0;

	*len = 0;
	if (f == NULL)
		return NULL;
	for (;;)
	{
		size_t		n;

		if (*len + 65536 + 1 > cap)
		{
			uint8_t    *q = realloc(b, cap ? cap * 2 : 131072);

			if (q == NULL)
			{
				free(b);
				b = NULL;
				break;
			}
			b = q;
			cap = cap ? cap * 2 : 131072;
		}
		n = fread(b + *len, 1, 65536, f);
		*len += n;
		if (n == 0)
			break;
	}
	if (b && ferror(f))
	{
		free(b);
		b = NULL;
	}
	if (f != stdin)
		fclose(f);
	if (b)
		b[*len] = '\0';
	return b;
}

/* Encode one text line (KEY=VALUE and KEY tokens) as a delta. */
static uint8_t *
text_delta(char *line, size_t *dlen, const char **why)
{
	size_t		ll = strlen(line);
	uint8_t    *d = malloc(5 + ll * 2 + 16);
	size_t		off = 5;
	uint32_t	n = 0;
	char	   *save = NULL;

	*why = "out of memory";
	if (d == NULL)
		return NULL;
	for (char *tok = strtok_r(line, " \t\r", &save); tok; tok = strtok_r(NULL, " \t\r", &save))
	{
		char	   *eq = strchr(tok, '=');
		size_t		kl = eq ? (size_t) (eq - tok) : strlen(tok);
		long		k,
					v;

		k = unhex(tok, kl, d + off + 4);
		if (k < 0)
		{
			*why = "a key is not hex";
			free(d);
			return NULL;
		}
		for (int i = 0; i < 4; i++)
			d[off + i] = (uint8_t) ((unsigned long) k >> (8 * i));
		off += 4 + (size_t) k;
		if (eq)
		{
			v = unhex(eq + 1, strlen(eq + 1), d + off + 4);
			if (v < 0)
			{
				*why = "a value is not hex";
				free(d);
				return NULL;
			}
		}
		else
			v = -1;
		for (int i = 0; i < 4; i++)
			d[off + i] = (uint8_t) ((unsigned long) (v < 0 ? 0xffffffffUL : (unsigned long) v) >> (8 * i));
		off += 4 + (v < 0 ? 0 : (size_t) v);
		n++;
	}
	d[0] = 1;
	for (int i = 0; i < 4; i++)
		d[1 + i] = (uint8_t) (n >> (8 * i));
	*dlen = off;
	return d;
}

static int
print_mutation(void *arg, const slcl_mutation *m)
{
	(void) arg;
	if (!m->failed)
		printf("pending seq=%lld last_seq=%lld bytes=%zu\n", (long long) m->seq,
			   (long long) m->last_seq, m->dlen);
	else
		printf("failed seq=%lld last_seq=%lld sqlstate=%s message=%s\n", (long long) m->seq,
			   (long long) m->last_seq, m->sqlstate ? m->sqlstate : "", m->message ? m->message : "");
	return 0;
}

/*
 * Queue the mutations of a file (binary: one delta; text: one per line);
 * 0 ok, 5 one was refused, 1 another error.
 */
static int
run_submit(slcl_client *c, const char *path, int text)
{
	size_t		len;
	uint8_t    *all = read_all(path, &len);
	int			status = 0;

	if (all == NULL)
	{
		fprintf(stderr, "synclog-follow: could not read \"%s\": %s\n", path, strerror(errno));
		return 1;
	}
	if (!text)
	{
		slcl_rc		rc = slcl_submit(c, all, len, NULL);

		if (rc != SLCL_OK)
		{
			fprintf(stderr, "synclog-follow: %s\n", slcl_errmsg(c));
			status = rc == SLCL_ERR_REFUSED || rc == SLCL_ERR_RETIRED ? 5 : 1;
		}
		free(all);
		return status;
	}
	for (char *line = (char *) all, *next; line && *line && status != 1 && !stop_flag; line = next)
	{
		long long	seq = -1;
		size_t		dlen;
		uint8_t    *d;
		const char *why;
		slcl_rc		rc;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (line[0] == '#' || line[strspn(line, " \t\r")] == '\0')
			continue;
		if (line[0] == '@')
		{
			char	   *end;

			seq = strtoll(line + 1, &end, 10);
			if (end == line + 1 || seq < 1)
			{
				fprintf(stderr, "synclog-follow: bad client_seq in line \"%.40s\"\n", line);
				status = 1;
				break;
			}
			line = end;
			if (seq < slcl_next_seq(c))
				continue;		/* queued by an earlier run */
		}
		d = text_delta(line, &dlen, &why);
		if (d == NULL)
		{
			fprintf(stderr, "synclog-follow: %s in line \"%.40s\"\n", why, line);
			status = 1;
			break;
		}
		rc = seq > 0 ? slcl_submit_seq(c, d, dlen, seq) : slcl_submit(c, d, dlen, NULL);
		free(d);
		if (rc == SLCL_ERR_REFUSED || rc == SLCL_ERR_RETIRED)
		{
			fprintf(stderr, "synclog-follow: %s\n", slcl_errmsg(c));
			status = 5;
		}
		else if (rc != SLCL_OK)
		{
			fprintf(stderr, "synclog-follow: %s\n", slcl_errmsg(c));
			status = 1;
		}
	}
	free(all);
	return status;
}

/* --paths: a comma-separated list of path names into a mask. */
static int
parse_paths(char *list, unsigned *mask)
{
	char	   *save = NULL;

	*mask = SLCL_PATH_BIT(SLCL_PATH_REPLAY) | SLCL_PATH_BIT(SLCL_PATH_DOWNLOAD);
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
	{
		int			found = 0;

		for (slcl_path p = SLCL_PATH_REPLAY; p <= SLCL_PATH_DOWNLOAD; p++)
			if (strcmp(t, slcl_path_name(p)) == 0)
			{
				*mask |= SLCL_PATH_BIT(p);
				found = 1;
			}
		if (!found)
			return -1;
	}
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
			"usage: synclog-follow --dsn DSN --doc DOC --dir DIR [--once] [--verify]\n"
			"                      [--client-id ID] [--no-ack] [--quiet] [--poll MS]\n"
			"                      [--min-interval MS] [--ack-interval MS] [--page-entries N]\n"
			"                      [--page-bytes N] [--snapshot-rows N] [--changes]\n"
			"                      [--no-open-check] [--page-file PATH] [--progress|--no-progress]\n"
			"                      [--paths catch_up,range_repair]\n"
			"                      [--max-runtime S]\n"
			"                      [--debug-delay POINT:MS] [--debug-tamper] [--debug-damage]\n"
			"       synclog-follow --dsn DSN --doc DOC --dir DIR --submit FILE|- [--part-bytes N]\n"
			"       synclog-follow --dsn DSN --doc DOC --dir DIR --submit-text FILE|- [...]\n"
			"       synclog-follow --doc DOC --dir DIR --pending\n"
			"       synclog-follow --doc DOC --dir DIR --export FILE|-\n");
}

int
main(int argc, char **argv)
{
	slcl_options o;
	slcl_client *c = NULL;
	slcl_rc		rc;
	int			once = 0,
				verify = 0,
				tamper = 0,
				damage = 0;
	const char *export_to = NULL;
	const char *submit = NULL;
	int			submit_text = 0,
				list_pending = 0;
	int			poll_ms = 5000,
				min_interval = 0;
	double		max_runtime = 0;
	double		t0 = now_s();
	double		last_sync = 0;
	int			status = 0;
	int			backoff = 100;
	int			failures = 0;
	char	   *debug_spec = NULL;
	struct sigaction sa;
	static const struct option longopts[] = {
		{"dsn", required_argument, NULL, 'd'},
		{"doc", required_argument, NULL, 'D'},
		{"dir", required_argument, NULL, 'r'},
		{"once", no_argument, NULL, '1'},
		{"verify", no_argument, NULL, 'v'},
		{"client-id", required_argument, NULL, 'c'},
		{"no-ack", no_argument, NULL, 'A'},
		{"quiet", no_argument, NULL, 'q'},
		{"poll", required_argument, NULL, 'p'},
		{"min-interval", required_argument, NULL, 'm'},
		{"ack-interval", required_argument, NULL, 'a'},
		{"page-entries", required_argument, NULL, 'e'},
		{"page-bytes", required_argument, NULL, 'b'},
		{"snapshot-rows", required_argument, NULL, 's'},
		{"changes", no_argument, NULL, 'C'},
		{"no-open-check", no_argument, NULL, 'O'},
		{"export", required_argument, NULL, 'E'},
		{"debug-damage", no_argument, NULL, 'Y'},
		{"page-file", required_argument, NULL, 'F'},
		{"progress", no_argument, NULL, 'P'},
		{"no-progress", no_argument, NULL, 'N'},
		{"max-runtime", required_argument, NULL, 'T'},
		{"debug-delay", required_argument, NULL, 'X'},
		{"debug-tamper", no_argument, NULL, 'Z'},
		{"submit", required_argument, NULL, 'S'},
		{"submit-text", required_argument, NULL, 'U'},
		{"pending", no_argument, NULL, 'L'},
		{"part-bytes", required_argument, NULL, 'B'},
		{"paths", required_argument, NULL, 'W'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	int			ch;

	slcl_options_init(&o);
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		switch (ch)
		{
			case 'd':
				o.dsn = optarg;
				break;
			case 'D':
				o.doc = optarg;
				break;
			case 'r':
				o.dir = optarg;
				break;
			case '1':
				once = 1;
				break;
			case 'v':
				verify = 1;
				break;
			case 'c':
				o.client_id = optarg;
				break;
			case 'A':
				o.ack = 0;
				break;
			case 'q':
				quiet = 1;
				break;
			case 'p':
				poll_ms = atoi(optarg);
				break;
			case 'm':
				min_interval = atoi(optarg);
				break;
			case 'a':
				o.ack_interval_ms = atoi(optarg);
				break;
			case 'e':
				o.page_entries = atoi(optarg);
				break;
			case 'b':
				o.page_bytes = atoi(optarg);
				break;
			case 's':
				o.snapshot_rows = atoi(optarg);
				break;
			case 'C':
				show_changes = 1;
				o.changes = 1;
				break;
			case 'O':
				o.open_check = 0;
				break;
			case 'E':
				export_to = optarg;
				break;
			case 'Y':
				damage = 1;
				break;
			case 'F':
				o.page_file = optarg;
				break;
			case 'P':
				progress = 1;
				break;
			case 'N':
				progress = 0;
				break;
			case 'T':
				max_runtime = atof(optarg);
				break;
			case 'X':
				debug_spec = optarg;
				break;
			case 'Z':
				tamper = 1;
				break;
			case 'S':
				submit = optarg;
				submit_text = 0;
				break;
			case 'U':
				submit = optarg;
				submit_text = 1;
				break;
			case 'L':
				list_pending = 1;
				break;
			case 'B':
				o.part_bytes = atoi(optarg);
				break;
			case 'W':
				if (parse_paths(optarg, &o.paths) != 0)
				{
					fprintf(stderr, "synclog-follow: --paths takes replay, catch_up, range_repair, download\n");
					return 2;
				}
				break;
			case 'h':
				usage(stdout);
				return 0;
			default:
				usage(stderr);
				return 2;
		}
	}
	if (optind < argc || o.doc == NULL || o.dir == NULL ||
		(o.dsn == NULL && !tamper && !damage && !export_to && !list_pending) || poll_ms <= 0)
	{
		usage(stderr);
		return 2;
	}
	if (export_to)
		return run_export(o.dir, o.doc, export_to);
	if (debug_spec)
	{
		char	   *colon = strrchr(debug_spec, ':');

		if (colon == NULL)
		{
			usage(stderr);
			return 2;
		}
		*colon = '\0';
		o.debug_point = debug_spec;
		o.debug_delay_ms = atoi(colon + 1);
	}
	if (progress == -1)
		progress = isatty(STDERR_FILENO) ? -1 : 0;
	o.want_totals = progress != 0;
	o.interrupt = &stop_flag;
	o.on_event = on_event;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;			/* no SA_RESTART: a signal ends a wait */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	rc = slcl_open(&o, &c);
	if (rc != SLCL_OK)
	{
		fprintf(stderr, "synclog-follow: %s\n", slcl_open_error());
		return 1;
	}
	if (list_pending)
	{
		rc = slcl_queue_list(c, print_mutation, NULL);
		if (rc != SLCL_OK)
			fprintf(stderr, "synclog-follow: %s\n", slcl_errmsg(c));
		slcl_close(c);
		return rc == SLCL_OK ? 0 : 1;
	}
	if (submit)
	{
		/* the queue is only sent with a state read to its head */
		rc = slcl_sync(c);
		if (rc == SLCL_OK || rc == SLCL_ERR_CONN || rc == SLCL_ERR_SERVER)
			status = run_submit(c, submit, submit_text);
		else
		{
			fprintf(stderr, "synclog-follow: %s\n", slcl_errmsg(c));
			status = rc == SLCL_ERR_REFUSED || rc == SLCL_ERR_RETIRED ? 5 : 1;
		}
		once = 1;
		if (poll_ms > 200)
			poll_ms = 200;
	}
	if (tamper || damage)
	{
		char		what[256];

		rc = tamper ? slcl_debug_tamper(c, what, sizeof(what)) : slcl_debug_damage(c, what, sizeof(what));
		if (rc != SLCL_OK)
		{
			fprintf(stderr, "synclog-follow: %s\n", slcl_errmsg(c));
			slcl_close(c);
			return 1;
		}
		if (tamper)
			printf("tamper: %s; the running hash follows, so only the server can tell\n", what);
		else
			printf("damage: %s; the hashes do not follow, so the next open finds it\n", what);
		slcl_close(c);
		return 0;
	}

	while (!stop_flag)
	{
		int			notified = 0;

		last_sync = now_s();
		rc = slcl_sync(c);
		if (rc == SLCL_ERR_REFUSED || rc == SLCL_ERR_RETIRED)
		{
			fprintf(stderr, "synclog-follow: %s\n", slcl_errmsg(c));
			status = 5;
			rc = SLCL_OK;
		}
		if (rc == SLCL_OK)
		{
			backoff = 100;
			/* with --submit: until every mutation is confirmed (or refused) */
			if (once && (submit == NULL || slcl_pending(c) == 0))
				break;
		}
		else if (rc == SLCL_ERR_INTERRUPTED)
			break;
		else if (rc == SLCL_ERR_CONN || rc == SLCL_ERR_SERVER || rc == SLCL_ERR_IO)
		{
			/* transient (or for IO: maybe); retry with a backoff */
			fprintf(stderr, "synclog-follow: %s (retrying in %d ms)\n", slcl_errmsg(c), backoff);
			if (once && ++failures >= 5)
			{
				status = 1;
				break;
			}
			usleep((useconds_t) backoff * 1000);
			if (backoff < 5000)
				backoff *= 2;
			continue;
		}
		else
		{
			fprintf(stderr, "synclog-follow: %s\n", slcl_errmsg(c));
			status = rc == SLCL_ERR_DOC_GONE ? 4 : 1;
			break;
		}
		if (max_runtime > 0 && now_s() - t0 > max_runtime)
			break;
		rc = slcl_wait(c, poll_ms, &notified);
		if (rc != SLCL_OK && !stop_flag)
		{
			fprintf(stderr, "synclog-follow: %s (reconnecting)\n", slcl_errmsg(c));
			usleep(200 * 1000);
		}
		if (notified && min_interval > 0)
		{
			double		left = min_interval / 1000.0 - (now_s() - last_sync);

			if (left > 0)
				usleep((useconds_t) (left * 1e6));
		}
	}
	if (submit && slcl_pending(c) > 0 && status == 0)
	{
		fprintf(stderr, "synclog-follow: %d mutation(s) still pending\n", slcl_pending(c));
		status = 1;
	}
	if (verify && status == 0)
		status = run_verify(c);
	print_stats(c, o.doc);
	slcl_close(c);
	return status;
}
