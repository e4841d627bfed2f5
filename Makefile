# cartrelay: build, test, run and deploy.
#
#   make run      build the CLI and run everything locally (cartrelay serve) on ADDR with DATA
#   make test     what CI runs: gofmt, go vet, staticcheck, every Go test, the template lint
#   make bench    Go benchmarks, the bootstrap sizes and the functions' init time, then bench-load
#   make bench-load  cartrelay serve under load: deliveries/s, answer times, ingest and delivery lag
#   make build    every Lambda bootstrap (linux/arm64) into build/<name>/bootstrap
#   make deploy   sam build && sam deploy (needs the AWS SAM CLI and AWS credentials)
#
# `sam build` calls the build-<LogicalId> targets below (BuildMethod: makefile in template.yaml).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO ?= go

# Lambda entry points, functions/<name>/main.go. forward is deployed once per destination (ontraport, iterable, webhooks).
FUNCTIONS := webhook ingest forward schedule poll connect
LAMBDA_ENV := GOOS=linux GOARCH=arm64 CGO_ENABLED=0
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -ldflags='-s -w'

# `make run` settings.
ADDR ?= 127.0.0.1:8080
DATA ?= ./.cartrelay

# Tools fetched into .cache/ (gitignored), pinned.
STATICCHECK_VERSION := v0.7.0
STATICCHECK := $(CURDIR)/.cache/tools/staticcheck@$(STATICCHECK_VERSION)/staticcheck

# Log lines of the test setup that `make test` shows even when the tests pass: they say which
# real backend the contract suites ran against (DynamoDB Local, moto_server as the SQS emulator).
SUITE_LINES ?= (DynamoDB Local|moto_server) .*ready

FUZZTIME ?= 10s

.PHONY: help build cli run tools test fmt-check gotest bench bench-load deploy clean fuzz \
	build-WebhookFunction build-IngestFunction build-ForwardOntraportFunction \
	build-ForwardIterableFunction build-ForwardWebhooksFunction build-ScheduleFunction build-PollFunction build-ConnectFunction

help:
	@sed -n '1,11s/^#   //p' $(firstword $(MAKEFILE_LIST))

# ---------------------------------------------------------------------------------------------
# Builds

build:
	@for f in $(FUNCTIONS); do \
		echo "build/$$f/bootstrap"; \
		$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o build/$$f/bootstrap ./functions/$$f; \
	done

# lambda_bootstrap,NAME: what `sam build` runs for one function; it sets ARTIFACTS_DIR.
define lambda_bootstrap
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set; sam build sets it (or: make $@ ARTIFACTS_DIR=dir)" >&2; exit 2; }
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o "$(ARTIFACTS_DIR)/bootstrap" ./functions/$(1)
endef

build-WebhookFunction:
	$(call lambda_bootstrap,webhook)
build-IngestFunction:
	$(call lambda_bootstrap,ingest)
build-ForwardOntraportFunction:
	$(call lambda_bootstrap,forward)
build-ForwardIterableFunction:
	$(call lambda_bootstrap,forward)
build-ForwardWebhooksFunction:
	$(call lambda_bootstrap,forward)
build-ScheduleFunction:
	$(call lambda_bootstrap,schedule)
build-PollFunction:
	$(call lambda_bootstrap,poll)
build-ConnectFunction:
	$(call lambda_bootstrap,connect)

cli:
	$(GO) build -buildvcs=auto -o bin/cartrelay ./cmd/cartrelay

run: cli
	./bin/cartrelay --data $(DATA) serve --addr $(ADDR)

# ---------------------------------------------------------------------------------------------
# Tools and tests

