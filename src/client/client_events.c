/*
 * client_events.c
 *
 * What a handle tells its caller: the error message of the last call, the
 * events passed to on_event, the debug points a test can stop the library
 * at, and the read-only accessors (position, state, hash, statistics).
 *
 * Owns: slcli_fail and slcli_fail_errno (every error message the handle
 * reports is written here, on one line), slcli_emit and
 * slcli_emit_simple, slcli_debug_hook, slcl_reason_name and the
 * accessors.
 * Must never: hand out a position that is not committed, leave a multi-line
 * message in the handle's error (libpq's are folded to one line), or stop
 * at a debug point more than once per handle.
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <errno.h>
#include <stdarg.h>
#include <time.h>

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

slcl_rc
slcli_fail(slcl_client *c, slcl_rc rc, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	slcli_one_line(c->err);
	return rc;
}

slcl_rc
slcli_fail_errno(slcl_client *c, const char *what, const char *path)
{
	return slcli_fail(c, SLCL_ERR_IO, "%s \"%s\": %s", what, path, strerror(errno));
}

const char *
slcl_path_name(slcl_path p)
{
	switch (p)
	{
		case SLCL_PATH_NONE:
			break;
		case SLCL_PATH_REPLAY:
			return "replay";
		case SLCL_PATH_CATCH_UP:
			return "catch_up";
		case SLCL_PATH_RANGE_REPAIR:
			return "range_repair";
		case SLCL_PATH_DOWNLOAD:
			return "download";
	}
	return "none";
}

const char *
slcl_reason_name(slcl_reason r)
{
	switch (r)
	{
		case SLCL_DL_NONE:
			return "none";
		case SLCL_DL_INITIAL:
			return "initial";
		case SLCL_DL_LOCAL_CORRUPT:
			return "local-corrupt";
		case SLCL_DL_MISMATCH:
			return "mismatch";
		case SLCL_DL_COLLECTED:
			return "collected";
		case SLCL_DL_UNKNOWN_LOG:
			return "unknown-log";
		case SLCL_DL_AHEAD:
			return "ahead";
		case SLCL_DL_INCONSISTENT:
			return "inconsistent";
		case SLCL_DL_BAD_HASH_ALGO:
			return "hash-algorithm";
		case SLCL_DL_DIVERGED:
			return "diverged";
	}
	return "?";
}

void
slcli_emit(slcl_client *c, slcl_event *ev, const char *fmt,...)
{
	char		msg[1024];
	va_list		ap;

	if (c->opt.on_event == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ev->doc = c->doc;
	ev->message = msg;
	c->opt.on_event(c->opt.event_arg, ev);
}

void
slcli_emit_simple(slcl_client *c, slcl_event_type t, const char *fmt,...)
{
	char		msg[1024];
	va_list		ap;
	slcl_event	ev;

	if (c->opt.on_event == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memset(&ev, 0, sizeof(ev));
	ev.type = t;
	ev.doc = c->doc;
	ev.log_id = c->committed.have ? c->committed.log_id : NULL;
	ev.lsn = c->committed.lsn;
	ev.total_rows = ev.total_bytes = -1;
	ev.message = msg;
	c->opt.on_event(c->opt.event_arg, &ev);
}

void
slcli_debug_hook(slcl_client *c, const char *point)
{
	size_t		pl = strlen(point);
	const char *dp = c->debug_point;

	/* "POINT" stops at the first pass, "POINT#N" at the Nth */
	if (dp == NULL || c->debug_fired || strncmp(dp, point, pl) != 0 ||
		(dp[pl] != '\0' && dp[pl] != '#'))
		return;
	if (dp[pl] == '#' && ++c->debug_passes < atoi(dp + pl + 1))
		return;
	c->debug_fired = 1;
	slcli_emit_simple(c, SLCL_EV_DEBUG, "at %s: sleeping %d ms", point,
					  c->opt.debug_delay_ms);
	sleep_ms(c->opt.debug_delay_ms);
}

int
slcli_interrupted(const slcl_client *c)
{
	return c->opt.interrupt != NULL && *c->opt.interrupt != 0;
}

int
slcl_position(const slcl_client *c, const char **log_id, int64_t *lsn)
{
	if (!c->committed.have)
		return 0;
	if (log_id)
		*log_id = c->committed.log_id;
	if (lsn)
		*lsn = c->committed.lsn;
	return 1;
}

void
slcl_chain(const slcl_client *c, uint8_t out[SLCL_CHAIN_LEN])
{
	memcpy(out, c->committed.chain, SLCL_CHAIN_LEN);
}

int
slcl_downloading(const slcl_client *c)
{
	return c->downloading;
}

void
slcl_hash(const slcl_client *c, uint8_t out[SLC_HASH_LEN])
{
	slc_hash_serialize(&c->committed.hash, out);
}

const slcl_stats *
slcl_get_stats(const slcl_client *c)
{
	return &c->stats;
}

const char *
slcl_client_id(const slcl_client *c)
{
	return c->client_id;
}
