# Follow-up engine — every task a developer or CI runs.
#   make run    start followup-local on the embedded default (SQLite in ./.followup)
#   make test   every test (unit, contract, scenarios, AWS adapters on a local moto server, the deployed topology,
#               the console in a browser)
#   make run-aws  template.yaml's topology on 127.0.0.1: moto, the six functions behind a Lambda Runtime API
#                 emulator, the HTTP API, Scheduler and the rules (infra/local; prints the URL and the secret)
#   make test-infra  that topology end to end: signed requests, the virtual clock, SMS and commands (pytest), with
#                 IAM enforced on moto (each function on its own role's session from the template)
#   make test-shipped  the same end-to-end story on what make build ships: the six arm64 release zips unpacked,
#                 each bootstrap run under qemu-user behind the same Runtime API emulator (not in make test: below)
#   make test-contract  the published contract from outside: Schemathesis (.venv-schemathesis), every check on, against
#               followup-local's /openapi.json through a signing proxy (tests/contract; a short budget, in make test)
#   make test-console  the team lead's console (/console) in Debian's Chromium driven by Playwright (.venv-console):
#               every page, its counts and marks, right-to-left Arabic, the keyboard, the 401 off loopback;
#               screenshots in target/console-screenshots/ (test-console-short, the due page and the 401s, is in make test)
#   make demo   play a cancelled first visit through the virtual clock and print what happens
#   make bench  criterion benches (decide per playbook, SMS rendering, one durable commit), then the HTTP load test
#               (fsync bound; 1, 8, 32, 128 clients against a release followup-local: events/s, p50/p99, CPU per
#               event of the server, its writer thread and the load generator, peak RSS; and HTTP alone, a 404
#               route on the same connections), ending with one table of all of it
#   make soak   the crash soak at full size: 10,000 signed events, 24 kill -9 of followup-local, printed figures
#               (a 1,000-event, 5-kill run of it is in make test)
#   make simulate  a month of 100,000 appointments and 20,000 packages through the engine, with its AWS bill
#               (followup-local simulate --help for the rates and prices; a small run of it is in make test)
#   make fuzz   long fuzz runs: 100,000 generated API calls against followup-local (docs/openapi.json), Schemathesis
#               at 200 cases per operation and phase (15 minutes at most), and 200,000 cases per envelope-parsing and
#               signature property and of the playbook model (shared/tests/properties.rs; short runs are in make test)
#   make build  the six Lambda functions as arm64 zips (cargo lambda, from .venv), with their sizes (each at most 3 MB)
#   make footprint  cold start of a real function next to a hello-world lambda_runtime binary (same lambda profile,
#               this machine) against a Runtime API stub and moto on 127.0.0.1, and its first request with and
#               without the DynamoDB connection opened during init (FOOTPRINT_RUNS=20)
#   make validate  cfn-lint, sam validate --lint, checkov (every skip justified in the template) and infra/test_template.py (the template as SAM transforms
#                  it: least privilege against the code, parameters used, the dashboard body; offline; part of make test)
#   make deploy sam build --beta-features && sam deploy; ENV=dev|prod takes infra/samconfig.toml's environment,
#               no ENV is --guided (needs AWS credentials; never used by tests)

SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# The SAM CLI pins its own boto and cfn-lint versions, so it gets a venv of its own.
SAM_VENV := .venv-sam
SAM := SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# Test-only Python tools: the AWS emulator (moto), the template linter, SAM's own transform
# (aws-sam-translator, for infra/local) and pytest (infra/local's end-to-end test).
PY_TOOLS := moto[server] cfn-lint aws-sam-translator pytest
# The Lambda crates: built with followup-shared's aws feature, so kept out of the local build.
FUNCTIONS := appointments cancellation-request call-attempt package-payment package-expiry cases
AWS_CRATES := followup-lambda $(addprefix followup-fn-,$(FUNCTIONS))

.PHONY: run run-aws test test-local test-contract venv-schemathesis test-aws test-infra test-shipped qemu-arm64 test-console test-console-short venv-console venv venv-build venv-sam venv-checkov validate demo bench soak fuzz simulate build build-local footprint deploy fmt lint clean