# DynamoDB Local for the store's contract suite, Chromium (Debian's package, installed with
# apt-get when missing) for the connect flow's browser test, AWS's Lambda Runtime Interface
# Emulator (built from source with go install) for the end-to-end test of the bootstraps, and
# staticcheck. Outside CI a failed fetch or install only warns: the test then skips with one line
# saying what to install.
tools: $(STATICCHECK)
	@if ! scripts/fetch-dynamodb-local.sh; then \
		if [ "$${CI:-}" = true ]; then exit 1; fi; \
		echo "warning: DynamoDB Local could not be fetched; its contract suite will be skipped" >&2; \
	fi
	@if ! scripts/fetch-rie.sh | sed 's/^/Lambda Runtime Interface Emulator present: /'; then \
		if [ "$${CI:-}" = true ]; then exit 1; fi; \
		echo "warning: the Lambda Runtime Interface Emulator could not be built; the end-to-end test of the bootstraps will be skipped" >&2; \
	fi
	@if ! scripts/install-chromium.sh; then \
		if [ "$${CI:-}" = true ]; then exit 1; fi; \
		echo "warning: Chromium could not be installed; the browser test of the connect flow will be skipped" >&2; \
	fi

$(STATICCHECK):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# step,NAME,COMMAND: runs COMMAND, records whether it passed, and goes on, so that one run
# shows every problem.
step = echo; echo "== $(1)"; if $(2); then echo "ok|$(1)" >>build/test-steps; else echo "FAILED|$(1)" >>build/test-steps; fi

test: tools
	@mkdir -p build; : >build/test-steps
	@$(call step,gofmt,$(MAKE) --no-print-directory fmt-check)
	@$(call step,go vet,$(GO) vet ./...)
	@$(call step,staticcheck,$(STATICCHECK) ./...)
	@$(call step,go test,$(MAKE) --no-print-directory gotest)
	@$(call step,template lint,scripts/cfn-lint.sh)
	@echo; echo "== summary"; \
	while IFS='|' read -r status name; do printf '  %-15s %s\n' "$$name" "$$status"; done <build/test-steps; \
	if [ -s build/test-counts ]; then sed 's/^/  /' build/test-counts; fi; \
	if grep -q '^FAILED' build/test-steps; then echo "make test: FAILED"; exit 1; fi; \
	echo "make test: all checks passed"; \
	grep -h '^tests:' build/test-counts 2>/dev/null || true

fmt-check:
	@files=$$(find . -name '*.go' -not -path './.*' -not -path '*/testdata/*' -not -path './build/*' -print0 | xargs -0 -r gofmt -l); \
	if [ -n "$$files" ]; then echo "gofmt would change these files (gofmt -w FILE):"; echo "$$files" | sed 's/^/  /'; exit 1; fi; \
	echo "all Go files are formatted"

# Runs every test verbosely into build/test.log (libphonenumber's copy is a module of its own) and shows the useful part: package results,
# failures with their output, skips with their reason, and the contract suites' backend lines.
gotest:
	@mkdir -p build/screenshots; rm -rf build/test-counts build/screenshots/_artifacts
	@echo "full log: build/test.log; browser screenshots: build/screenshots"
	@( $(GO) test -count=1 -v -artifacts -outputdir $(CURDIR)/build/screenshots ./...; s=$$?; \
		cd third_party/phonenumbers && $(GO) test -count=1 -v ./... || s=1; exit $$s ) 2>&1 | tee build/test.log | awk -v suite='$(SUITE_LINES)' -v module="$$($(GO) list -m)" "$$TEST_REPORT_AWK"

