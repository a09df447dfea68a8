# Follow-up engine — every task a developer or CI runs.
#   make run    start followup-local on the embedded default (SQLite in ./.followup)
#   make test   every test (unit, contract, scenarios)
#   make demo   play a cancelled first visit through the virtual clock and print what happens
#   make bench  benchmarks of the decision core and the commit path

SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test demo bench build fmt lint clean

run:
	$(CARGO) run -p followup-local --bin followup-local

test:
	$(CARGO) build -p followup-local --bin followup-local
	$(CARGO) test --workspace --no-fail-fast

demo:
	$(CARGO) run -q -p followup-tests --example demo

bench:
	$(CARGO) bench -p followup-shared

build:
	$(CARGO) build --release -p followup-local

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf .followup