run:
	$(CARGO) run -p followup-local --bin followup-local

test: test-local test-contract test-aws test-infra test-console-short

# Without the aws feature: followup-local and its tests never compile the AWS SDK.
test-local:
	$(CARGO) build -p followup-local --bin followup-local
	$(CARGO) test --workspace --no-fail-fast $(addprefix --exclude ,$(AWS_CRATES))
	@# make bench in short: each criterion bench once, the in-process group commit, the HTTP load (every answer a 202)
	BENCH_ORDERS=200 $(CARGO) test -q -p followup-shared --benches
	LOAD_EVENTS=300 LOAD_CLIENTS=1,8,32 $(CARGO) run -q -p followup-tools --example load

# The AWS adapters and the Lambda handlers against moto on 127.0.0.1 (dummy credentials, no AWS).
test-aws: venv
	$(CARGO) test -p followup-shared --features aws --no-fail-fast --lib --test aws_contract
	$(CARGO) test -p followup-lambda --no-fail-fast
	$(CARGO) build $(addprefix -p ,$(filter-out followup-lambda,$(AWS_CRATES)))
	@# make footprint in short: the same measurement on debug builds, 3 runs per variant
	$(CARGO) build -q -p followup-lambda --example hello
	$(CARGO) run -q -p followup-lambda --example footprint -- target/debug/appointments target/debug/examples/hello 3
	$(MAKE) --no-print-directory validate

# template.yaml's topology on one machine (infra/local/README.md); Ctrl-C stops it all.
run-aws: venv
	$(CARGO) build $(addprefix -p followup-fn-,$(FUNCTIONS))
	$(VPY) infra/local/run.py

# The same topology on free ports with the virtual clock, proven end to end through the HTTP API.
test-infra: venv
	$(CARGO) build $(addprefix -p followup-fn-,$(FUNCTIONS))
	$(VPY) -m pytest -q -p no:cacheprovider infra/local/tests

# The story of test-infra on make build's zips, as Lambda runs them: each bootstrap.zip unpacked to
# target/shipped/<function>/ and its bootstrap run under qemu-user (infra/local --shipped), IAM enforced.
# Not part of make test: on 2 cores it takes about 9 minutes from a fresh clone (the arm64 cross build,
# every dependency again for aarch64 and six LTO links with zig, 8 min 21 s; the tests under qemu 19 s)
# and 4 minutes after a change to the shared crate, which would take a suite of 19-25 minutes to 28-34.
SHIPPED_DIR := target/shipped
test-shipped: build qemu-arm64
	rm -rf $(SHIPPED_DIR)
	@for f in $(FUNCTIONS); do \
		$(VPY) -m zipfile -e target/lambda/$$f/bootstrap.zip $(SHIPPED_DIR)/$$f && chmod +x $(SHIPPED_DIR)/$$f/bootstrap || exit 1; \
		file -b $(SHIPPED_DIR)/$$f/bootstrap | sed "s|^|$$f: |" | cut -c1-150; \
	done
	FOLLOWUP_SHIPPED_DIR=$(CURDIR)/$(SHIPPED_DIR) FOLLOWUP_INFRA_TEST_TIMEOUT=900 \
		$(VPY) -m pytest -q -p no:cacheprovider infra/local/tests

# What runs an arm64 Lambda binary on another host: qemu-user, and the aarch64 loader and glibc
# the zig-linked bootstrap is dynamically linked against (libc, libm, libpthread, libdl; its
# unwinder is static), from Debian's libc6-arm64-cross, which qemu reads under
# /usr/aarch64-linux-gnu. Installed with apt-get only when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
qemu-arm64:
	@if [ "$$(uname -m)" != aarch64 ]; then \
		missing=; \
		command -v qemu-aarch64-static >/dev/null || missing="$$missing qemu-user-static"; \
		[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || missing="$$missing libc6-arm64-cross"; \
		if [ -n "$$missing" ]; then \
			echo "installing$$missing"; \
			$(SUDO) apt-get install -y -q $$missing || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q $$missing; }; \
		fi; \
	fi