define TEST_REPORT_AWK
# Per package: the contract suites' results and the backend each one started.
function pkg_done(pkg,   line) {
	sub("^" module "/", "", pkg)
	if (cstatus != "") {
		line = sprintf("  %-22s TestContract %s, %d checks passed", pkg, cstatus, cpass)
		if (backend != "") line = line ", against " backend
		if (cstatus == "SKIP") line = line " (" creason ")"
		suites = suites line "\n"
	}
	cstatus = ""; cpass = 0; backend = ""; creason = ""
}
function last_line(text,   n, l) { n = split(text, l, "\n"); return n > 1 ? l[n - 1] : "" }
/^=== (RUN|CONT|NAME|PAUSE)/ { cur = $$3; next }
/^ *--- (PASS|FAIL|SKIP)/ {
	name = $$3; status = substr($$2, 1, 4)
	if (name ~ /^TestContract[^\/]*$$/) {
		if (cstatus == "" || status == "FAIL") cstatus = status
		if (status == "SKIP") { creason = last_line(buf[name]); sub(/^[ \t]+/, "", creason) }
	} else if (name ~ /^TestContract[^\/]*\// && status == "PASS") cpass++
	if (status == "PASS") pass++
	if (status == "SKIP") { skip++; print; print last_line(buf[name]) }
	if (status == "FAIL") { fail++; print; printf "%s", buf[name] }
	delete buf[name]; next
}
/^(PASS|FAIL)$$/ { next }
/^ok / { pkgok++; print; pkg_done($$2); next }
/^FAIL\t/ { pkgfail++; print; pkg_done($$2); next }
/^\?/ { notests++; next }
$$0 ~ suite {
	s = $$0; sub(/^[ \t]+/, "", s); sub(/^[A-Za-z0-9_]+\.go:[0-9]+: /, "", s)
	backend = backend == "" ? s : backend "; " s
	if ($$0 ~ /^[ \t]/) { print "  " s; buf[cur] = buf[cur] $$0 "\n" } else print
	next
}
/^[ \t]/ { buf[cur] = buf[cur] $$0 "\n"; next }
{ print }
END {
	out = "build/test-counts"
	printf "tests: %d passed, %d failed, %d skipped\n", pass, fail, skip > out
	printf "packages: %d ok, %d failed, %d without tests\n", pkgok, pkgfail, notests > out
	if (suites != "") printf "contract suites:\n%s", suites > out
	else printf "contract suites: none ran (no TestContract in the log)\n" > out
}
endef
export TEST_REPORT_AWK

# The Go benchmarks (BenchmarkInit among them), then the figures the README quotes, then the
# load runs.
bench:
	@mkdir -p build
	$(GO) test -run '^$$' -bench . -benchmem ./... | tee build/bench.txt
	@echo
	@scripts/bench-figures.sh build/bench.txt
	@echo
	@$(MAKE) --no-print-directory bench-load

# LOAD_RUNS are cartrelay-load's options for each run, separated by ';': a fixed 500/s with the
# forwarders running dry and with stand-ins for ONTRAPORT and Iterable, a fixed 1,500/s, and
# as fast as 64 senders go. LOAD_SECONDS is each run's length.
LOAD_SECONDS ?= 60
LOAD_RUNS ?= -rate 500 -destinations dry; -rate 500 -destinations fake; -rate 1500 -destinations dry -drain 30s; -rate 0 -workers 64 -destinations dry -drain 30s

# Runs `cartrelay serve` (bin/cartrelay, as make run builds it) under each load in turn and
# writes the reports to build/bench-load.txt. The machine should be otherwise idle.
bench-load: cli
	@mkdir -p build
	$(GO) build -o bin/cartrelay-load ./cmd/cartrelay-load
	@: >build/bench-load.txt; echo "uptime: $$(uptime)" | tee -a build/bench-load.txt
	@echo '$(LOAD_RUNS)' | tr ';' '\n' | while read -r run; do \
		echo "== bin/cartrelay-load -duration $(LOAD_SECONDS)s $$run" | tee -a build/bench-load.txt; \
		./bin/cartrelay-load -duration $(LOAD_SECONDS)s $$run | tee -a build/bench-load.txt; \
	done

# Short runs of every fuzz target (FUZZTIME each).
fuzz:
	@for dir in $$(grep -rl --include='*_test.go' -E '^func Fuzz' shared cmd functions third_party 2>/dev/null | xargs -r -n1 dirname | sort -u); do \
		for f in $$(grep -h -o -E '^func Fuzz[A-Za-z0-9_]+' $$dir/*_test.go | sed 's/^func //'); do \
			echo "== $$dir $$f"; \
			(cd $$dir && $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) .); \
		done; \
	done

# ---------------------------------------------------------------------------------------------
# Deploy (AWS SAM CLI; settings in samconfig.toml) into the account and region of the current
# AWS credentials. Parameters, for example:
#   make deploy DEPLOY_FLAGS='--parameter-overrides AlarmEmail=ops@example.com'
#   make deploy DEPLOY_FLAGS=--guided

DEPLOY_FLAGS ?=

deploy:
	sam build
	sam deploy $(DEPLOY_FLAGS)

clean:
	rm -rf build bin .aws-sam
