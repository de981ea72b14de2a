# sluice — see README.md.
GO        ?= go
SLUICE    := bin/sluice
PKGS      := ./...
SCENARIO  ?= cluster-swarm
SEED      ?= 42
# The broker-cluster scenarios, for make soak's 1000 cluster seeds, each run twice.
CLUSTER_SCENARIOS := leader-crash,isolated-leader,controller-crash,rolling-restart,pauses,clock-jump,cluster-swarm,follower-cut,slow-follower,power-loss-all

.PHONY: all build demo test lint vet fmt-check race bench soak compare clean

all: build

build:
	$(GO) build -o $(SLUICE) ./cmd/sluice

# The main job: a seeded fault scenario on the default embedded cluster
# (three controllers and three brokers, a topic of three replicas with
# min.insync.replicas 2, idempotent acks=all producers and consumers; kills,
# power losses, failing and slow disks, partitions, pauses, clock jumps),
# run twice to prove the seed replays, ending in a report of the checks and
# the faults applied.
demo: build
	$(SLUICE) sim run --scenario $(SCENARIO) --seed $(SEED) --check-determinism --verbose --report reports-out

# Everything CI runs. Keep it well under 15 minutes on two cores.
test: fmt-check vet lint
	$(GO) test -count=1 -timeout 20m $(PKGS)
	$(GO) test -count=1 -race -timeout 10m ./sim/osenv/...

lint:
	$(GO) test -count=1 ./sim/lint/

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v /testdata/)); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Benchmarks: scheduler throughput, simulated disk and network, the log.
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# sluice side by side with its peers on this machine (franz-go's kfake,
# Redis Streams, fio), alternating rounds, medians and ratios: a table, a
# bar chart and JSON in $(COMPARE_OUT). A benchmark, so CI does not run it.
# Installs the Debian packages it drives when they are missing.
COMPARE_OUT   ?= compare-out
COMPARE_FLAGS ?=
compare: build
	@need=""; \
	command -v redis-server >/dev/null 2>&1 || need="$$need redis-server"; \
	command -v redis-benchmark >/dev/null 2>&1 || need="$$need redis-tools"; \
	command -v fio >/dev/null 2>&1 || need="$$need fio"; \
	if [ -n "$$need" ]; then \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  echo "installing$$need"; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$need >/dev/null; \
	fi
	$(SLUICE) compare --out $(COMPARE_OUT) $(COMPARE_FLAGS)

# Long runs kept out of make test: many seeds, each run twice.
soak: build
	$(SLUICE) sim run --scenario counter --seed 1 --seeds 1000 --check-determinism
	$(SLUICE) sim run --scenario single-broker --seed 1 --seeds 500 --check-determinism
	$(SLUICE) sim run --scenario controller-quorum --seed 1 --seeds 500 --check-determinism
	$(SLUICE) sim swarm --scenario $(CLUSTER_SCENARIOS) --seeds 100 --parallel 2 --check-determinism --sample 100
	$(SLUICE) sim swarm --scenario all --seeds 1000 --parallel 2 --check-determinism --sample 20

clean:
	rm -rf bin sluice-failures reports-out compare-out