# The published contract tested from outside (tests/contract/run.py): Schemathesis with every check on, against
# a followup-local of its own on 127.0.0.1, through a proxy that signs as a webhook sender does. The only
# failures it accepts are the state-dependent refusals of tests/contract/baseline.json, each with its reason.
SCHEMATHESIS_VENV := .venv-schemathesis
SCHEMATHESIS_VERSION := 4.32.5
CONTRACT_EXAMPLES ?= 15
test-contract: venv-schemathesis
	$(CARGO) build -p followup-local --bin followup-local
	$(PYTHON) tests/contract/run.py --max-examples $(CONTRACT_EXAMPLES)

venv-schemathesis:
	@if [ ! -x $(SCHEMATHESIS_VENV)/bin/python ]; then $(PYTHON) -m venv $(SCHEMATHESIS_VENV); fi
	@if [ "$$($(SCHEMATHESIS_VENV)/bin/schemathesis --version 2>/dev/null)" != "schemathesis, version $(SCHEMATHESIS_VERSION)" ]; then \
		echo "installing schemathesis $(SCHEMATHESIS_VERSION) into $(SCHEMATHESIS_VENV)"; \
		$(SCHEMATHESIS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check schemathesis==$(SCHEMATHESIS_VERSION); \
	fi

# The team lead's console in a real browser (tests/console/test_console.py): Debian's Chromium driven by
# Playwright from .venv-console; the test starts its own followup-local on 127.0.0.1 and on 0.0.0.0.
CONSOLE_VENV := .venv-console
CONSOLE_PY := $(CONSOLE_VENV)/bin/python
test-console: venv-console
	$(CARGO) build -p followup-local --bin followup-local
	$(CONSOLE_PY) -m pytest -q -p no:cacheprovider tests/console

# make test-console in short: the due page (counts, the overdue mark, the skip link) and the 401s off loopback.
test-console-short: venv-console
	$(CARGO) build -p followup-local --bin followup-local
	$(CONSOLE_PY) -m pytest -q -p no:cacheprovider tests/console -k "due_page or unauthorized"

# Creates .venv-console with Playwright and pytest when missing. Playwright's own browser download is not
# used (this machine cannot reach it): Debian's chromium at /usr/bin/chromium, installed only when missing.
CONSOLE_SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
venv-console:
	@if [ ! -x $(CONSOLE_PY) ]; then $(PYTHON) -m venv $(CONSOLE_VENV); fi
	@$(CONSOLE_PY) -c "import playwright, pytest" 2>/dev/null || $(CONSOLE_PY) -m pip install -q playwright pytest
	@if [ ! -x /usr/bin/chromium ]; then \
		$(CONSOLE_SUDO) apt-get install -y -q chromium || { $(CONSOLE_SUDO) apt-get update -q && $(CONSOLE_SUDO) apt-get install -y -q chromium; }; \
	fi

# Creates .venv and installs the Python tools only when one is missing.
venv:
	@if [ ! -x $(VPY) ]; then $(PYTHON) -m venv $(VENV); fi
	@if ! $(VPY) -c "import moto.server, cfnlint, samtranslator, pytest" 2>/dev/null; then \
		echo "installing $(PY_TOOLS) into $(VENV)"; \
		$(VPY) -m pip install --quiet --disable-pip-version-check $(PY_TOOLS); \
	fi

demo:
	$(CARGO) run -q -p followup-tests --example demo

# The load example prints the summary last, with the criterion means the first step leaves in target/criterion.
# The in-process group-commit bench (writes per commit) runs on its own: cargo bench -p followup-shared --bench throughput
bench:
	$(CARGO) bench -p followup-shared --bench decide
	$(CARGO) run -q --release -p followup-tools --example load
	$(MAKE) --no-print-directory footprint

soak:
	FOLLOWUP_SOAK=full $(CARGO) test -p followup-tests --test soak -- --test-threads=1

simulate:
	$(CARGO) run -q --release -p followup-local -- simulate --appointments 100000 --packages 20000

fuzz: venv-schemathesis
	$(CARGO) build -p followup-local --bin followup-local
	FOLLOWUP_FUZZ_CASES=100000 FOLLOWUP_FUZZ_SECS=900 $(CARGO) test -p followup-tests --test api_fuzz
	$(PYTHON) tests/contract/run.py --max-examples 200 --max-time 900
	PROPTEST_CASES=200000 $(CARGO) test -p followup-shared --test wire_fuzz
	PROPTEST_CASES=200000 $(CARGO) test -p followup-shared --test properties

LAMBDA_TARGET := aarch64-unknown-linux-gnu
# Each function's zip is at most 3 MB; make build fails above it.
LAMBDA_ZIP_MAX_KIB := 3072

# Build tools only: cargo-lambda cross-compiles with zig; both come from PyPI.
venv-build: venv
	@if ! $(VENV)/bin/cargo-lambda lambda --version >/dev/null 2>&1 || ! $(VPY) -c "import ziglang" 2>/dev/null; then \
		echo "installing cargo-lambda ziglang into $(VENV)"; \
		$(VPY) -m pip install --quiet --disable-pip-version-check cargo-lambda ziglang; \
	fi

build: venv-build
	@rustup target list --installed | grep -qx $(LAMBDA_TARGET) || rustup target add $(LAMBDA_TARGET) || \
		{ echo "error: cannot install the Rust target $(LAMBDA_TARGET) (rustup target add failed); the Lambda build needs it" >&2; exit 1; }
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo-lambda lambda build --profile lambda --arm64 --output-format zip \
		$(addprefix -p followup-fn-,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do stat -c "$$f %s" target/lambda/$$f/bootstrap.zip; done | awk -v max=$(LAMBDA_ZIP_MAX_KIB) \
		'{printf "%-22s %8.1f KiB\n", $$1, $$2/1024} $$2 > max * 1024 {over = 1} \
		 END {if (over) {printf "error: a zip is over %d KiB\n", max > "/dev/stderr"; exit 1}}'

# Cold start, measured on this machine: the lambda profile built for the host, with an explicit
# --target so the binaries land in target/<host>/lambda, not in target/lambda beside make build's zips.
HOST_TARGET = $(shell rustc -vV | sed -n 's/^host: //p')
FOOTPRINT_RUNS ?= 20

footprint: venv
	$(CARGO) build --profile lambda --target $(HOST_TARGET) -p followup-fn-appointments
	$(CARGO) build --profile lambda --target $(HOST_TARGET) -p followup-lambda --example hello
	$(CARGO) run -q -p followup-lambda --example footprint -- \
		target/$(HOST_TARGET)/lambda/appointments target/$(HOST_TARGET)/lambda/examples/hello $(FOOTPRINT_RUNS)

build-local:
	$(CARGO) build --release -p followup-local

venv-sam:
	@if ! $(SAM_VENV)/bin/sam --version >/dev/null 2>&1; then \
		echo "installing aws-sam-cli into $(SAM_VENV)"; \
		$(PYTHON) -m venv $(SAM_VENV) && $(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check aws-sam-cli; \
	fi

# Both linters run offline; the region only names the partition the template is checked against.
validate: venv venv-sam venv-checkov
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --region us-east-1
	$(CHECKOV) -f template.yaml --framework cloudformation --skip-download --compact --quiet
	$(VPY) -m pytest -q -p no:cacheprovider infra/test_template.py

# checkov pins its own boto and cfn-lint versions too: a venv of its own, offline checks only.
venv-checkov:
	@if ! $(CHECKOV_VENV)/bin/checkov --version >/dev/null 2>&1; then \
		echo "installing checkov into $(CHECKOV_VENV)"; \
		$(PYTHON) -m venv $(CHECKOV_VENV) && $(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check checkov; \
	fi

# Deploys to the AWS account of your current credentials (guided: asks for stack name,
# region and the webhook secret's Secrets Manager name). Tests never call this.
deploy: venv-build venv-sam
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SAM) build --beta-features
	$(if $(ENV),$(SAM) deploy --config-file infra/samconfig.toml --config-env $(ENV),$(SAM) deploy --guided)

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf .followup
