# synclog: PGXS build.  `make && make install`, then `make installcheck`
# against a running server runs the regression, isolation and TAP suites.

MODULE_big = synclog
OBJS = \
	src/core/synclog_core.o \
	src/core/synclog_chain.o \
	src/synclog.o \
	src/args.o \
	src/spi_util.o \
	src/docs.o \
	src/delta_sql.o \
	src/hash_sql.o \
	src/append.o \
	src/read.o \
	src/chain_sql.o \
	src/pause.o \
	src/snapshot.o \
	src/compact.o \
	src/keyset.o \
	src/entries.o \
	src/gc.o \
	src/notify.o \
	src/policy.o \
	src/worker.o \
	src/access.o \
	src/version.o \
	src/drop_guard.o \
	src/forget.o \
	src/worker_state.o \
	src/range.o \
	src/range_store.o \
	src/catch_up.o
# Compressed deltas (issue 16): the shared codec and the server's use of it.
OBJS += src/core/synclog_zip.o src/delta_store.o

EXTENSION = synclog
DATA = src/synclog--0.1.sql src/synclog--0.1--0.2.sql
PGFILEDESC = "synclog - storage logs for rebase-sync clients"

PG_CPPFLAGS = -I$(srcdir)/src -I$(srcdir)/src/core
# `make SYNCLOG_TEST_HOOKS=1`: a test build, with the settings that only
# tests use (synclog.debug_rotation_delay).  CI, the walkthrough and the
# benchmarks build this way; the Debian packages do not.
ifdef SYNCLOG_TEST_HOOKS
PG_CPPFLAGS += -DSYNCLOG_TEST_HOOKS
endif
# `make SYNCLOG_COVERAGE=1`: an unoptimized build instrumented for gcov
# (`make coverage` builds this way; see test/coverage.sh).  The extension's
# own files get test/coverage_macros.h first: PostgreSQL's branching macros
# become inline functions there, so that their branches are not counted as
# the code's.
ifdef SYNCLOG_COVERAGE
PROFILE += --coverage
COPT += -O0
$(filter-out src/core/%,$(OBJS)): override CPPFLAGS += -include $(srcdir)/test/coverage_macros.h
endif
# PostgreSQL's own headers have unused parameters in inline functions.
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter
SHLIB_LINK = -lxxhash
SHLIB_LINK += -lzstd

# PGXS tracks no header dependencies: every object depends on the shared headers.
$(OBJS): src/synclog.h src/core/synclog_core.h
# That is the first rule here; without this, a plain `make` would build
# only src/core/synclog_core.o (and `make install` the rest).
.DEFAULT_GOAL := all

REGRESS = delta hash vectors docs append read compact snapshot gc policy retention access access_confine clients protocol2 forget monitor corruption watermark_pages arguments
REGRESS += compress read_paths access_patterns catchup
REGRESS_OPTS = --load-extension=synclog

ISOLATION = append_rotate rotate_rotate retry_race append_rotate_more append_drop append_rr gc_read ack_gc compact_due_race policy_append gc_forget append_truncate grant_stale rotate_fairness read2_groups forget_append rotate_passes compact_due_cancel drop_races append_compact_deadlock rotate_doc_gone pause_restore catchup_pages
# Specs that need a test build (synclog.debug_pause_at, debug_hint_block): run with
# `make installcheck SYNCLOG_TEST_HOOKS=1`, as CI does.
ISOLATION_HOOKS = rotate_retry append_hint
ifdef SYNCLOG_TEST_HOOKS
ISOLATION += $(ISOLATION_HOOKS)
endif
ISOLATION_OPTS = --load-extension=synclog --inputdir=test/isolation --outputdir=test/isolation

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

