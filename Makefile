# sidecar-injector — the two commands are `make run` and `make test`; everything else is optional.
SHELL := /bin/bash
NODE ?= node
NPM ?= npm
CERT_DIR ?= certs
PORT ?= 8443
METRICS_PORT ?= 9090
IMAGE ?= sidecar-injector:0.1.0
KUBECTL ?= kubectl
OVERLAY ?= self-managed

SOURCES := $(shell find src -name '*.ts' 2>/dev/null)

.PHONY: all install build typecheck certs run test image deploy undeploy clean help test-tools

all: build

help:
	@echo "make run     install, build, create dev certificates, serve on https://127.0.0.1:$(PORT)"
	@echo "make test    install and run the whole test suite"
	@echo "make certs   (re)create development certificates in $(CERT_DIR)/"
	@echo "make e2e     the cluster tests (KUBEBUILDER_ASSETS with kube-apiserver and etcd, or KUBECONFIG)"
	@echo "make bench   load benchmark against a bare node:https baseline, then the server under adversity"
	@echo "             (make bench-adversity alone); make soak, make fuzz"
	@echo "make image   build the container image with docker, podman or nerdctl (IMAGE=name:tag)"
	@echo "make deploy  kubectl apply -k manifests/overlays/$(OVERLAY) (OVERLAY=cert-manager for cert-manager)"

# Reinstall only when the manifest or the lock file changed since the last install.
node_modules/.install-stamp: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

install: node_modules/.install-stamp

# dist/main.js and its modules (what the tests run), and dist/bundle/main.js (what the image and `make run` run).
dist/.build-stamp: node_modules/.install-stamp tsconfig.json tsconfig.build.json scripts/bundle.mjs $(SOURCES)
	rm -rf dist
	$(NODE) node_modules/typescript/bin/tsc -p tsconfig.build.json
	$(NODE) scripts/bundle.mjs
	@chmod +x dist/main.js dist/bundle/main.js
	@touch $@

build: dist/.build-stamp

$(CERT_DIR)/tls.crt: | dist/.build-stamp
	$(NODE) dist/bundle/main.js certs --out-dir $(CERT_DIR)

certs: build
	$(NODE) dist/bundle/main.js certs --out-dir $(CERT_DIR) --force

run: build $(CERT_DIR)/tls.crt
	$(NODE) dist/bundle/main.js serve --host 127.0.0.1 --port $(PORT) --metrics-port $(METRICS_PORT) \
		--tls-cert $(CERT_DIR)/tls.crt --tls-key $(CERT_DIR)/tls.key --cluster off

# Debian's busybox proves the sidecar script under a real pty; the test says it skipped when it is missing.
test-tools:
	@command -v busybox >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox >/dev/null) \
				|| echo "note: could not install busybox; the sidecar script test will be skipped"; \
		else echo "note: busybox not installed; the sidecar script test will be skipped"; fi; }

typecheck: install
	$(NODE) node_modules/typescript/bin/tsc --noEmit -p .

test: install build typecheck test-tools
	$(NODE) node_modules/vitest/vitest.mjs run $(VITEST_FLAGS)

# Through a real kube-apiserver: KUBEBUILDER_ASSETS="$$(setup-envtest use 1.23 -p path)" make e2e, or
# KUBECONFIG naming a disposable cluster. Without either the suites say they skipped. (make test runs them too.)
.PHONY: e2e
e2e: install build
	$(NODE) node_modules/vitest/vitest.mjs run test/e2e .cluster.test.ts

# Performance against a bare node:https baseline (bench/README.md); h2load comes from Debian's nghttp2-client.
# Then the server under adversity: largest pods, floods against the memory limit, drains, the missed-pods audit.
.PHONY: bench bench-adversity soak
bench: install build
	$(NODE) bench/run.mjs
	$(NODE) bench/adversity.mjs

bench-adversity: install build
	$(NODE) bench/adversity.mjs

# 10 minutes at 500 req/s by default; SOAK_SECONDS=60 make soak for a short one.
soak: install build
	$(NODE) bench/soak.mjs

# Fuzz the HTTP layer and the engine with 100k generated cases (the test suite runs a few thousand);
# FUZZ_SEED=<n> replays a run. Prints case counts per property.
.PHONY: fuzz
fuzz: install build
	FUZZ_RUNS=100000 $(NODE) node_modules/vitest/vitest.mjs run test/fuzz

image:
	@engine=$$(command -v docker || command -v podman || command -v nerdctl) || { echo "no container engine (docker, podman, nerdctl) found"; exit 1; }; \
		$$engine build -t $(IMAGE) .

deploy:
	$(KUBECTL) apply -k manifests/overlays/$(OVERLAY)

undeploy:
	$(KUBECTL) delete -k manifests/overlays/$(OVERLAY) --ignore-not-found

clean:
	rm -rf dist node_modules/.install-stamp
