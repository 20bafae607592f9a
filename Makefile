# modelreg — build, test, lint, demo.
#
#   make build   bin/modelreg
#   make tools   pinned peer tools (tools/go.mod) into .tools/bin
#   make bench   transfer benchmark (also builds modctl, tools/modctl/go.mod)
#   make test    unit tests, then the e2e suite against real registries
#   make lint    gofmt, go vet, staticcheck
#   make race    unit tests (and the root package's in-process registry) under -race
#   make fuzz    each native fuzz target for FUZZTIME (10s)
#   make demo    scripts/demo.sh on the embedded registry
#   make image   the container image localhost/modelreg:dev (podman, offline)
#
# The e2e suite needs .tools/bin/{cosign,cosign3,oras,registry} (make tools) and
# Debian's docker-registry 2.8 (apt-get install -y docker-registry);
# without them it fails, it does not skip.

GO ?= go

TOOLS_BIN := $(CURDIR)/.tools/bin
TOOLS := $(TOOLS_BIN)/cosign $(TOOLS_BIN)/oras $(TOOLS_BIN)/registry
COSIGN3 := $(TOOLS_BIN)/cosign3
TOOL_PKGS := \
	github.com/sigstore/cosign/v2/cmd/cosign \
	oras.land/oras/cmd/oras \
	github.com/distribution/distribution/v3/cmd/registry

# The e2e suite takes about 10-15 minutes on 2 cores; the timeout is a backstop.
E2E_TIMEOUT ?= 40m
E2E_PARALLEL ?= 4

# Go files of the main module (tools/ is a separate module with no Go
# files; .tools/ holds binaries; demo-work/ is scratch of the demo).
GO_FILES = $(shell find . -name '*.go' -not -path './.git/*' -not -path './.tools/*' -not -path './tools/*' -not -path './demo-work/*')

.PHONY: build tools test unit e2e lint demo bench race fuzz image

# urfave_cli_no_docs drops urfave/cli's man/markdown writers (we never call
# them) and with them go-md2man and blackfriday's package init at every
# start-up.
BUILD_TAGS := urfave_cli_no_docs

build:
	$(GO) build -tags $(BUILD_TAGS) -o bin/modelreg ./cmd/modelreg

tools: $(TOOLS) $(COSIGN3)

# modctl v0.2.2 (CNCF ModelPack CLI) is a peer only in the benchmark; it has
# its own module so its dependencies do not move the other tools'.
MODCTL := $(TOOLS_BIN)/modctl
$(MODCTL): tools/modctl/go.mod tools/modctl/go.sum
	@mkdir -p $(TOOLS_BIN)
	cd tools/modctl && GOWORK=off $(GO) build -o $(MODCTL) github.com/modelpack/modctl
	@touch $(MODCTL)

# cosign v3.1.3 (Sigstore bundles as OCI 1.1 referrers, its default) is
# the e2e suite's second cosign oracle, beside v2.6.5 (.tools/bin/cosign);
# its own module keeps its dependencies from moving the other tools'.
$(COSIGN3): tools/cosign3/go.mod tools/cosign3/go.sum
	@mkdir -p $(TOOLS_BIN)
	cd tools/cosign3 && GOWORK=off $(GO) build -o $(COSIGN3) github.com/sigstore/cosign/v3/cmd/cosign
	@touch $(COSIGN3)

# Rebuilt only when a binary is missing or tools/go.mod (or go.sum) is
# newer; one go build for all three shares the compile work.
$(TOOLS) &: tools/go.mod tools/go.sum
	@mkdir -p $(TOOLS_BIN)
	cd tools && GOWORK=off $(GO) build -o $(TOOLS_BIN)/ $(TOOL_PKGS)
	@touch $(TOOLS)

# Unit tests: every package but e2e; results may come from the test cache.
UNIT_TEST = $(GO) test $$($(GO) list ./... | grep -v '/e2e$$')
# The e2e suite: the built binary against olareg (in-process), distribution
# v3.1.2 and docker-registry 2.8.2, with the oras and cosign CLIs as oracles.
E2E_TEST = $(GO) test -count=1 -timeout $(E2E_TIMEOUT) -parallel $(E2E_PARALLEL) ./e2e/

test: tools build
	$(UNIT_TEST)
	$(E2E_TEST)

unit:
	$(UNIT_TEST)

# The unit packages under the race detector, the root package's tests with
# the embedded registry (olareg in-process, as `modelreg serve` runs it)
# included. Several minutes on 2 cores: instrumented builds and slower runs.
race:
	$(GO) test -race $$($(GO) list ./... | grep -v '/e2e$$')

e2e: tools
	$(E2E_TEST)

lint:
	@unformatted="$$(gofmt -l $(GO_FILES))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt -l lists:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

demo: build
	./scripts/demo.sh

# Native Go fuzz targets, PACKAGE:TARGET, each run for FUZZTIME. go test
# -fuzz takes one target at a time. A short minimize time keeps the
# fuzzer fuzzing: minimizing each new input for the default 60 s stalls a
# 10 s run (the policy target, with CEL, most). A crasher lands in
# PACKAGE/testdata/fuzz/TARGET/; commit it and it runs with every go test.
FUZZTIME ?= 10s
FUZZ_TARGETS := \
	./oci:FuzzParseReference \
	./oci:FuzzDecodeModel \
	./oci:FuzzParseSafetensors \
	./oci:FuzzIncludeMatch \
	./policy:FuzzParse

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		echo "+ go test -run '^$$' -fuzz '^$$name$$' -fuzztime $(FUZZTIME) $$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s -parallel 1 $$pkg; \
	done

# Transfer benchmark (bench/): modelreg vs the oras and modctl CLIs vs the
# raw and the verifying limit of the registry, on loopback and through a
# capped, delayed link, in interleaved repetitions; then start-up, tag
# consistency and fan-out. Prints Markdown. Needs GNU time (apt-get install
# time). About 45 minutes at full size on 2 cores; for a quick run:
#   make bench BENCH_RUNS=1 BENCH_SIZE=256MiB BENCH_SMALL_FILES=200
# (other knobs: BENCH_MODELS, BENCH_REGISTRIES, BENCH_NETS, BENCH_TOOLS,
# BENCH_CAPPED_PUSH, BENCH_FANOUT, BENCH_STARTUP_RUNS, BENCH_DIR, BENCH_OUT;
# see bench/main.go).
bench: build tools $(MODCTL)
	$(GO) build -o bin/bench ./bench
	bin/bench

# Container image (deploy/Containerfile): a static binary, the host's CA
# bundle and a uid-65532 passwd entry FROM scratch; no network needed.
# IMAGE, VERSION, COMMIT and IMAGE_CONTEXT may be given (e2e/deploy_test.go does).
IMAGE ?= localhost/modelreg:dev
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
IMAGE_CONTEXT ?= bin/image
VERSION_PKG := github.com/modelreg/modelreg/internal/version
image:
	rm -rf $(IMAGE_CONTEXT) && mkdir -p $(IMAGE_CONTEXT)
	CGO_ENABLED=0 $(GO) build -trimpath -tags $(BUILD_TAGS) -ldflags "-s -w -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Commit=$(COMMIT)" \
		-o $(IMAGE_CONTEXT)/modelreg ./cmd/modelreg
	cp /etc/ssl/certs/ca-certificates.crt deploy/image/passwd deploy/image/group $(IMAGE_CONTEXT)/
	podman build --pull=never --layers=false -f deploy/Containerfile -t $(IMAGE) \
		--build-arg VERSION=$(VERSION) --build-arg REVISION=$(COMMIT) $(IMAGE_CONTEXT)