EXTRA_CLEAN = results regression.diffs regression.out test/isolation/results \
	test/isolation/output_iso test/isolation/regression.* \
	src/*.gcno src/*.gcda src/core/*.gcno src/core/*.gcda coverage

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

.PHONY: check-core bench coverage
check-core:
	$(MAKE) -C test/core check

# `make coverage`: build with gcov, install, run the suites on a throw-away
# cluster and print each file's line and branch coverage (test/coverage.sh);
# fails below the floors.  COVERAGE_SUITES picks suites (core regress
# isolation tap).  It installs the instrumented build into PG_CONFIG's
# PostgreSQL.
COVERAGE_MIN_LINES ?= 0
COVERAGE_MIN_BRANCHES ?= 0
coverage:
	PG_CONFIG=$(PG_CONFIG) COVERAGE_MIN_LINES=$(COVERAGE_MIN_LINES) \
	COVERAGE_MIN_BRANCHES=$(COVERAGE_MIN_BRANCHES) bash test/coverage.sh

bench:
	bash test/bench/run.sh

# --- reference client (src/client) -------------------------------------------
# libsynclog_client.a (the client library over libpq, with its own build of
# the shared core src/core/synclog_core.c) and the synclog-follow CLI.  Built
# with plain C flags, apart from the extension's PGXS flags.
CLIENT_DIR := src/client
CLIENT_CC ?= $(CC)
CLIENT_CFLAGS ?= -std=gnu99 -O2 -g -Wall -Wextra
CLIENT_CPPFLAGS = -I$(srcdir)/$(CLIENT_DIR) -I$(srcdir)/src/core \
	-I$(shell $(PG_CONFIG) --includedir)
CLIENT_LIBS = -L$(shell $(PG_CONFIG) --libdir) -lpq -lxxhash -lsqlite3
CLIENT_LIBS += -lzstd
CLIENT_LIB = $(CLIENT_DIR)/libsynclog_client.a
CLIENT_BIN = $(CLIENT_DIR)/synclog-follow
# The library's files share one private header, client_int.h (see it for
# which file does what).
CLIENT_LIB_OBJS = $(addprefix $(CLIENT_DIR)/, client_open.o client_store.o \
	client_legacy.o client_download.o client_follow.o client_conn.o \
	client_verify.o client_reader.o client_changes.o client_pagefile.o \
	client_events.o client_util.o client_write.o client_repair.o)
CLIENT_OBJS = $(CLIENT_LIB_OBJS) $(CLIENT_DIR)/synclog_core_client.o \
	$(CLIENT_DIR)/synclog_chain_client.o
CLIENT_OBJS += $(CLIENT_DIR)/synclog_zip_client.o

.PHONY: client clean-client check-client
all: client
client: $(CLIENT_LIB) $(CLIENT_BIN)

$(CLIENT_LIB_OBJS): $(CLIENT_DIR)/%.o: $(CLIENT_DIR)/%.c $(CLIENT_DIR)/client_int.h \
		$(CLIENT_DIR)/synclog_client.h src/core/synclog_core.h
	$(CLIENT_CC) $(CLIENT_CFLAGS) $(CLIENT_CPPFLAGS) -c -o $@ $<
# The very same core source as the extension, compiled for the client.
$(CLIENT_DIR)/synclog_core_client.o: src/core/synclog_core.c src/core/synclog_core.h
	$(CLIENT_CC) $(CLIENT_CFLAGS) $(CLIENT_CPPFLAGS) -c -o $@ $<
$(CLIENT_DIR)/synclog_chain_client.o: src/core/synclog_chain.c src/core/synclog_core.h
	$(CLIENT_CC) $(CLIENT_CFLAGS) $(CLIENT_CPPFLAGS) -c -o $@ $<
$(CLIENT_DIR)/synclog_zip_client.o: src/core/synclog_zip.c src/core/synclog_zip.h src/core/synclog_core.h
	$(CLIENT_CC) $(CLIENT_CFLAGS) $(CLIENT_CPPFLAGS) -c -o $@ $<
$(CLIENT_LIB): $(CLIENT_OBJS)
	rm -f $@
	ar rcs $@ $(CLIENT_OBJS)
$(CLIENT_BIN): $(CLIENT_DIR)/synclog-follow.c $(CLIENT_LIB) $(CLIENT_DIR)/synclog_client.h
	$(CLIENT_CC) $(CLIENT_CFLAGS) $(CLIENT_CPPFLAGS) -o $@ $< $(CLIENT_LIB) $(CLIENT_LIBS)

check-client: client
	$(MAKE) -C test/client check

clean: clean-client
clean-client:
	rm -f $(CLIENT_OBJS) $(CLIENT_LIB) $(CLIENT_BIN)
	-$(MAKE) -C test/client clean
# --- end of reference client -------------------------------------------------

# --- Debian packages (debian/) -----------------------------------------------
# `make deb` builds postgresql-15-synclog and synclog-client with
# dpkg-buildpackage from a clean export of the tree (the committed files
# plus uncommitted changes to them; no build products, no untracked files)
# in a temporary directory, and leaves the .deb files in $(DEB_OUT).
DEB_OUT ?= build/deb

.PHONY: deb
deb:
	@set -e; \
	git rev-parse --git-dir >/dev/null 2>&1 || \
		{ echo "make deb: needs a git checkout" >&2; exit 1; }; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	rev=$$(git -c user.name="make deb" -c user.email=make-deb@localhost stash create); \
	git archive --prefix=synclog/ "$${rev:-HEAD}" | tar -x -C "$$tmp"; \
	(cd "$$tmp/synclog" && dpkg-buildpackage -us -uc -b -j2); \
	mkdir -p "$(DEB_OUT)"; rm -f "$(DEB_OUT)"/*.deb; \
	cp "$$tmp"/*.deb "$(DEB_OUT)/"; \
	ls -l "$(DEB_OUT)"/*.deb
