# Fundtrail: two commands.
#   make run    build, create ./data/fundtrail.db with the demo (once), serve on 127.0.0.1:8080
#   make test   installs what the tests need (scripts/test-deps), then formatting, lints,
#               every test, the OpenAPI drift check and a small benchmark run
# Override FUNDTRAIL_DB / FUNDTRAIL_BIND in the environment.

CARGO ?= cargo
export FUNDTRAIL_DB ?= data/fundtrail.db
export FUNDTRAIL_BIND ?= 127.0.0.1:8080
# Ask cargo where it builds (CARGO_TARGET_DIR, .cargo/config) rather than assume target/.
TARGET_DIR := $(or $(shell $(CARGO) metadata --format-version 1 --no-deps 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'),target)
BIN := $(TARGET_DIR)/debug/fundtrail
DEMO_ORG ?= TWN-AP-CG
DATA_DIR := $(patsubst %/,%,$(dir $(FUNDTRAIL_DB)))

.PHONY: all build run test test-deps check openapi bench bench-smoke bench-parts fmt clean demo-scenario

all: build

build:
	$(CARGO) build --workspace --bins

run: build
	$(BIN) demo --fixtures fixtures/demo
	@echo
	@echo "Act as an office from another terminal (every demo org has a token and key in $(DATA_DIR)/demo/):"
	@echo "  export FUNDTRAIL_SERVER=http://$(FUNDTRAIL_BIND)"
	@echo "  export FUNDTRAIL_TOKEN=\$$(cat $(DATA_DIR)/demo/$(DEMO_ORG)/token) FUNDTRAIL_KEY=$(DATA_DIR)/demo/$(DEMO_ORG)/key"
	@echo "  $(BIN) balance --org $(DEMO_ORG)"
	@echo "  $(BIN) verify --server \$$FUNDTRAIL_SERVER"
	@echo "Reconcile as the inspector (the demo shows every finding type but integrity; see README.md):"
	@echo "  FUNDTRAIL_TOKEN=\$$(cat $(DATA_DIR)/demo/AUDIT-PROV/token) $(BIN) reconcile --server \$$FUNDTRAIL_SERVER --format html -o report.html"
	@echo
	$(BIN) serve

# What the tests need besides Rust (Chromium, python3 + cryptography, rustfmt/clippy):
# installed when missing, or the one command that installs them is named.
test-deps:
	@scripts/test-deps

# One debug build serves every step: the binary, the tests (which also run the independent
# Python verifier) and clippy's check pass share one target directory.
test: test-deps build
	$(CARGO) fmt --all -- --check
	$(BIN) openapi | diff -u openapi/openapi.json - || { echo "openapi/openapi.json is stale: run 'make openapi'"; exit 1; }
	$(CARGO) test --workspace
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(MAKE) bench-smoke

openapi: build
	$(BIN) openapi > openapi/openapi.json

# Benchmarks are not tests: release build, figures printed, nothing asserted about speed.
# The province end to end (BENCH_RECIPIENTS, default 1,000,000), each stage beside its raw
# baseline; figures in target/bench/results.json (backend/benches/pipeline.rs).
bench:
	$(CARGO) bench -p fundtrail --bench pipeline

# The same pipeline at 10,000 recipients on the debug build, so that it cannot rot (make test
# runs it): every stage must do all its work, the report must find every injected case, and
# results.json must keep its shape.
SMOKE_OUT := $(abspath $(TARGET_DIR))/bench/smoke-results.json
bench-smoke:
	BENCH_RECIPIENTS=10000 BENCH_OUT=$(SMOKE_OUT) $(CARGO) test -q -p fundtrail --bench pipeline
	python3 -c 'import json,sys; r=json.load(open("$(SMOKE_OUT)")); \
	  keys={"name","rows","seconds","rows_per_s","peak_rss_bytes","baseline_name","baseline_rows_per_s"}; \
	  assert r["recipients"]==10000 and r["db_bytes_per_entry"]>0, r; \
	  assert [s["name"] for s in r["stages"]]==["register","allocate","disburse","import","reconcile","verify"]; \
	  assert all(keys<=set(s) and s["rows"]>0 and s["rows_per_s"]>0 and s["peak_rss_bytes"]>0 for s in r["stages"]); \
	  print("bench smoke: results.json has every stage")'

# Focused benchmarks of single paths: appends against plain inserts at a chosen batch size,
# and one big statement file (CSV and camt.053) imported against a parse-only pass.
bench-parts:
	$(CARGO) bench -p fundtrail --bench append
	$(CARGO) bench -p fundtrail --bench import

# The generated scenario the demo loads below the province (tests/e2e/demo.rs checks it).
demo-scenario:
	rm -rf fixtures/demo/scenario
	$(CARGO) run -q -p fundtrail-fixtures --bin fundtrail-scenario -- --out fixtures/demo/scenario \
	  --seed 2026 --recipients 480 --counties 2 --townships 6 --cases 1 --parent FIN-PROV

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
